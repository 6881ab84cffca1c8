// RTP view and RFC 7983 demultiplexer: any bytes are classified, and when they parse as RTP
// every accessor and in-place rewrite stays inside the buffer. The video payload readers the SFU
// runs on simulcast packets (keyframe detection for every codec, the VP8 descriptor and its
// rewrite, the VP9 descriptor of SVC forwarding) read the payload, and the whole input as a
// payload too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"

namespace {

// The VP9 payload descriptor (RFC 9628 §4.2): what it reads lies inside the payload, the layer
// indices are in range, and a descriptor that parses still parses with any payload behind it.
void vp9_descriptor(ringlane::Bytes payload) {
  using namespace ringlane;
  auto d = rtp::parse_vp9(payload);
  if (!d) {
    return;
  }
  if (d->size == 0 || d->size > payload.size() || d->tid > 7 || d->sid > 7 ||
      d->ss_spatial_layers > 8 || (d->has_tl0picidx && (!d->has_layers || d->flexible)) ||
      d->starts_picture() != (d->begin && d->sid == 0)) {
    __builtin_trap();
  }
  auto prefix = rtp::parse_vp9(payload.first(d->size));
  if (!prefix || prefix->size != d->size || prefix->picture_id != d->picture_id ||
      prefix->tid != d->tid || prefix->sid != d->sid) {
    __builtin_trap();
  }
}

// Every codec's keyframe test, and a VP8 descriptor rewritten in place: the rewrite stays inside
// the descriptor, and what it wrote reads back (the picture id in its own width).
void payload_readers(ringlane::MutableBytes payload, std::uint32_t seed) {
  using namespace ringlane;
  for (auto codec : {shm::Codec::kOther, shm::Codec::kOpus, shm::Codec::kVp8, shm::Codec::kVp9,
                     shm::Codec::kH264, shm::Codec::kAv1}) {
    (void)rtp::starts_keyframe(codec, payload);
  }
  vp9_descriptor(payload);
  auto d = rtp::parse_vp8(payload);
  if (!d) {
    return;
  }
  if (d->size > payload.size()) {
    __builtin_trap();
  }
  std::vector<std::uint8_t> after(payload.begin() + static_cast<std::ptrdiff_t>(d->size),
                                  payload.end());
  auto pid = static_cast<std::uint16_t>(seed & 0x7FFF);
  auto tl0 = static_cast<std::uint8_t>(seed >> 15);
  auto keyidx = static_cast<std::uint8_t>((seed >> 23) & 0x1F);
  rtp::rewrite_vp8(payload, *d, pid, tl0, keyidx);
  auto again = rtp::parse_vp8(payload);
  if (!again || again->size != d->size || again->start != d->start ||
      again->partition != d->partition || again->has_picture_id != d->has_picture_id ||
      again->long_picture_id != d->long_picture_id || again->keyframe != d->keyframe ||
      again->tid != d->tid || again->layer_sync != d->layer_sync) {
    __builtin_trap();
  }
  if (d->has_picture_id && again->picture_id != (d->long_picture_id ? pid : (pid & 0x7F))) {
    __builtin_trap();
  }
  if ((d->has_tl0picidx && again->tl0picidx != tl0) || (d->has_keyidx && again->keyidx != keyidx)) {
    __builtin_trap();
  }
  if (!std::equal(after.begin(), after.end(),
                  payload.begin() + static_cast<std::ptrdiff_t>(d->size))) {
    __builtin_trap();  // the VP8 payload itself is never touched
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  std::vector<std::uint8_t> copy(data, data + size);
  {
    std::vector<std::uint8_t> whole(data, data + size);
    payload_readers(whole, static_cast<std::uint32_t>(size) * 2654435761u);
  }
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
  payload_readers(p->payload(), sum);
  p->set_ssrc(sum);
  p->set_sequence(static_cast<std::uint16_t>(sum));
  p->set_timestamp(sum);
  p->set_payload_type(static_cast<std::uint8_t>(sum));
  p->set_marker((sum & 1) != 0);
  return 0;
}
