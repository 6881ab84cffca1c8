// The TURN stream framer (RFC 8656 §12.5, RFC 8489 §6.2.2): frames cut at every byte, padded
// ChannelData, every refusal, the buffered-bytes figure and the age of a partial frame.
#include "ringlane/dataplane/turn/stream_framer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "unit/test_util.hpp"

namespace ringlane::turn {
namespace {
using ringlane::testing::from_hex;
using Frame = std::vector<std::uint8_t>;

// RFC 5769 §2.1: a real Binding request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
// MESSAGE-INTEGRITY, FINGERPRINT).
const Frame kBindingRequest = from_hex(
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e7400240004"
    "6e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56"
    "781ef2b5b2d3f249c1b571a280280004e57a3bcf");
// An Allocate request with REQUESTED-TRANSPORT UDP (RFC 8656 §7.1).
const Frame kAllocateRequest = from_hex(
    "000300082112a442010203040506070809101112"
    "0019000411000000");

// A STUN message of `attr_bytes` bytes of attributes (an opaque SOFTWARE-like filler).
Frame stun_message(std::uint16_t type, std::uint16_t attr_bytes) {
  Frame f(stun::kHeaderSize + attr_bytes, 0xAB);
  store_be16(f.data(), type);
  store_be16(f.data() + 2, attr_bytes);
  store_be32(f.data() + 4, stun::kMagicCookie);
  for (std::size_t i = 8; i < stun::kHeaderSize; ++i) {
    f[i] = static_cast<std::uint8_t>(i);
  }
  return f;
}

// A ChannelData message as the framer yields it: no padding.
Frame channel_data(std::uint16_t channel, std::size_t length) {
  Frame f(kChannelDataHeaderSize + length);
  store_be16(f.data(), channel);
  store_be16(f.data() + 2, static_cast<std::uint16_t>(length));
  for (std::size_t i = 0; i < length; ++i) {
    f[kChannelDataHeaderSize + i] = static_cast<std::uint8_t>(i * 7 + 1);
  }
  return f;
}

std::size_t padding_of(const Frame& f) {
  return (4 - f.size() % 4) % 4;
}

// Frames as they go on the wire: ChannelData padded (with non-zero bytes: the receiver
// ignores them).
Frame wire(const std::vector<Frame>& frames) {
  Frame out;
  for (const auto& f : frames) {
    out.insert(out.end(), f.begin(), f.end());
    if (f[0] >> 6 == 1) {
      out.insert(out.end(), padding_of(f), 0xEE);
    }
  }
  return out;
}

struct Got {
  FrameKind kind;
  Frame bytes;
  bool reassembled;
  bool in_chunk;             // the span pointed into the chunk just pushed
  std::size_t chunk_offset;  // where, if so
};

// Pushes one chunk and drains it, checking where each frame's bytes live.
void push_and_drain(StreamFramer& framer, Bytes chunk, std::uint64_t now, std::vector<Got>& out) {
  framer.push(chunk, now);
  while (auto f = framer.next()) {
    const std::uint8_t* p = f->bytes.data();
    bool in_chunk = p >= chunk.data() && p + f->bytes.size() <= chunk.data() + chunk.size();
    out.push_back({f->kind, Frame(f->bytes.begin(), f->bytes.end()), f->reassembled, in_chunk,
                   in_chunk ? static_cast<std::size_t>(p - chunk.data()) : 0});
  }
}

class StreamFramerTest : public ::testing::Test {
 protected:
  StreamFramerCounters counters;
};

TEST_F(StreamFramerTest, WholeFrameIsHandedOutInPlace) {
  StreamFramer framer(counters);
  std::vector<Got> got;
  push_and_drain(framer, kBindingRequest, 1, got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, FrameKind::kStun);
  EXPECT_EQ(got[0].bytes, kBindingRequest);
  EXPECT_FALSE(got[0].reassembled);
  EXPECT_TRUE(got[0].in_chunk);
  EXPECT_EQ(got[0].chunk_offset, 0u);
  EXPECT_TRUE(framer.at_boundary());
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_EQ(framer.reserved_bytes(), 0u);  // zero copy: nothing was ever allocated
  EXPECT_FALSE(framer.partial_since_ms());
  EXPECT_EQ(counters.stun_frames, 1u);
  EXPECT_EQ(counters.reassembled_frames, 0u);
}

TEST_F(StreamFramerTest, BackToBackMixedFramesInOneChunk) {
  std::vector<Frame> frames = {
      kAllocateRequest,        channel_data(0x4000, 1), channel_data(0x4001, 4), kBindingRequest,
      channel_data(0x7FFF, 0), channel_data(0x4FFF, 6), stun_message(0x0011, 0)};
  Frame stream = wire(frames);
  StreamFramer framer(counters);
  std::vector<Got> got;
  push_and_drain(framer, stream, 1, got);
  ASSERT_EQ(got.size(), frames.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].bytes, frames[i]);
    EXPECT_EQ(got[i].kind, frames[i][0] < 0x40 ? FrameKind::kStun : FrameKind::kChannelData);
    EXPECT_FALSE(got[i].reassembled);
    EXPECT_TRUE(got[i].in_chunk);
    EXPECT_EQ(got[i].chunk_offset, offset);
    offset +=
        frames[i].size() + (got[i].kind == FrameKind::kChannelData ? padding_of(frames[i]) : 0);
  }
  EXPECT_EQ(offset, stream.size());
  EXPECT_EQ(counters.stun_frames, 3u);
  EXPECT_EQ(counters.channel_frames, 4u);
  EXPECT_EQ(counters.padding_bytes, 3u + 0u + 0u + 2u);
  EXPECT_EQ(framer.reserved_bytes(), 0u);
  EXPECT_TRUE(framer.at_boundary());
}

TEST_F(StreamFramerTest, FrameAccessors) {
  Frame cd = channel_data(0x4123, 3);
  Frame stream = wire({kAllocateRequest, cd});
  StreamFramer framer(counters);
  framer.push(stream, 0);
  auto stun = framer.next();
  ASSERT_TRUE(stun);
  EXPECT_EQ(stun->payload().size(), 8u);
  EXPECT_EQ(stun->payload()[0], 0x00);
  EXPECT_EQ(stun->payload()[1], 0x19);  // REQUESTED-TRANSPORT
  auto ch = framer.next();
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->kind, FrameKind::kChannelData);
  EXPECT_EQ(ch->channel(), 0x4123);
  EXPECT_EQ(Frame(ch->payload().begin(), ch->payload().end()), Frame(cd.begin() + 4, cd.end()));
  EXPECT_FALSE(framer.next());
}

// Every cut of a mixed stream into two chunks: the same frames, in place when whole in a chunk,
// in the framer's buffer (one copy) when they straddle the cut.
TEST_F(StreamFramerTest, SplitAtEveryBytePositionAcrossTwoChunks) {
  std::vector<Frame> frames = {kAllocateRequest, channel_data(0x4000, 5), kBindingRequest,
                               channel_data(0x4001, 0), channel_data(0x4002, 2)};
  Frame stream = wire(frames);
  // Where each frame starts and ends in the stream.
  std::vector<std::size_t> starts;
  std::size_t pos = 0;
  for (const auto& f : frames) {
    starts.push_back(pos);
    pos += f.size() + (f[0] >= 0x40 ? padding_of(f) : 0);
  }
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE(cut);
    StreamFramerCounters c;
    StreamFramer framer(c);
    // Separate allocations, so "points into the chunk" means that chunk.
    Frame first(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut));
    Frame second(stream.begin() + static_cast<std::ptrdiff_t>(cut), stream.end());
    std::vector<Got> got;
    push_and_drain(framer, first, 10, got);
    std::size_t from_first = got.size();
    push_and_drain(framer, second, 20, got);
    ASSERT_EQ(got.size(), frames.size());
    std::size_t straddling = 0;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      SCOPED_TRACE(i);
      EXPECT_EQ(got[i].bytes, frames[i]);
      std::size_t begin = starts[i];
      std::size_t end = begin + frames[i].size();
      if (end <= cut) {
        EXPECT_LT(i, from_first);
        EXPECT_FALSE(got[i].reassembled);
        EXPECT_TRUE(got[i].in_chunk);
        EXPECT_EQ(got[i].chunk_offset, begin);
      } else if (begin >= cut) {
        EXPECT_FALSE(got[i].reassembled);
        EXPECT_TRUE(got[i].in_chunk);
        EXPECT_EQ(got[i].chunk_offset, begin - cut);
      } else {
        ++straddling;
        EXPECT_TRUE(got[i].reassembled);
        EXPECT_FALSE(got[i].in_chunk);
      }
    }
    EXPECT_EQ(c.reassembled_frames, straddling);
    EXPECT_LE(straddling, 1u);
    EXPECT_LE(framer.reserved_bytes(), framer.bound());
    EXPECT_TRUE(framer.at_boundary());
    EXPECT_FALSE(framer.partial_since_ms());
    EXPECT_EQ(c.padding_bytes, 3u + 0u + 2u);
  }
}

TEST_F(StreamFramerTest, ManyOneByteChunks) {
  std::vector<Frame> frames = {kAllocateRequest, channel_data(0x4000, 5), kBindingRequest,
                               channel_data(0x4001, 0), channel_data(0x4002, 3)};
  Frame stream = wire(frames);
  StreamFramer framer(counters);
  std::vector<Got> got;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    Frame one{stream[i]};
    std::size_t before = got.size();
    push_and_drain(framer, one, i, got);
    if (got.size() > before) {
      copied += got.back().bytes.size();
    }
    EXPECT_LE(framer.buffered_bytes(), framer.bound());
    EXPECT_LE(framer.reserved_bytes(), framer.bound());
  }
  ASSERT_EQ(got.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].bytes, frames[i]);
    EXPECT_TRUE(got[i].reassembled);
    EXPECT_FALSE(got[i].in_chunk);
  }
  // One copy of each frame's bytes, none of the padding.
  EXPECT_EQ(counters.reassembled_bytes, copied);
  EXPECT_EQ(copied, stream.size() - counters.padding_bytes);
  EXPECT_TRUE(framer.at_boundary());
}

TEST_F(StreamFramerTest, BufferedBytesFollowAPartialFrame) {
  StreamFramer framer(counters);
  std::vector<Got> got;
  Frame stream = wire({kBindingRequest, channel_data(0x4000, 9)});
  // The Binding request whole and 3 bytes of the ChannelData header.
  std::size_t cut = kBindingRequest.size() + 3;
  push_and_drain(framer, Bytes(stream).first(cut), 5, got);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(framer.buffered_bytes(), 3u);
  EXPECT_FALSE(framer.at_boundary());
  for (std::size_t i = cut; i < kBindingRequest.size() + 13; ++i) {
    push_and_drain(framer, Bytes(stream).subspan(i, 1), 6, got);
    std::size_t expected = i + 1 - kBindingRequest.size();
    EXPECT_EQ(framer.buffered_bytes(), expected == 13 ? 0 : expected);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].bytes.size(), 13u);
  // The 3 padding bytes are still owed: not at a boundary, though nothing is buffered.
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_FALSE(framer.at_boundary());
  EXPECT_EQ(framer.partial_since_ms(), 6u);
  push_and_drain(framer, Bytes(stream).subspan(kBindingRequest.size() + 13), 7, got);
  EXPECT_TRUE(framer.at_boundary());
  EXPECT_FALSE(framer.partial_since_ms());
  EXPECT_EQ(counters.padding_bytes, 3u);
}

// RFC 8656 §12.5: padding to a multiple of 4, not counted in the length.
TEST_F(StreamFramerTest, ChannelDataLengthsZeroToSevenArePadded) {
  for (std::size_t length = 0; length <= 7; ++length) {
    SCOPED_TRACE(length);
    Frame cd = channel_data(0x4000, length);
    std::vector<Frame> frames = {kAllocateRequest, cd, kBindingRequest, cd};
    Frame stream = wire(frames);
    EXPECT_EQ(stream.size() % 4, 0u);
    for (bool bytewise : {false, true}) {
      SCOPED_TRACE(bytewise);
      StreamFramerCounters c;
      StreamFramer framer(c);
      std::vector<Got> got;
      if (bytewise) {
        for (std::size_t i = 0; i < stream.size(); ++i) {
          push_and_drain(framer, Bytes(stream).subspan(i, 1), i, got);
        }
      } else {
        push_and_drain(framer, stream, 0, got);
      }
      ASSERT_EQ(got.size(), frames.size());
      for (std::size_t i = 0; i < frames.size(); ++i) {
        EXPECT_EQ(got[i].bytes, frames[i]);
      }
      EXPECT_EQ(got[1].kind, FrameKind::kChannelData);
      EXPECT_EQ(got[1].bytes.size(), 4 + length);
      EXPECT_EQ(c.padding_bytes, 2 * ((4 - length % 4) % 4));
      EXPECT_TRUE(framer.at_boundary());
      EXPECT_FALSE(framer.failed());
    }
  }
}

struct Refusal {
  const char* name;
  Frame stream;
  StreamError error;
  std::size_t frames_before;  // good frames yielded before the refusal
};

std::vector<Refusal> refusals() {
  Frame bad_cookie = kBindingRequest;
  bad_cookie[4] ^= 0x01;
  Frame bad_length = stun_message(0x0001, 8);
  store_be16(bad_length.data() + 2, 6);
  Frame http = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n'};
  // The start of a TLS ClientHello: record type 22 passes the top-bits test for STUN.
  Frame client_hello = from_hex("160301020001 0001fc0303 0000000000000000000000");
  Frame after_stun = wire({kBindingRequest});
  auto then = [](Frame a, const Frame& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  return {
      {"rtp_first_byte", then(after_stun, from_hex("80600001 00000000 00000000")),
       StreamError::kNotTurn, 1},
      {"first_byte_0xC0", from_hex("c0000000"), StreamError::kNotTurn, 0},
      {"first_byte_0xFF", from_hex("ff"), StreamError::kNotTurn, 0},
      {"channel_data_first", wire({channel_data(0x4000, 4)}), StreamError::kChannelBeforeStun, 0},
      {"http_request", http, StreamError::kChannelBeforeStun, 0},
      {"bad_cookie", bad_cookie, StreamError::kBadMagicCookie, 0},
      {"tls_client_hello", client_hello, StreamError::kBadMagicCookie, 0},
      {"bad_cookie_after_good", then(after_stun, bad_cookie), StreamError::kBadMagicCookie, 1},
      {"stun_length_not_multiple_of_4", bad_length, StreamError::kBadStunLength, 0},
      // Garbage after a frame whose padding was skipped: 0x90 right after the padding.
      {"garbage_after_padding",
       then(wire({kBindingRequest, channel_data(0x4000, 1)}), from_hex("90000000")),
       StreamError::kNotTurn, 2},
  };
}

TEST_F(StreamFramerTest, RefusalsWholeAndBytewise) {
  for (const auto& r : refusals()) {
    SCOPED_TRACE(r.name);
    for (bool bytewise : {false, true}) {
      SCOPED_TRACE(bytewise);
      StreamFramerCounters c;
      StreamFramer framer(c);
      std::vector<Got> got;
      if (bytewise) {
        for (std::size_t i = 0; i < r.stream.size(); ++i) {
          push_and_drain(framer, Bytes(r.stream).subspan(i, 1), i, got);
        }
      } else {
        push_and_drain(framer, r.stream, 0, got);
      }
      EXPECT_TRUE(framer.failed());
      EXPECT_EQ(framer.error(), r.error) << to_string(framer.error());
      EXPECT_EQ(c.failed(r.error), 1u);
      EXPECT_EQ(got.size(), r.frames_before);
      EXPECT_EQ(framer.buffered_bytes(), 0u);
      EXPECT_EQ(framer.reserved_bytes(), 0u);
      EXPECT_FALSE(framer.partial_since_ms());
      // Out of sync for good: a well-formed frame afterwards is not yielded.
      push_and_drain(framer, kBindingRequest, 100, got);
      EXPECT_EQ(got.size(), r.frames_before);
      EXPECT_EQ(framer.error(), r.error);
      EXPECT_EQ(c.failed(r.error), 1u);
    }
  }
}

// The STUN header is judged once its 8 first bytes are there, whatever the chunking.
TEST_F(StreamFramerTest, MagicCookieJudgedAtTheEighthByte) {
  Frame bad = kBindingRequest;
  bad[7] = 0x00;
  StreamFramer framer(counters);
  std::vector<Got> got;
  for (std::size_t i = 0; i < 7; ++i) {
    push_and_drain(framer, Bytes(bad).subspan(i, 1), i, got);
    EXPECT_FALSE(framer.failed());
    EXPECT_EQ(framer.buffered_bytes(), i + 1);
  }
  push_and_drain(framer, Bytes(bad).subspan(7, 1), 7, got);
  EXPECT_EQ(framer.error(), StreamError::kBadMagicCookie);
}

TEST_F(StreamFramerTest, FramesOverTheMaximumAreRefusedOnTheHeader) {
  StreamFramerConfig config;
  config.max_stun_frame = 100;
  config.max_channel_frame = 100;
  {
    // 20 + 80 = 100 passes, 20 + 84 does not; only the header is needed to say so.
    StreamFramer framer(counters, config);
    EXPECT_EQ(framer.bound(), 100u);
    std::vector<Got> got;
    push_and_drain(framer, stun_message(0x0001, 80), 0, got);
    EXPECT_EQ(got.size(), 1u);
    Frame big = stun_message(0x0001, 84);
    push_and_drain(framer, Bytes(big).first(8), 1, got);
    EXPECT_EQ(framer.error(), StreamError::kStunTooLarge);
    EXPECT_EQ(counters.failed(StreamError::kStunTooLarge), 1u);
  }
  {
    StreamFramer framer(counters, config);
    std::vector<Got> got;
    push_and_drain(framer, wire({kAllocateRequest, channel_data(0x4000, 96)}), 0, got);
    EXPECT_EQ(got.size(), 2u);
    Frame big = channel_data(0x4000, 97);
    push_and_drain(framer, Bytes(big).first(4), 1, got);
    EXPECT_EQ(framer.error(), StreamError::kChannelTooLarge);
    EXPECT_EQ(counters.failed(StreamError::kChannelTooLarge), 1u);
    EXPECT_EQ(got.size(), 2u);
  }
}

// A 64 KiB length that never arrives: the caller sees the bytes held and since when.
TEST_F(StreamFramerTest, LargestFrameTrickledInIsBoundedAndAged) {
  StreamFramer framer(counters);
  EXPECT_EQ(framer.bound(), stun::kHeaderSize + 0xFFFC);  // the largest STUN message
  Frame big = stun_message(0x0003, 0xFFFC);
  std::vector<Got> got;
  push_and_drain(framer, Bytes(big).first(1000), 100, got);
  EXPECT_EQ(framer.buffered_bytes(), 1000u);
  EXPECT_EQ(framer.partial_since_ms(), 100u);
  EXPECT_TRUE(framer.partial_waiting_since(100));
  EXPECT_FALSE(framer.partial_waiting_since(99));
  std::size_t pos = 1000;
  std::uint64_t now = 100;
  while (pos + 4096 < big.size()) {
    push_and_drain(framer, Bytes(big).subspan(pos, 4096), ++now, got);
    pos += 4096;
    EXPECT_EQ(framer.buffered_bytes(), pos);
    // Age counts from the frame's first byte, not its latest.
    EXPECT_EQ(framer.partial_since_ms(), 100u);
    EXPECT_LE(framer.reserved_bytes(), framer.bound());
    EXPECT_GE(framer.reserved_bytes(), framer.buffered_bytes());
  }
  EXPECT_TRUE(got.empty());
  push_and_drain(framer, Bytes(big).subspan(pos), ++now, got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, big);
  EXPECT_TRUE(got[0].reassembled);
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_FALSE(framer.partial_since_ms());
  EXPECT_FALSE(framer.partial_waiting_since(now));
  EXPECT_EQ(counters.reassembled_bytes, big.size());
  EXPECT_EQ(framer.reserved_bytes(), framer.bound());
  framer.release_buffer();
  EXPECT_EQ(framer.reserved_bytes(), 0u);
}

TEST_F(StreamFramerTest, PartialAgeRestartsWithEachFrame) {
  Frame stream = wire({kBindingRequest, kAllocateRequest});
  StreamFramer framer(counters);
  std::vector<Got> got;
  push_and_drain(framer, Bytes(stream).first(10), 10, got);
  EXPECT_EQ(framer.partial_since_ms(), 10u);
  // Completes the first frame and starts the second: its wait starts now.
  push_and_drain(framer, Bytes(stream).subspan(10, kBindingRequest.size()), 20, got);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(framer.partial_since_ms(), 20u);
  EXPECT_FALSE(framer.partial_waiting_since(19));
  push_and_drain(framer, Bytes(stream).subspan(10 + kBindingRequest.size()), 30, got);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_FALSE(framer.partial_since_ms());
  // An empty chunk changes nothing.
  push_and_drain(framer, Bytes{}, 40, got);
  EXPECT_TRUE(framer.at_boundary());
  EXPECT_FALSE(framer.partial_since_ms());
}

TEST_F(StreamFramerTest, PartialAgeRestartsAfterOwedPadding) {
  Frame stream = wire({kBindingRequest, channel_data(0x4000, 1), kAllocateRequest});
  std::size_t frame_end = kBindingRequest.size() + 5;
  StreamFramer framer(counters);
  std::vector<Got> got;
  push_and_drain(framer, Bytes(stream).first(frame_end + 1), 10, got);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(framer.partial_since_ms(), 10u);  // 2 padding bytes owed
  // The rest of the padding and part of the next frame: that frame waits from now.
  push_and_drain(framer, Bytes(stream).subspan(frame_end + 1, 12), 20, got);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(framer.buffered_bytes(), 10u);
  EXPECT_EQ(framer.partial_since_ms(), 20u);
  push_and_drain(framer, Bytes(stream).subspan(frame_end + 13), 30, got);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].bytes, kAllocateRequest);
  EXPECT_FALSE(framer.partial_since_ms());
}

TEST_F(StreamFramerTest, ReassemblyBufferGrowsOnlyAsFramesNeed) {
  StreamFramer framer(counters);
  std::vector<Got> got;
  Frame small = wire({kAllocateRequest});
  push_and_drain(framer, Bytes(small).first(5), 0, got);
  push_and_drain(framer, Bytes(small).subspan(5), 0, got);
  EXPECT_EQ(framer.reserved_bytes(), 2048u);
  Frame big = stun_message(0x0001, 3000);
  push_and_drain(framer, Bytes(big).first(5), 0, got);
  EXPECT_EQ(framer.reserved_bytes(), 2048u);  // the length is not known yet
  push_and_drain(framer, Bytes(big).subspan(5, 5), 0, got);
  EXPECT_EQ(framer.reserved_bytes(), 4096u);
  framer.release_buffer();  // not at a boundary: kept
  EXPECT_EQ(framer.reserved_bytes(), 4096u);
  push_and_drain(framer, Bytes(big).subspan(10), 0, got);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].bytes, big);
  // The same sizes again: no new allocation.
  push_and_drain(framer, Bytes(big).first(100), 0, got);
  push_and_drain(framer, Bytes(big).subspan(100), 0, got);
  EXPECT_EQ(framer.reserved_bytes(), 4096u);
  EXPECT_EQ(got.size(), 3u);
}

TEST_F(StreamFramerTest, ErrorNames) {
  EXPECT_STREQ(to_string(StreamError::kNotTurn), "not_turn");
  EXPECT_STREQ(to_string(StreamError::kBadMagicCookie), "bad_magic_cookie");
  EXPECT_STREQ(to_string(StreamError::kBadStunLength), "bad_stun_length");
  EXPECT_STREQ(to_string(StreamError::kStunTooLarge), "stun_too_large");
  EXPECT_STREQ(to_string(StreamError::kChannelTooLarge), "channel_too_large");
  EXPECT_STREQ(to_string(StreamError::kChannelBeforeStun), "channel_before_stun");
}

TEST_F(StreamFramerTest, PushingBeforeDrainingIsACallerBug) {
  Frame stream = wire({kBindingRequest, kBindingRequest});
  EXPECT_DEATH(
      {
        StreamFramer framer(counters);
        framer.push(stream, 0);
        (void)framer.next();
        framer.push(stream, 1);
      },
      "not framed yet");
}

}  // namespace
}  // namespace ringlane::turn
