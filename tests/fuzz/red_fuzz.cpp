// RFC 2198 RED: the payload parser (every block inside the payload, the primary last, or
// refused) and the copy a receiver gets (kept, renumbered or stripped) on a whole RTP packet.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/red.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  // The input as a RED payload on its own.
  if (auto red = rtp::parse_red(Bytes(data, size))) {
    std::size_t end = red->header_size;
    for (std::size_t i = 0; i < red->redundant; ++i) {
      if (red->blocks[i].offset != end) {
        __builtin_trap();
      }
      end += red->blocks[i].size;
    }
    if (red->primary.offset != end || end + red->primary.size != size) {
      __builtin_trap();
    }
    std::vector<std::uint8_t> copy(data, data + size);
    rtp::rewrite_red_payload_types(copy, *red, 111, 109);
  }
  // The input as an RTP packet whose payload type 63 is RED: each receiver's copy fits.
  std::vector<std::uint8_t> packet(data, data + size);
  if (!packet.empty() && packet.size() > 1) {
    packet[1] = static_cast<std::uint8_t>((packet[1] & 0x80) | 63);
  }
  auto view = rtp::RtpPacket::parse(packet);
  if (!view) {
    return 0;
  }
  std::vector<std::uint8_t> out(packet.size());
  for (std::uint8_t red_out : {std::uint8_t{0}, std::uint8_t{62}}) {
    std::size_t n = rtp::copy_for_receiver(out.data(), *view, 63, red_out, 111, 109);
    if (n > out.size() || n < view->header_size()) {
      __builtin_trap();
    }
    if (auto stripped = rtp::RtpPacket::parse(std::span(out.data(), n)); !stripped) {
      __builtin_trap();  // what a receiver gets is still RTP
    }
  }
  return 0;
}
