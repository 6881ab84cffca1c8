// The TURN stream framer fed a stream cut into chunks, checked against a plain whole-stream
// reading of RFC 8656 §12.5 written here: the same frames at the same offsets, in place when
// whole in a chunk and reassembled when not, the same refusal, never more held than the
// bound, nothing after a failure, and the partial frame's age.
// Input: [flags][c1][c2][c3] then the stream. Chunk sizes cycle through c1, c2, c3 (each
// c + 1 bytes, times 64 when flags bit 1 is set); flags bit 0 lowers the frame maxima to
// flags * 2 (STUN) and flags * 3 (ChannelData).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ringlane/dataplane/turn/stream_framer.hpp"

namespace {
using namespace ringlane;
using namespace ringlane::turn;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

struct Expected {
  std::size_t offset;
  std::size_t size;
  FrameKind kind;
};

// What the whole stream holds, read the simple way: frames, then how it ends.
struct Reading {
  std::vector<Expected> frames;
  StreamError error = StreamError::kNone;
  std::size_t end = 0;        // where reading stopped
  bool padding_owed = false;  // the stream ends inside a ChannelData's padding
};

Reading read_whole(Bytes s, std::size_t max_stun, std::size_t max_channel) {
  Reading r;
  bool seen_stun = false;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t left = s.size() - pos;
    const std::uint8_t* p = s.data() + pos;
    std::size_t size = 0;
    FrameKind kind;
    if (p[0] < 0x40) {
      kind = FrameKind::kStun;
      if (left < 8) {
        break;
      }
      if (load_be32(p + 4) != 0x2112A442) {
        r.error = StreamError::kBadMagicCookie;
        break;
      }
      if (load_be16(p + 2) % 4 != 0) {
        r.error = StreamError::kBadStunLength;
        break;
      }
      size = 20 + load_be16(p + 2);
      if (size > max_stun) {
        r.error = StreamError::kStunTooLarge;
        break;
      }
    } else if (p[0] < 0x80) {
      kind = FrameKind::kChannelData;
      if (!seen_stun) {
        r.error = StreamError::kChannelBeforeStun;
        break;
      }
      if (left < 4) {
        break;
      }
      size = 4 + load_be16(p + 2);
      if (size > max_channel) {
        r.error = StreamError::kChannelTooLarge;
        break;
      }
    } else {
      r.error = StreamError::kNotTurn;
      break;
    }
    if (left < size) {
      break;
    }
    r.frames.push_back({pos, size, kind});
    pos += size;
    if (kind == FrameKind::kStun) {
      seen_stun = true;
    } else {
      std::size_t padded = pos + (4 - size % 4) % 4;
      if (padded > s.size()) {
        r.padding_owed = true;
        pos = s.size();
        break;
      }
      pos = padded;
    }
  }
  r.end = pos;
  return r;
}

void check_frame_shape(const StreamFrame& f, std::size_t max_stun, std::size_t max_channel) {
  const std::uint8_t* p = f.bytes.data();
  if (f.kind == FrameKind::kStun) {
    FUZZ_CHECK(f.bytes.size() >= 20 && f.bytes.size() <= max_stun);
    FUZZ_CHECK((p[0] & 0xC0) == 0);
    FUZZ_CHECK(load_be32(p + 4) == 0x2112A442);
    FUZZ_CHECK(load_be16(p + 2) % 4 == 0);
    FUZZ_CHECK(f.bytes.size() == 20u + load_be16(p + 2));
  } else {
    FUZZ_CHECK(f.bytes.size() >= 4 && f.bytes.size() <= max_channel);
    FUZZ_CHECK((p[0] & 0xC0) == 0x40);
    FUZZ_CHECK(f.bytes.size() == 4u + load_be16(p + 2));
    FUZZ_CHECK(f.channel() >= 0x4000 && f.channel() <= 0x7FFF);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) {
    return 0;
  }
  std::uint8_t flags = data[0];
  std::size_t cuts[3] = {data[1] + 1u, data[2] + 1u, data[3] + 1u};
  if (flags & 2) {
    for (auto& c : cuts) {
      c *= 64;
    }
  }
  StreamFramerConfig config;
  if (flags & 1) {
    config.max_stun_frame = flags * 2u;
    config.max_channel_frame = flags * 3u;
  }
  std::size_t max_stun = std::clamp<std::size_t>(config.max_stun_frame, 20, 20 + 0xFFFC);
  std::size_t max_channel = std::clamp<std::size_t>(config.max_channel_frame, 4, 4 + 0xFFFF);
  Bytes stream(data + 4, size - 4);
  Reading want = read_whole(stream, max_stun, max_channel);

  StreamFramerCounters counters;
  StreamFramer framer(counters, config);
  FUZZ_CHECK(framer.bound() == std::max(max_stun, max_channel));
  std::size_t got = 0;
  std::size_t pos = 0;
  std::uint64_t now = 1000;
  // The chunk in which each expected frame starts, for the age of a partial frame.
  std::vector<std::uint64_t> chunk_time_of(stream.size() + 1, 0);
  for (std::size_t i = 0; pos < stream.size(); ++i) {
    std::size_t n = std::min(cuts[i % 3], stream.size() - pos);
    // A copy of its own, so that "in the chunk" is checked against this chunk only.
    std::vector<std::uint8_t> chunk(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                    stream.begin() + static_cast<std::ptrdiff_t>(pos + n));
    ++now;
    std::fill(chunk_time_of.begin() + static_cast<std::ptrdiff_t>(pos),
              chunk_time_of.begin() + static_cast<std::ptrdiff_t>(pos + n), now);
    framer.push(chunk, now);
    while (auto f = framer.next()) {
      FUZZ_CHECK(!framer.failed());
      FUZZ_CHECK(got < want.frames.size());
      const Expected& e = want.frames[got++];
      check_frame_shape(*f, max_stun, max_channel);
      FUZZ_CHECK(f->kind == e.kind && f->bytes.size() == e.size);
      FUZZ_CHECK(std::equal(f->bytes.begin(), f->bytes.end(), stream.begin() + e.offset));
      bool whole_in_chunk = e.offset >= pos && e.offset + e.size <= pos + n;
      FUZZ_CHECK(f->reassembled == !whole_in_chunk);
      if (whole_in_chunk) {
        FUZZ_CHECK(f->bytes.data() == chunk.data() + (e.offset - pos));
      }
      FUZZ_CHECK(framer.buffered_bytes() <= framer.bound());
    }
    FUZZ_CHECK(framer.buffered_bytes() <= framer.bound());
    FUZZ_CHECK(framer.reserved_bytes() <= framer.bound());
    FUZZ_CHECK(framer.buffered_bytes() <= framer.reserved_bytes());
    pos += n;
  }
  FUZZ_CHECK(got == want.frames.size());
  FUZZ_CHECK(framer.error() == want.error);
  FUZZ_CHECK(counters.stun_frames + counters.channel_frames == got);
  if (want.error != StreamError::kNone) {
    FUZZ_CHECK(framer.failed() && counters.failed(want.error) == 1);
    FUZZ_CHECK(framer.buffered_bytes() == 0 && !framer.partial_since_ms());
    // Nothing after a failure, whatever follows.
    framer.push(stream, ++now);
    FUZZ_CHECK(!framer.next());
    FUZZ_CHECK(framer.error() == want.error && counters.failed(want.error) == 1);
    return 0;
  }
  if (want.padding_owed) {
    // The frame before the padding is out; its last byte's chunk started the wait.
    const Expected& last = want.frames.back();
    FUZZ_CHECK(framer.buffered_bytes() == 0 && !framer.at_boundary());
    FUZZ_CHECK(framer.partial_since_ms() == chunk_time_of[last.offset + last.size - 1]);
  } else if (want.end < stream.size()) {
    FUZZ_CHECK(framer.buffered_bytes() == stream.size() - want.end);
    FUZZ_CHECK(framer.partial_since_ms() == chunk_time_of[want.end]);
    FUZZ_CHECK(framer.partial_waiting_since(now) && !framer.partial_waiting_since(999));
  } else {
    FUZZ_CHECK(framer.at_boundary() && !framer.partial_since_ms());
    FUZZ_CHECK(!framer.partial_waiting_since(now));
  }
  return 0;
}
