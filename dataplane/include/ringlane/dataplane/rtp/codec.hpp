#pragma once
// What the SFU reads of a video payload: whether a packet starts a keyframe (a simulcast
// subscriber may only change layers there), and the VP8 payload descriptor (RFC 7741 §4.2),
// whose picture numbering a layer switch must keep continuous. Views over the payload; every
// length is checked first.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "ringlane/common/bytes.hpp"
#include "ringlane/shm/media.hpp"

namespace ringlane::rtp {

// True when `payload` (an RTP payload of `codec`) is the first packet of a keyframe: VP8 a key
// frame's first partition start, VP9 a non-inter-predicted picture's base layer start, H264 an
// IDR slice or an SPS (the parameter sets libwebrtc sends in front of an IDR), AV1 the start of a
// new coded video sequence. False for anything unreadable.
bool starts_keyframe(shm::Codec codec, Bytes payload);

struct Vp8Descriptor {
  std::size_t size = 0;  // bytes of the descriptor in front of the VP8 payload
  bool start = false;    // S: the first packet of a partition
  std::uint8_t partition = 0;
  bool has_picture_id = false;
  bool long_picture_id = false;  // M: 15 bits instead of 7
  std::uint16_t picture_id = 0;
  std::size_t picture_id_at = 0;  // offsets in the payload, for the rewrite
  bool has_tl0picidx = false;
  std::uint8_t tl0picidx = 0;
  std::size_t tl0picidx_at = 0;
  bool has_tid = false;
  std::uint8_t tid = 0;
  bool layer_sync = false;  // Y
  bool has_keyidx = false;
  std::uint8_t keyidx = 0;
  std::size_t keyidx_at = 0;
  // The VP8 payload header's P bit is 0 (RFC 7741 §4.3): meaningful when start && partition 0.
  bool keyframe = false;
};

std::optional<Vp8Descriptor> parse_vp8(Bytes payload);

// Writes a new picture id, TL0PICIDX and KEYIDX into a descriptor parse_vp8 read from this same
// payload (the fields it does not have are left alone; the picture id keeps its width).
void rewrite_vp8(MutableBytes payload, const Vp8Descriptor& d, std::uint16_t picture_id,
                 std::uint8_t tl0picidx, std::uint8_t keyidx);

}  // namespace ringlane::rtp
