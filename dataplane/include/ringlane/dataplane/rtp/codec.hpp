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

// The VP9 payload descriptor (RFC 9628 §4.2): |I|P|L|F|B|E|V|Z|, then the picture id (I), the
// layer indices |TID|U|SID|D| (L) and, in non-flexible mode, TL0PICIDX; in flexible mode up to
// three reference indices (P_DIFF, when P); then the scalability structure (V, §4.2.1).
struct Vp9Descriptor {
  std::size_t size = 0;        // bytes of the descriptor in front of the VP9 payload
  bool inter = false;          // P: inter-picture predicted
  bool flexible = false;       // F
  bool begin = false;          // B: the first packet of a layer frame
  bool end = false;            // E: the last packet of a layer frame
  bool has_ss = false;         // V
  bool not_reference = false;  // Z
  bool has_picture_id = false;
  bool long_picture_id = false;
  std::uint16_t picture_id = 0;
  bool has_layers = false;  // L
  std::uint8_t tid = 0;
  bool switching_up = false;  // U
  std::uint8_t sid = 0;
  bool inter_layer = false;  // D
  bool has_tl0picidx = false;
  std::uint8_t tl0picidx = 0;
  std::uint8_t ss_spatial_layers = 0;  // N_S + 1 of the scalability structure, 0 without one
  // The first packet of a picture (all its spatial layers): the base layer's begin.
  bool starts_picture() const { return begin && sid == 0; }
};

std::optional<Vp9Descriptor> parse_vp9(Bytes payload);

}  // namespace ringlane::rtp
