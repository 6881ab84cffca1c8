// RTP view and RFC 7983 demultiplexer: any bytes are classified, and when they parse as RTP
// every accessor and in-place rewrite stays inside the buffer.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  std::vector<std::uint8_t> copy(data, data + size);
  (void)rtp::classify(copy);
  if (auto h = rtp::RtpPacket::parse_srtp_header(copy)) {
    (void)h->payload();
    (void)h->extension(3);
  }
  auto p = rtp::RtpPacket::parse(copy);
  if (!p) {
    return 0;
  }
  std::uint32_t sum = p->sequence() + p->timestamp() + p->ssrc() + p->payload_type();
  for (std::size_t i = 0; i < p->csrc_count(); ++i)
    sum += p->csrc(i);
  for (int id = 0; id < 256; ++id) {
    if (auto e = p->extension(static_cast<std::uint8_t>(id))) {
      for (auto b : *e)
        sum += b;
      std::vector<std::uint8_t> same(e->size(), 0x5A);
      p->set_extension(static_cast<std::uint8_t>(id), same);
    }
  }
  for (auto b : p->payload())
    sum += b;
  p->set_ssrc(sum);
  p->set_sequence(static_cast<std::uint16_t>(sum));
  p->set_timestamp(sum);
  p->set_payload_type(static_cast<std::uint8_t>(sum));
  p->set_marker((sum & 1) != 0);
  return 0;
}
