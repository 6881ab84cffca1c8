#pragma once
// What sfu_load's publishers send and its subscribers check: RTP packets whose payload says who
// sent them, which packet of the stream they are and when they left (CLOCK_MONOTONIC, the same
// machine), followed by filler bytes derived from those fields, so that any change on the way
// is seen. Video is paced as a camera encoder's output (frames of equal-size packets, the marker
// on a frame's last, a larger keyframe every 2 s or on PLI); audio as Opus at 20 ms.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "ringlane/common/bytes.hpp"

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

// Payload: magic | sender | kind | flags (1 = last packet of its frame, 2 = keyframe) |
// length (2) | extended sequence (4) | send time ns (8) | frame (4) | filler.
struct Meta {
  std::uint32_t sender = 0;
  Kind kind = Kind::kAudio;
  std::uint8_t flags = 0;
  std::uint16_t length = 0;  // the whole payload
  std::uint32_t seq = 0;     // the stream's packet counter; its low 16 bits are the RTP sequence
  std::uint64_t sent_ns = 0;
  std::uint32_t frame = 0;
};

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
