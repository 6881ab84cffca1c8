// What the SFU reads of video payloads, byte for byte: the VP8 payload descriptor (RFC 7741
// §4.2) and its rewrite, and the first packet of a keyframe for VP8, VP9 (RFC 9628 §4.2), H264
// (RFC 6184 §5.6-5.8) and AV1 (the AV1 RTP payload format §4.4). Every truncation of a
// descriptor is refused, never read past.
#include "ringlane/dataplane/rtp/codec.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ringlane::rtp {
namespace {

using Codec = shm::Codec;
using Buf = std::vector<std::uint8_t>;

std::optional<Vp8Descriptor> vp8(const Buf& b) {
  return parse_vp8(Bytes(b.data(), b.size()));
}
bool key(Codec c, const Buf& b) {
  return starts_keyframe(c, Bytes(b.data(), b.size()));
}

// VP8 payload descriptor first octet |X|R|N|S|R|PID|; the extension octet |I|L|T|K|RSV|.
constexpr std::uint8_t kX = 0x80;
constexpr std::uint8_t kS = 0x10;
constexpr std::uint8_t kI = 0x80;
constexpr std::uint8_t kL = 0x40;
constexpr std::uint8_t kT = 0x20;
constexpr std::uint8_t kK = 0x10;
// §4.3: the VP8 payload header's first octet; P (bit 0) is 0 for a key frame.
constexpr std::uint8_t kKeyHeader = 0x00;
constexpr std::uint8_t kDeltaHeader = 0x01;

TEST(CodecVp8, NoExtension) {
  auto d = vp8({kS, kKeyHeader, 0x9D, 0x01, 0x2A});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 1u);
  EXPECT_TRUE(d->start);
  EXPECT_EQ(d->partition, 0);
  EXPECT_FALSE(d->has_picture_id);
  EXPECT_FALSE(d->has_tl0picidx);
  EXPECT_FALSE(d->has_tid);
  EXPECT_FALSE(d->has_keyidx);
  EXPECT_TRUE(d->keyframe);

  // N and the reserved bits are ignored; the partition index is the low three bits.
  d = vp8({0x20 | 0x40 | 0x08 | 0x05, 0xFF});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 1u);
  EXPECT_FALSE(d->start);
  EXPECT_EQ(d->partition, 5);
  EXPECT_FALSE(d->keyframe);
}

TEST(CodecVp8, ShortPictureId) {
  auto d = vp8({kX | kS, kI, 0x7E, kDeltaHeader});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 3u);
  EXPECT_TRUE(d->has_picture_id);
  EXPECT_FALSE(d->long_picture_id);
  EXPECT_EQ(d->picture_id, 0x7E);
  EXPECT_EQ(d->picture_id_at, 2u);
  EXPECT_FALSE(d->has_tl0picidx);
  EXPECT_FALSE(d->has_tid);
  EXPECT_FALSE(d->has_keyidx);
  EXPECT_FALSE(d->keyframe);
}

TEST(CodecVp8, LongPictureId) {
  auto d = vp8({kX | kS, kI, 0x80 | 0x7A, 0xBC, kKeyHeader});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 4u);
  EXPECT_TRUE(d->has_picture_id);
  EXPECT_TRUE(d->long_picture_id);
  EXPECT_EQ(d->picture_id, 0x7ABC);
  EXPECT_EQ(d->picture_id_at, 2u);
  EXPECT_TRUE(d->keyframe);
}

TEST(CodecVp8, Tl0PicIdxOnly) {
  auto d = vp8({kX | kS, kL, 0xFE, kKeyHeader});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 3u);
  EXPECT_FALSE(d->has_picture_id);
  EXPECT_TRUE(d->has_tl0picidx);
  EXPECT_EQ(d->tl0picidx, 0xFE);
  EXPECT_EQ(d->tl0picidx_at, 2u);
  EXPECT_FALSE(d->has_tid);
  EXPECT_FALSE(d->has_keyidx);
  EXPECT_TRUE(d->keyframe);
}

TEST(CodecVp8, TidOnly) {
  // |TID=2|Y=1|KEYIDX=0b10101|: with T alone KEYIDX is not meaningful.
  auto d = vp8({kX, kT, 0x80 | 0x20 | 0x15});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 3u);
  EXPECT_TRUE(d->has_tid);
  EXPECT_EQ(d->tid, 2);
  EXPECT_TRUE(d->layer_sync);
  EXPECT_FALSE(d->has_keyidx);
  EXPECT_FALSE(d->start);
  EXPECT_FALSE(d->keyframe);
}

TEST(CodecVp8, KeyIdxOnly) {
  auto d = vp8({kX | kS, kK, 0x1F, kDeltaHeader});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 3u);
  EXPECT_FALSE(d->has_tid);
  EXPECT_TRUE(d->has_keyidx);
  EXPECT_EQ(d->keyidx, 0x1F);
  EXPECT_EQ(d->keyidx_at, 2u);
  EXPECT_FALSE(d->keyframe);
}

TEST(CodecVp8, EveryField) {
  // Long picture id 0x1234, TL0PICIDX 0x56, TID 1 without Y, KEYIDX 5.
  auto d = vp8({kX | kS, kI | kL | kT | kK, 0x80 | 0x12, 0x34, 0x56, 0x40 | 0x05, kKeyHeader, 1});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 6u);
  EXPECT_TRUE(d->start);
  EXPECT_EQ(d->picture_id, 0x1234);
  EXPECT_TRUE(d->long_picture_id);
  EXPECT_EQ(d->picture_id_at, 2u);
  EXPECT_EQ(d->tl0picidx, 0x56);
  EXPECT_EQ(d->tl0picidx_at, 4u);
  EXPECT_TRUE(d->has_tid);
  EXPECT_EQ(d->tid, 1);
  EXPECT_FALSE(d->layer_sync);
  EXPECT_TRUE(d->has_keyidx);
  EXPECT_EQ(d->keyidx, 5);
  EXPECT_EQ(d->keyidx_at, 5u);
  EXPECT_TRUE(d->keyframe);

  // Short picture id with L and T: the offsets move up by one.
  d = vp8({kX, kI | kL | kT, 0x11, 0x22, 0xC0});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 5u);
  EXPECT_EQ(d->picture_id, 0x11);
  EXPECT_EQ(d->tl0picidx_at, 3u);
  EXPECT_EQ(d->keyidx_at, 4u);
  EXPECT_EQ(d->tid, 3);
}

TEST(CodecVp8, KeyframeNeedsStartOfPartitionZeroAndPZero) {
  const Buf desc = {kX, kI | kL, 0x80, 0x01, 0x07};
  auto with = [&](std::uint8_t first, std::uint8_t header) {
    Buf b = desc;
    b[0] |= first;
    b.push_back(header);
    return b;
  };
  EXPECT_TRUE(key(Codec::kVp8, with(kS, kKeyHeader)));
  EXPECT_TRUE(key(Codec::kVp8, with(kS, 0xF0)));  // only bit 0 (P) counts: size, show_frame
  EXPECT_FALSE(key(Codec::kVp8, with(kS, kDeltaHeader)));
  EXPECT_FALSE(key(Codec::kVp8, with(0, kKeyHeader)));       // not the start of a partition
  EXPECT_FALSE(key(Codec::kVp8, with(kS | 1, kKeyHeader)));  // partition 1 starts there
  // The descriptor alone, no payload header after it: nothing says it is a key frame.
  Buf bare = with(kS, kKeyHeader);
  bare.pop_back();
  ASSERT_TRUE(vp8(bare));
  EXPECT_FALSE(vp8(bare)->keyframe);
  EXPECT_FALSE(key(Codec::kVp8, bare));
}

TEST(CodecVp8, EveryTruncationIsRefused) {
  const Buf full = {kX | kS, kI | kL | kT | kK, 0x80 | 0x12, 0x34, 0x56, 0x45};
  ASSERT_TRUE(vp8(full));
  for (std::size_t n = 0; n < full.size(); ++n) {
    Buf cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(vp8(cut)) << n << " bytes";
    EXPECT_FALSE(key(Codec::kVp8, cut)) << n << " bytes";
  }
  // Each optional field cut off on its own.
  EXPECT_FALSE(vp8({kX, kI}));
  EXPECT_FALSE(vp8({kX, kI, 0x81}));  // M says 15 bits, one byte there
  EXPECT_FALSE(vp8({kX, kL}));
  EXPECT_FALSE(vp8({kX, kT}));
  EXPECT_FALSE(vp8({kX, kK}));
  EXPECT_FALSE(vp8({kX, kI | kT, 0x05}));
}

TEST(CodecVp8, RewriteRoundTrip) {
  Buf b = {kX | kS, kI | kL | kT | kK,  0x80 | 0x12, 0x34,
           0x56,    0x40 | 0x20 | 0x05, kKeyHeader,  0xAA,
           0xBB};
  const Buf before = b;
  auto d = vp8(b);
  ASSERT_TRUE(d);
  rewrite_vp8(MutableBytes(b.data(), b.size()), *d, 0x7FFE, 0x01, 0x1C);
  auto again = vp8(b);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size, d->size);
  EXPECT_TRUE(again->long_picture_id);
  EXPECT_EQ(again->picture_id, 0x7FFE);
  EXPECT_EQ(again->tl0picidx, 0x01);
  EXPECT_EQ(again->keyidx, 0x1C);
  // TID and Y share the KEYIDX octet and stay; nothing else moved.
  EXPECT_EQ(again->tid, 1);
  EXPECT_TRUE(again->layer_sync);
  EXPECT_TRUE(again->keyframe);
  EXPECT_EQ(b, (Buf{kX | kS, kI | kL | kT | kK, 0x80 | 0x7F, 0xFE, 0x01, 0x40 | 0x20 | 0x1C,
                    kKeyHeader, 0xAA, 0xBB}));
  // And back to what it was.
  rewrite_vp8(MutableBytes(b.data(), b.size()), *again, 0x1234, 0x56, 0x05);
  EXPECT_EQ(b, before);
}

TEST(CodecVp8, RewriteKeepsWidthAndLeavesAbsentFieldsAlone) {
  // A 7-bit picture id stays 7 bits (the value wraps there); no TL0PICIDX or KEYIDX to write.
  Buf b = {kX | kS, kI | kT, 0x10, 0x80, kDeltaHeader, 0x33};
  auto d = vp8(b);
  ASSERT_TRUE(d);
  rewrite_vp8(MutableBytes(b.data(), b.size()), *d, 0x0181, 0x99, 0x1F);
  EXPECT_EQ(b, (Buf{kX | kS, kI | kT, 0x01, 0x80, kDeltaHeader, 0x33}));
  auto again = vp8(b);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->long_picture_id);
  EXPECT_EQ(again->picture_id, 0x01);
  EXPECT_EQ(again->tid, 2);

  // No extension at all: nothing to write.
  Buf plain = {kS, kKeyHeader, 0x44};
  d = vp8(plain);
  ASSERT_TRUE(d);
  rewrite_vp8(MutableBytes(plain.data(), plain.size()), *d, 0x1234, 0x56, 0x07);
  EXPECT_EQ(plain, (Buf{kS, kKeyHeader, 0x44}));

  // A descriptor parsed from a longer payload never writes past a shorter one.
  Buf longer = {kX, kI | kL, 0x80, 0x01, 0x02};
  d = vp8(longer);
  ASSERT_TRUE(d);
  Buf shorter = {kX, kI | kL};
  rewrite_vp8(MutableBytes(shorter.data(), shorter.size()), *d, 0x2222, 0x33, 0);
  EXPECT_EQ(shorter, (Buf{kX, kI | kL}));
}

// RFC 9628 §4.2: |I|P|L|F|B|E|V|Z|, then the picture id (with I), then |TID|U|SID|D| (with L).
constexpr std::uint8_t kVp9I = 0x80;
constexpr std::uint8_t kVp9P = 0x40;
constexpr std::uint8_t kVp9L = 0x20;
constexpr std::uint8_t kVp9F = 0x10;
constexpr std::uint8_t kVp9B = 0x08;
constexpr std::uint8_t kVp9E = 0x04;

TEST(CodecVp9, KeyframeIsNotInterPredictedAndBeginsAFrame) {
  EXPECT_TRUE(key(Codec::kVp9, {kVp9B, 0x82}));
  EXPECT_TRUE(key(Codec::kVp9, {kVp9B | kVp9E, 0x82}));
  EXPECT_TRUE(key(Codec::kVp9, {kVp9I | kVp9B, 0x05, 0x82}));
  EXPECT_TRUE(key(Codec::kVp9, {kVp9I | kVp9B, 0x80 | 0x12, 0x34, 0x82}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9P | kVp9B, 0x82}));       // inter-predicted
  EXPECT_FALSE(key(Codec::kVp9, {kVp9E, 0x82}));               // not the beginning of the frame
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9P | kVp9B, 1}));  // both
}

TEST(CodecVp9, WithLayerIndicesOnlyTheBaseSpatialLayer) {
  // Non-flexible mode: picture id, |TID|U|SID|D|, TL0PICIDX.
  const std::uint8_t sid0 = (2 << 5) | (0 << 1);  // TID 2, SID 0
  const std::uint8_t sid1 = (0 << 5) | (1 << 1);  // TID 0, SID 1
  EXPECT_TRUE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x80 | 0x01, 0x02, sid0, 0x07}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x80 | 0x01, 0x02, sid1, 0x07}));
  EXPECT_TRUE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x03, sid0, 0x07}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x03, sid1, 0x07}));
  // No picture id: the layer indices come first.
  EXPECT_TRUE(key(Codec::kVp9, {kVp9L | kVp9B, sid0, 0x07}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9L | kVp9B, sid1, 0x07}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9L | kVp9B, 7 << 1, 0x07}));  // SID 7
  // Flexible mode has no TL0PICIDX: the octet after the layer indices is not needed.
  EXPECT_TRUE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9F | kVp9B, 0x03, sid0}));
  // Inter-predicted base layer: not a keyframe.
  EXPECT_FALSE(key(Codec::kVp9, {kVp9P | kVp9L | kVp9B, sid0, 0x07}));
}

TEST(CodecVp9, TruncatedIsNotAKeyframe) {
  EXPECT_FALSE(key(Codec::kVp9, {}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x81}));        // 15-bit id, one byte
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x81, 0x02}));  // no layer indices
  EXPECT_FALSE(key(Codec::kVp9, {kVp9I | kVp9L | kVp9B, 0x01}));
  EXPECT_FALSE(key(Codec::kVp9, {kVp9L | kVp9B}));
}

// RFC 6184 §1.3: |F|NRI|Type|.
constexpr std::uint8_t kNri = 0x60;

TEST(CodecH264, SingleNalUnits) {
  EXPECT_TRUE(key(Codec::kH264, {kNri | 5, 0x88, 0x84}));  // IDR slice
  EXPECT_TRUE(key(Codec::kH264, {kNri | 7, 0x42, 0xC0}));  // SPS
  EXPECT_FALSE(key(Codec::kH264, {kNri | 8, 0xCE}));       // PPS
  EXPECT_FALSE(key(Codec::kH264, {0x40 | 1, 0x9A}));       // non-IDR slice
  EXPECT_FALSE(key(Codec::kH264, {6, 0x05}));              // SEI
  EXPECT_FALSE(key(Codec::kH264, {}));
  EXPECT_FALSE(key(Codec::kH264, {kNri | 0}));   // reserved
  EXPECT_FALSE(key(Codec::kH264, {kNri | 25}));  // STAP-B: not sent in packetization-mode 1
}

TEST(CodecH264, StapA) {
  // §5.7.1: |STAP-A NAL HDR| (size, NAL unit)...; libwebrtc sends SPS, PPS and the IDR so.
  EXPECT_TRUE(key(Codec::kH264, {kNri | 24, 0x00, 0x02, kNri | 7, 0x42, 0x00, 0x02, kNri | 8, 0xCE,
                                 0x00, 0x02, kNri | 5, 0x88}));
  // An IDR after parameter sets that are not SPS.
  EXPECT_TRUE(
      key(Codec::kH264, {kNri | 24, 0x00, 0x02, kNri | 8, 0xCE, 0x00, 0x02, kNri | 5, 0x88}));
  // Only a PPS and a non-IDR slice.
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00, 0x02, kNri | 8, 0xCE, 0x00, 0x02, 0x41, 0x9A}));
  // The second unit's size runs past the packet: it is not read.
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00, 0x02, kNri | 8, 0xCE, 0x00, 0x09, kNri | 5}));
  // The first unit's size runs past the packet, though an SPS byte follows it.
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00, 0x05, kNri | 7, 0x42}));
  // A zero size stops the walk.
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00, 0x00, kNri | 7, 0x42}));
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24}));
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00}));
  EXPECT_FALSE(key(Codec::kH264, {kNri | 24, 0x00, 0x01}));
}

TEST(CodecH264, FuA) {
  // §5.8: FU indicator |F|NRI|28|, FU header |S|E|R|Type|.
  EXPECT_TRUE(key(Codec::kH264, {kNri | 28, 0x80 | 5, 0x88}));         // start of an IDR
  EXPECT_FALSE(key(Codec::kH264, {kNri | 28, 5, 0x88}));               // middle of an IDR
  EXPECT_FALSE(key(Codec::kH264, {kNri | 28, 0x40 | 5, 0x88}));        // end of an IDR
  EXPECT_FALSE(key(Codec::kH264, {kNri | 28, 0x80 | 1, 0x9A}));        // start of a non-IDR
  EXPECT_TRUE(key(Codec::kH264, {kNri | 28, 0x80 | 0x40 | 5, 0x88}));  // start and end
  EXPECT_FALSE(key(Codec::kH264, {kNri | 28}));                        // no FU header
}

// AV1 RTP payload format §4.4: aggregation header |Z|Y|W|W|N|-|-|-|.
TEST(CodecAv1, NewCodedVideoSequenceStartsAKeyframe) {
  EXPECT_TRUE(key(Codec::kAv1, {0x08, 0x0A, 0x00}));           // N, W=0
  EXPECT_TRUE(key(Codec::kAv1, {0x10 | 0x08, 0x0A}));          // N, W=1
  EXPECT_TRUE(key(Codec::kAv1, {0x40 | 0x08, 0x0A}));          // N, Y: the last OBU continues
  EXPECT_FALSE(key(Codec::kAv1, {0x10, 0x32}));                // no N
  EXPECT_FALSE(key(Codec::kAv1, {0x80 | 0x08, 0x32}));         // Z: continues an earlier OBU
  EXPECT_FALSE(key(Codec::kAv1, {0x80 | 0x40 | 0x10, 0x32}));  // a middle fragment
  EXPECT_FALSE(key(Codec::kAv1, {}));
}

TEST(CodecOther, AudioAndUnknownCodecsHaveNoKeyframes) {
  EXPECT_FALSE(key(Codec::kOpus, {kS, kKeyHeader}));
  EXPECT_FALSE(key(Codec::kOther, {kNri | 5, 0x88}));
}

}  // namespace
}  // namespace ringlane::rtp
