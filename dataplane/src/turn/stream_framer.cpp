#include "ringlane/dataplane/turn/stream_framer.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringlane::turn {
namespace {
// The first straddling frame reserves this much (a media packet fits), unless the bound is
// smaller; larger frames grow the buffer by powers of two up to the bound.
constexpr std::size_t kMinBuffer = 2048;
// Bytes of a STUN header needed to judge it: type, length and the magic cookie (RFC 8489 §5).
constexpr std::size_t kStunJudged = 8;
}  // namespace

const char* to_string(StreamError e) {
  switch (e) {
    case StreamError::kNone:
      return "none";
    case StreamError::kNotTurn:
      return "not_turn";
    case StreamError::kBadMagicCookie:
      return "bad_magic_cookie";
    case StreamError::kBadStunLength:
      return "bad_stun_length";
    case StreamError::kStunTooLarge:
      return "stun_too_large";
    case StreamError::kChannelTooLarge:
      return "channel_too_large";
    case StreamError::kChannelBeforeStun:
      return "channel_before_stun";
    case StreamError::kCount:
      break;
  }
  return "unknown";
}

StreamFramer::StreamFramer(StreamFramerCounters& counters, StreamFramerConfig config)
    : counters_(&counters),
      // Between a header alone and what the length field can say (for STUN, a multiple of 4).
      max_stun_(std::clamp(config.max_stun_frame, stun::kHeaderSize, stun::kHeaderSize + 0xFFFC)),
      max_channel_(std::clamp(config.max_channel_frame, kChannelDataHeaderSize,
                              kChannelDataHeaderSize + 0xFFFF)),
      bound_(std::max(max_stun_, max_channel_)) {}

void StreamFramer::push(Bytes chunk, std::uint64_t now_ms) {
  if (!pending_.empty()) {
    // Frames of the previous chunk would be lost: a caller bug, not a property of the stream.
    std::fprintf(stderr, "StreamFramer::push: %zu bytes of the previous chunk not framed yet\n",
                 pending_.size());
    std::abort();
  }
  now_ms_ = now_ms;
  if (!failed()) {
    pending_ = chunk;
  }
}

std::optional<std::uint64_t> StreamFramer::partial_since_ms() const {
  if (!waiting_) {
    return std::nullopt;
  }
  return waiting_since_ms_;
}

bool StreamFramer::partial_waiting_since(std::uint64_t t_ms) const {
  return waiting_ && waiting_since_ms_ <= t_ms;
}

void StreamFramer::release_buffer() {
  if (have_ == 0) {
    buffer_.reset();
    capacity_ = 0;
  }
}

StreamFramer::Header StreamFramer::check_header(const std::uint8_t* p, std::size_t avail,
                                                std::size_t& size, FrameKind& kind) {
  // RFC 7983 §7 / RFC 8656 §12: the two top bits tell STUN (00) from ChannelData (01).
  switch (p[0] >> 6) {
    case 0:
      kind = FrameKind::kStun;
      break;
    case 1:
      kind = FrameKind::kChannelData;
      if (!seen_stun_) {
        fail(StreamError::kChannelBeforeStun);
        return Header::kFailed;
      }
      break;
    default:
      fail(StreamError::kNotTurn);
      return Header::kFailed;
  }
  // Judged only once all the bytes a check needs are there, so that the same stream fails for
  // the same reason however it was cut into chunks.
  if (kind == FrameKind::kStun) {
    if (avail < kStunJudged) {
      return Header::kNeedMore;
    }
    if (load_be32(p + 4) != stun::kMagicCookie) {
      fail(StreamError::kBadMagicCookie);
      return Header::kFailed;
    }
    std::size_t length = load_be16(p + 2);
    if (length % 4 != 0) {
      fail(StreamError::kBadStunLength);
      return Header::kFailed;
    }
    size = stun::kHeaderSize + length;
    if (size > max_stun_) {
      fail(StreamError::kStunTooLarge);
      return Header::kFailed;
    }
    return Header::kComplete;
  }
  if (avail < kChannelDataHeaderSize) {
    return Header::kNeedMore;
  }
  size = kChannelDataHeaderSize + load_be16(p + 2);
  if (size > max_channel_) {
    fail(StreamError::kChannelTooLarge);
    return Header::kFailed;
  }
  return Header::kComplete;
}

std::optional<StreamFrame> StreamFramer::fail(StreamError e) {
  error_ = e;
  ++counters_->failures[static_cast<std::size_t>(e)];
  pending_ = {};
  have_ = 0;
  need_ = 0;
  skip_ = 0;
  waiting_ = false;
  buffer_.reset();
  capacity_ = 0;
  return std::nullopt;
}

StreamFrame StreamFramer::yield(FrameKind kind, Bytes bytes, bool reassembled) {
  if (kind == FrameKind::kStun) {
    ++counters_->stun_frames;
    seen_stun_ = true;
  } else {
    ++counters_->channel_frames;
    // RFC 8656 §12.5: over TCP and TLS the ChannelData message is padded to a multiple of 4.
    skip_ = static_cast<std::uint8_t>((4 - bytes.size() % 4) % 4);
  }
  if (reassembled) {
    ++counters_->reassembled_frames;
    counters_->reassembled_bytes += bytes.size();
  }
  waiting_ = false;
  return StreamFrame{kind, bytes, reassembled};
}

void StreamFramer::reserve(std::size_t n) {
  if (capacity_ >= n) {
    return;
  }
  std::size_t grown = std::min(std::max(std::bit_ceil(n), kMinBuffer), bound_);
  auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(grown);
  if (have_ > 0) {
    std::memcpy(bigger.get(), buffer_.get(), have_);
  }
  buffer_ = std::move(bigger);
  capacity_ = grown;
}

std::optional<StreamFrame> StreamFramer::end_of_chunk() {
  pending_ = {};
  // A wait ends where a boundary is reached (yield(), the padding's end in next()).
  if (!at_boundary() && !waiting_) {
    waiting_ = true;
    waiting_since_ms_ = now_ms_;
  }
  return std::nullopt;
}

std::optional<StreamFrame> StreamFramer::next() {
  if (failed()) {
    return std::nullopt;
  }
  for (;;) {
    if (skip_ > 0) {
      std::size_t n = std::min<std::size_t>(skip_, pending_.size());
      pending_ = pending_.subspan(n);
      skip_ = static_cast<std::uint8_t>(skip_ - n);
      counters_->padding_bytes += n;
      if (skip_ > 0) {
        return end_of_chunk();
      }
      waiting_ = false;  // at a boundary again: the next frame's wait starts afresh
    }
    if (pending_.empty()) {
      return end_of_chunk();
    }
    if (have_ == 0) {
      // A frame starts here: hand it out in place if it is whole in the chunk.
      std::size_t size = 0;
      FrameKind kind = FrameKind::kStun;
      Header h = check_header(pending_.data(), pending_.size(), size, kind);
      if (h == Header::kFailed) {
        return std::nullopt;
      }
      if (h == Header::kComplete && pending_.size() >= size) {
        Bytes frame = pending_.first(size);
        pending_ = pending_.subspan(size);
        return yield(kind, frame, false);
      }
      // It straddles: keep what is here (fewer bytes than the frame, so within the bound).
      reserve(h == Header::kComplete ? size : kStunJudged);
      std::memcpy(buffer_.get(), pending_.data(), pending_.size());
      have_ = pending_.size();
      need_ = h == Header::kComplete ? size : 0;
      kind_ = kind;
      return end_of_chunk();
    }
    // Continuing the frame in the buffer: first up to its judged header, then to its end.
    std::size_t target = need_;
    if (target == 0) {
      target = kind_ == FrameKind::kStun ? kStunJudged : kChannelDataHeaderSize;
    }
    std::size_t n = std::min(target - have_, pending_.size());
    std::memcpy(buffer_.get() + have_, pending_.data(), n);
    have_ += n;
    pending_ = pending_.subspan(n);
    if (have_ < target) {
      return end_of_chunk();
    }
    if (need_ == 0) {
      std::size_t size = 0;
      if (check_header(buffer_.get(), have_, size, kind_) == Header::kFailed) {
        return std::nullopt;
      }
      need_ = size;
      reserve(need_);
      if (have_ < need_) {
        continue;
      }
    }
    Bytes frame(buffer_.get(), need_);
    have_ = 0;
    need_ = 0;
    return yield(kind_, frame, true);
  }
}

}  // namespace ringlane::turn
