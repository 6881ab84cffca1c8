#pragma once
// Frames TURN traffic on a byte stream (TCP, or TLS after decryption): RFC 8656 §12.5 and
// RFC 8489 §6.2.2. STUN messages (20-byte header, length a multiple of 4) and ChannelData
// messages (4-byte header, padded to 4 bytes on a stream, the padding not in the length)
// follow each other with nothing in between, so the headers are the only delimiters and one
// bad header desynchronises the stream for good.
//
// Sans-I/O: the caller owns the socket and the clock. It push()es each received chunk as the
// io backend delivers it and drains next() until it returns nothing. A frame that sits whole in
// the chunk is handed out as a view into the chunk (no copy); a frame that straddles chunks is
// gathered in the framer's own bounded buffer (one copy of its bytes). The buffer is allocated
// when a frame first straddles, grows (by powers of two, never past the bound) only when a
// larger frame straddles, and is then reused: no allocation per frame.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "ringlane/common/bytes.hpp"
#include "ringlane/dataplane/stun/constants.hpp"

namespace ringlane::turn {

// RFC 8656 §12.4: channel number (2 bytes) and length (2 bytes).
inline constexpr std::size_t kChannelDataHeaderSize = 4;

enum class FrameKind : std::uint8_t { kStun, kChannelData };

struct StreamFrame {
  FrameKind kind = FrameKind::kStun;
  // The whole message: the STUN header and attributes (20 + length bytes), or the ChannelData
  // header and data (4 + length bytes, without the stream padding).
  Bytes bytes;
  // False: `bytes` points into the chunk given to push() and lives as long as that buffer.
  // True: `bytes` is in the framer's reassembly buffer, valid until the next push() or next().
  bool reassembled = false;

  std::uint16_t channel() const { return load_be16(bytes.data()); }  // ChannelData only
  Bytes payload() const {
    return bytes.subspan(kind == FrameKind::kStun ? stun::kHeaderSize : kChannelDataHeaderSize);
  }
};

// Why a stream was given up. Every one of them leaves the stream out of sync: the framer
// yields nothing more and the connection must be closed.
enum class StreamError : std::uint8_t {
  kNone,
  // RFC 7983 / RFC 8656 §12: a message starts with 0b00 (STUN) or 0b01 (ChannelData,
  // channel numbers 0x4000-0x7FFF); anything else is not TURN.
  kNotTurn,
  kBadMagicCookie,   // RFC 8489 §5: the top bits said STUN, bytes 4-7 are not 0x2112A442
  kBadStunLength,    // RFC 8489 §5: the length of a STUN message is a multiple of 4
  kStunTooLarge,     // over StreamFramerConfig::max_stun_frame
  kChannelTooLarge,  // over StreamFramerConfig::max_channel_frame
  // RFC 8656 §12: a channel is bound by a ChannelBind request on this same connection, so
  // ChannelData before the first STUN message is garbage (say, an HTTP request: 'G' = 0x47).
  kChannelBeforeStun,
  kCount
};
const char* to_string(StreamError e);

struct StreamFramerConfig {
  // Largest frames accepted, headers included. The defaults are what the length fields can
  // say; a deployment lowers them to bound the memory a connection can hold.
  std::size_t max_stun_frame = stun::kHeaderSize + 0xFFFC;  // the length is a multiple of 4
  std::size_t max_channel_frame = kChannelDataHeaderSize + 0xFFFF;
};

// Shared by the framers of one worker, written as plain integers by its thread.
struct StreamFramerCounters {
  std::uint64_t stun_frames = 0;
  std::uint64_t channel_frames = 0;
  std::uint64_t reassembled_frames = 0;  // frames that straddled chunks ...
  std::uint64_t reassembled_bytes = 0;   // ... and the bytes copied for them
  std::uint64_t padding_bytes = 0;       // ChannelData stream padding consumed
  std::array<std::uint64_t, static_cast<std::size_t>(StreamError::kCount)> failures{};

  std::uint64_t failed(StreamError e) const { return failures[static_cast<std::size_t>(e)]; }
};

class StreamFramer {
 public:
  explicit StreamFramer(StreamFramerCounters& counters, StreamFramerConfig config = {});
  StreamFramer(StreamFramer&&) noexcept = default;
  StreamFramer& operator=(StreamFramer&&) noexcept = default;

  // Hands the framer the next bytes of the stream, received at `now_ms` (monotonic). Frames
  // from the previous chunk must all have been taken with next() first; pushing before that
  // is a bug in the caller and aborts.
  void push(Bytes chunk, std::uint64_t now_ms);
  // The next complete frame, or nothing once the chunk is used up (its trailing partial frame
  // copied into the reassembly buffer; the receive buffer may then go back to the ring once
  // the frames pointing into it are done with) or the stream has failed.
  std::optional<StreamFrame> next();

  // Out of sync: close the connection. No frame is yielded after this turns true.
  bool failed() const { return error_ != StreamError::kNone; }
  StreamError error() const { return error_; }

  // Bytes of an incomplete frame held in the reassembly buffer (for the per-connection cap).
  std::size_t buffered_bytes() const { return have_; }
  // Memory held for reassembly, never more than bound().
  std::size_t reserved_bytes() const { return capacity_; }
  // The most the reassembly buffer may ever hold: the larger of the two frame maxima.
  std::size_t bound() const { return bound_; }
  // Whether the stream is between frames (nothing partial, no padding owed).
  bool at_boundary() const { return have_ == 0 && skip_ == 0; }
  // When the frame now incomplete (or the padding still owed) started waiting: the time of
  // the push() that left it so. Nothing when at a boundary.
  std::optional<std::uint64_t> partial_since_ms() const;
  // Slowloris check: has an incomplete frame been waiting since `t_ms` or earlier?
  bool partial_waiting_since(std::uint64_t t_ms) const;
  // Frees the reassembly buffer if nothing is in it (for idle connections).
  void release_buffer();

 private:
  enum class Header : std::uint8_t { kNeedMore, kComplete, kFailed };
  // Checks what `avail` bytes of a frame's start allow: the first byte at once, then a
  // ChannelData header at 4 bytes, a STUN one (cookie, length) at 8. Sets `kind`, and `size`
  // when it returns kComplete.
  Header check_header(const std::uint8_t* p, std::size_t avail, std::size_t& size, FrameKind& kind);
  std::optional<StreamFrame> fail(StreamError e);
  StreamFrame yield(FrameKind kind, Bytes bytes, bool reassembled);
  void reserve(std::size_t n);
  std::optional<StreamFrame> end_of_chunk();

  StreamFramerCounters* counters_;
  std::size_t max_stun_;
  std::size_t max_channel_;
  std::size_t bound_;
  Bytes pending_;  // what is left of the chunk being framed
  std::uint64_t now_ms_ = 0;
  std::unique_ptr<std::uint8_t[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t have_ = 0;  // bytes of the partial frame in buffer_
  std::size_t need_ = 0;  // its size once the header told it, else 0
  FrameKind kind_ = FrameKind::kStun;
  std::uint8_t skip_ = 0;  // padding still to consume
  bool seen_stun_ = false;
  bool waiting_ = false;
  std::uint64_t waiting_since_ms_ = 0;
  StreamError error_ = StreamError::kNone;
};

}  // namespace ringlane::turn
