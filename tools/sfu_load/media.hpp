#pragma once
// What sfu_load's publishers send and its subscribers check: RTP packets whose payload says who
// sent them, which packet of the stream they are and when they left (CLOCK_MONOTONIC, the same
// machine), followed by filler bytes derived from those fields, so that any change on the way
// is seen. Video is paced as a camera encoder's output (frames of equal-size packets, the marker
// on a frame's last, a larger keyframe every 2 s or on PLI); audio as Opus at 20 ms.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "ringlane/common/bytes.hpp"
#include "ringlane/dataplane/rtp/codec.hpp"

namespace sfu_load {

using ringlane::load_be16;
using ringlane::load_be32;
using ringlane::load_be64;
using ringlane::store_be16;
using ringlane::store_be32;
using ringlane::store_be64;

enum class Kind : std::uint8_t { kAudio = 0, kVideo = 1 };
inline const char* kind_name(Kind k) {
  return k == Kind::kAudio ? "audio" : "video";
}

inline constexpr std::uint32_t kMagic = 0x524C4C44;  // "RLLD"
inline constexpr std::size_t kMetaBytes = 28;
inline constexpr std::uint8_t kAudioPt = 111;
inline constexpr std::uint8_t kVideoPt = 96;
inline constexpr std::uint8_t kAudioLevelId = 1;  // a=extmap id for ssrc-audio-level
// --simulcast's other extensions (RFC 8285 one-byte ids, as Chromium numbers them).
inline constexpr std::uint8_t kTwccId = 3;  // transport-wide sequence number
inline constexpr std::uint8_t kMidId = 4;   // RFC 8843 §15
inline constexpr std::uint8_t kRidId = 10;  // RFC 8852 rtp-stream-id
inline constexpr unsigned kLayers = 3;      // simulcast encodings q, h, f (lowest first)
inline constexpr const char* kRids[kLayers] = {"q", "h", "f"};

// Payload: magic | sender | kind | flags (1 = last packet of its frame, 2 = keyframe, bits 2-3:
// the simulcast layer) | length (2) | extended sequence (4) | send time ns (8) | frame (4) |
// filler. With --simulcast a VP8 prefix (below) comes first.
struct Meta {
  std::uint32_t sender = 0;
  Kind kind = Kind::kAudio;
  std::uint8_t flags = 0;
  std::uint16_t length = 0;  // the whole payload
  std::uint32_t seq = 0;     // the stream's packet counter; its low 16 bits are the RTP sequence
  std::uint64_t sent_ns = 0;
  std::uint32_t frame = 0;
};

inline constexpr std::uint8_t kFlagLast = 1;
inline constexpr std::uint8_t kFlagKey = 2;
inline std::uint8_t layer_of(const Meta& m) {
  return static_cast<std::uint8_t>((m.flags >> 2) & 3);
}

inline std::uint8_t filler(const Meta& m, std::size_t i) {
  return static_cast<std::uint8_t>(i * 7 + m.seq * 13 + m.sender * 29 + m.frame);
}

inline void write_payload(std::uint8_t* p, const Meta& m) {
  store_be32(p, kMagic);
  store_be32(p + 4, m.sender);
  p[8] = static_cast<std::uint8_t>(m.kind);
  p[9] = m.flags;
  store_be16(p + 10, m.length);
  store_be32(p + 12, m.seq);
  store_be64(p + 16, m.sent_ns);
  store_be32(p + 24, m.frame);
  for (std::size_t i = kMetaBytes; i < m.length; ++i) {
    p[i] = filler(m, i);
  }
}

// The fields of a payload whose every byte is as its sender wrote it; nullopt otherwise.
inline std::optional<Meta> read_payload(ringlane::Bytes p) {
  if (p.size() < kMetaBytes || load_be32(p.data()) != kMagic) {
    return std::nullopt;
  }
  Meta m;
  m.sender = load_be32(p.data() + 4);
  if (p[8] > 1) {
    return std::nullopt;
  }
  m.kind = static_cast<Kind>(p[8]);
  m.flags = p[9];
  m.length = load_be16(p.data() + 10);
  m.seq = load_be32(p.data() + 12);
  m.sent_ns = load_be64(p.data() + 16);
  m.frame = load_be32(p.data() + 24);
  if (m.length != p.size()) {
    return std::nullopt;
  }
  for (std::size_t i = kMetaBytes; i < p.size(); ++i) {
    if (p[i] != filler(m, i)) {
      return std::nullopt;
    }
  }
  return m;
}

// What a simulcast layer's packet carries in front of the checked payload, so that the server
// reads it as VP8 (RFC 7741): a 4-byte payload descriptor (X, S on a frame's first packet,
// partition 0; I with a 15-bit picture id), and on a frame's first packet the VP8 payload header
// (3 bytes, P = 0 on a keyframe, show_frame) with, on a keyframe, the start code and the size
// (7 more bytes, §4.3 / RFC 6386 §9.1). Returns the bytes written (at most kVp8PrefixMax).
inline constexpr std::size_t kVp8PrefixMax = 14;
inline std::size_t write_vp8_prefix(std::uint8_t* p, bool start, bool key, std::uint16_t picture_id,
                                    std::uint16_t width, std::uint16_t height) {
  p[0] = static_cast<std::uint8_t>(0x80 | (start ? 0x10 : 0));
  p[1] = 0x80;
  store_be16(p + 2, static_cast<std::uint16_t>(0x8000 | (picture_id & 0x7FFF)));
  if (!start) {
    return 4;
  }
  p[4] = key ? 0x10 : 0x11;
  p[5] = 0;
  p[6] = 0;
  if (!key) {
    return 7;
  }
  p[7] = 0x9D;
  p[8] = 0x01;
  p[9] = 0x2A;
  p[10] = static_cast<std::uint8_t>(width & 0xFF);
  p[11] = static_cast<std::uint8_t>((width >> 8) & 0x3F);
  p[12] = static_cast<std::uint8_t>(height & 0xFF);
  p[13] = static_cast<std::uint8_t>((height >> 8) & 0x3F);
  return 14;
}

// The prefix write_vp8_prefix wrote (as the server forwarded it: the picture id rewritten): its
// length, and whether it says keyframe; nullopt when it is not one.
struct Vp8Prefix {
  std::size_t size = 0;
  bool start = false;
  bool key = false;
};
inline std::optional<Vp8Prefix> read_vp8_prefix(ringlane::Bytes payload) {
  auto d = ringlane::rtp::parse_vp8(payload);
  if (!d || !d->has_picture_id || d->partition != 0) {
    return std::nullopt;
  }
  Vp8Prefix v{d->size, d->start, d->start && d->keyframe};
  v.size += !d->start ? 0 : v.key ? 10 : 3;
  if (v.size > payload.size()) {
    return std::nullopt;
  }
  return v;
}

// RTP header (RFC 3550 §5.1), with the audio level extension (RFC 6464 in an RFC 8285 one-byte
// block) on audio; returns the header size.
inline std::size_t write_rtp_header(std::uint8_t* d, bool marker, std::uint8_t pt,
                                    std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc,
                                    bool audio_level) {
  d[0] = static_cast<std::uint8_t>(0x80 | (audio_level ? 0x10 : 0));
  d[1] = static_cast<std::uint8_t>((marker ? 0x80 : 0) | pt);
  store_be16(d + 2, seq);
  store_be32(d + 4, ts);
  store_be32(d + 8, ssrc);
  if (!audio_level) {
    return 12;
  }
  store_be16(d + 12, 0xBEDE);
  store_be16(d + 14, 1);                                  // one 32-bit word
  d[16] = static_cast<std::uint8_t>(kAudioLevelId << 4);  // length 1 - 1
  d[17] = 0x80 | 30;                                      // voice, -30 dBov
  d[18] = 0;
  d[19] = 0;
  return 20;
}

// An RTP header with RFC 8285 one-byte extension elements (each 1-16 bytes); the header size.
struct Element {
  std::uint8_t id = 0;
  std::uint8_t size = 0;
  std::array<std::uint8_t, 4> value{};
};
inline std::size_t write_rtp_header(std::uint8_t* d, bool marker, std::uint8_t pt,
                                    std::uint16_t seq, std::uint32_t ts, std::uint32_t ssrc,
                                    std::span<const Element> elements) {
  write_rtp_header(d, marker, pt, seq, ts, ssrc, false);
  d[0] |= 0x10;
  std::size_t at = 16;
  for (const Element& e : elements) {
    d[at++] = static_cast<std::uint8_t>((e.id << 4) | (e.size - 1));
    std::memcpy(d + at, e.value.data(), e.size);
    at += e.size;
  }
  while ((at - 16) % 4 != 0) {
    d[at++] = 0;
  }
  store_be16(d + 12, 0xBEDE);
  store_be16(d + 14, static_cast<std::uint16_t>((at - 16) / 4));
  return at;
}

// Frame sizes for a target bitrate: at 30 fps a keyframe every 60 frames is worth 4 delta
// frames, so 2 s carry 63 delta-frame sizes.
struct VideoPlan {
  std::size_t delta_bytes = 0;
  std::size_t key_bytes = 0;
  std::size_t packet_bytes = 1100;

  static VideoPlan for_kbps(unsigned kbps, std::size_t packet_bytes) {
    VideoPlan p;
    double per_2s = kbps * 1000.0 / 8.0 * 2.0;
    p.delta_bytes = std::max<std::size_t>(kMetaBytes, static_cast<std::size_t>(per_2s / 63.0));
    p.key_bytes = p.delta_bytes * 4;
    p.packet_bytes = packet_bytes;
    return p;
  }
  // Packets of one frame: equal sizes, the last one shorter (how encoders packetize, and what
  // lets a sender batch a frame with UDP GSO).
  static std::size_t packets(std::size_t frame, std::size_t max) { return (frame + max - 1) / max; }
  static std::size_t packet_size(std::size_t frame, std::size_t max, std::size_t i) {
    std::size_t n = packets(frame, max);
    std::size_t each = (frame + n - 1) / n;
    each = std::max(each, kMetaBytes);
    return i + 1 < n ? each : std::max(kMetaBytes, frame - each * (n - 1));
  }
};

inline constexpr std::uint64_t kFrameNs = 1'000'000'000ull / 30;
inline constexpr std::uint64_t kAudioNs = 20'000'000ull;
inline constexpr unsigned kKeyframeEvery = 60;  // frames: 2 s

}  // namespace sfu_load
