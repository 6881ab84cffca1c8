#pragma once
// RTP payload for redundant audio data (RFC 2198), as browsers send Opus with it
// (`red/48000/2`, fmtp `111/111`): block headers, then the redundant blocks (older encodings),
// then the primary block (the newest, whose timestamp is the packet's). Parsed as a view: every
// length is checked before anything is read, and nothing is copied.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "ringlane/common/bytes.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"

namespace ringlane::rtp {

struct RedBlock {
  std::uint8_t payload_type = 0;
  std::uint16_t timestamp_offset = 0;  // 14 bits: subtracted from the packet's timestamp
  std::size_t offset = 0;              // of the block's data, from the start of the payload
  std::size_t size = 0;
};

struct RedPayload {
  // Browsers send one or two redundant blocks (libwebrtc at most 2); more is refused, which
  // bounds the walk.
  static constexpr std::size_t kMaxRedundant = 8;
  std::size_t header_size = 0;  // all the block headers
  std::size_t redundant = 0;    // blocks in `blocks` before the primary
  std::array<RedBlock, kMaxRedundant> blocks{};
  RedBlock primary;  // RFC 2198 §3: the last block; its timestamp offset is 0
};

// nullopt when a header is truncated, the block lengths run past the end, or there are more than
// kMaxRedundant redundant blocks. A primary block of 0 bytes is valid.
std::optional<RedPayload> parse_red(Bytes payload);

// Rewrites the payload type of every block header (RFC 2198 §3: the PT of the encoding each block
// carries) from `from` to `to`, in place: for a receiver that numbers Opus differently from the
// sender. `red` is parse_red() of the same bytes.
void rewrite_red_payload_types(MutableBytes payload, const RedPayload& red, std::uint8_t from,
                               std::uint8_t to);

// Copies packet `view` into `out` (room for view.bytes().size()) as one receiver gets it, and
// returns the length written. A RED packet (payload type `red_in`, 0: none) stays RED under
// `red_out` with its blocks renumbered from `opus_in` to `media_out`, or, when `red_out` is 0
// (the receiver did not negotiate RED), becomes its primary block under `media_out`: the header
// unchanged (sequence number, timestamp: RFC 2198 §3, the primary's is the packet's), the
// padding gone. Any other packet is copied under `media_out`. A RED payload parse_red() refuses
// is copied as it came (the caller drops those first).
std::size_t copy_for_receiver(std::uint8_t* out, const RtpPacket& view, std::uint8_t red_in,
                              std::uint8_t red_out, std::uint8_t opus_in, std::uint8_t media_out);
// The same with the packet's RED payload parsed by the caller (nullptr: not a RED packet), so
// that the copies of one packet for many receivers parse it once.
std::size_t copy_for_receiver(std::uint8_t* out, const RtpPacket& view, const RedPayload* red,
                              std::uint8_t red_out, std::uint8_t opus_in, std::uint8_t media_out);

}  // namespace ringlane::rtp
