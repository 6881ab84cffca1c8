// RFC 2198 RED payloads as libwebrtc sends Opus in them: the block headers and lengths read
// back, malformed ones refused, and the copy a receiver gets (RED kept, renumbered, or stripped
// to the primary block) byte for byte.
#include "ringlane/dataplane/rtp/red.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "ringlane/dataplane/rtp/packet.hpp"

namespace ringlane::rtp {
namespace {

// One redundant block (PT 111, 960 samples = 20 ms earlier, 5 bytes) and the primary (PT 111).
std::vector<std::uint8_t> red_payload() {
  std::vector<std::uint8_t> p = {
      0x80 | 111, 0x0F, 0x00, 0x05,       // F=1, PT 111, offset 960 (0x3C0 << 2 ...), length 5
      111,                                // F=0, PT 111: the primary
      'r',        'r',  'r',  'r',  'r',  // the redundant block
      'P',        'P',  'P',  'P',  'P', 'P', 'P'};
  // 960 = 0b00 1111 0000 00: 14 bits, split 8 | 6 over bytes 1 and 2 (low 2 bits of byte 2 are
  // the top of the length).
  p[1] = static_cast<std::uint8_t>(960 >> 6);
  p[2] = static_cast<std::uint8_t>((960 & 0x3F) << 2);
  return p;
}

TEST(Red, ParsesBlocks) {
  auto payload = red_payload();
  auto red = parse_red(payload);
  ASSERT_TRUE(red);
  EXPECT_EQ(red->header_size, 5u);
  ASSERT_EQ(red->redundant, 1u);
  EXPECT_EQ(red->blocks[0].payload_type, 111);
  EXPECT_EQ(red->blocks[0].timestamp_offset, 960);
  EXPECT_EQ(red->blocks[0].offset, 5u);
  EXPECT_EQ(red->blocks[0].size, 5u);
  EXPECT_EQ(red->primary.payload_type, 111);
  EXPECT_EQ(red->primary.offset, 10u);
  EXPECT_EQ(red->primary.size, 7u);
}

TEST(Red, PrimaryOnlyAndEmptyPrimary) {
  std::vector<std::uint8_t> only = {111, 1, 2, 3};
  auto red = parse_red(only);
  ASSERT_TRUE(red);
  EXPECT_EQ(red->redundant, 0u);
  EXPECT_EQ(red->primary.offset, 1u);
  EXPECT_EQ(red->primary.size, 3u);
  std::vector<std::uint8_t> empty_primary = {0x80 | 111, 0x0F, 0x00, 0x02, 111, 9, 9};
  red = parse_red(empty_primary);
  ASSERT_TRUE(red);
  EXPECT_EQ(red->primary.size, 0u);
  EXPECT_EQ(red->primary.offset, 7u);
}

TEST(Red, RefusesMalformed) {
  EXPECT_FALSE(parse_red({}));  // no header at all
  std::vector<std::uint8_t> cut = {0x80 | 111, 0x0F, 0x00};
  EXPECT_FALSE(parse_red(cut));  // a 4-byte header cut short
  std::vector<std::uint8_t> no_primary = {0x80 | 111, 0x0F, 0x00, 0x00};
  EXPECT_FALSE(parse_red(no_primary));  // F=1 but no further header
  std::vector<std::uint8_t> past = {0x80 | 111, 0x0F, 0x00, 0x09, 111, 1, 2, 3};
  EXPECT_FALSE(parse_red(past));  // block length 9 past the end
  std::vector<std::uint8_t> max_len = {0x80 | 111, 0x0F, 0x03, 0xFF, 111};
  EXPECT_FALSE(parse_red(max_len));  // 1023 bytes claimed
  std::vector<std::uint8_t> many;
  for (std::size_t i = 0; i <= RedPayload::kMaxRedundant; ++i) {
    many.insert(many.end(), {0x80 | 111, 0, 0, 0});
  }
  many.push_back(111);
  EXPECT_FALSE(parse_red(many));
  many.erase(many.begin(), many.begin() + 4);  // exactly kMaxRedundant: accepted
  EXPECT_TRUE(parse_red(many));
}

TEST(Red, RewritesBlockPayloadTypes) {
  auto payload = red_payload();
  auto red = parse_red(payload);
  ASSERT_TRUE(red);
  rewrite_red_payload_types(payload, *red, 111, 109);
  EXPECT_EQ(payload[0], 0x80 | 109);
  EXPECT_EQ(payload[1], 960 >> 6);  // the rest of the header is untouched
  EXPECT_EQ(payload[4], 109);
  EXPECT_EQ(payload[5], 'r');
}

std::vector<std::uint8_t> packet(std::uint8_t pt, const std::vector<std::uint8_t>& payload,
                                 std::uint8_t padding = 0) {
  const std::uint8_t header[12] = {0x80, static_cast<std::uint8_t>(0x80 | pt),
                                   0x12, 0x34,
                                   0x00, 0x01,
                                   0x02, 0x03,
                                   0xAA, 0xBB,
                                   0xCC, 0xDD};
  std::vector<std::uint8_t> p(12 + payload.size() + padding, 0);
  std::copy(header, header + 12, p.begin());
  std::copy(payload.begin(), payload.end(), p.begin() + 12);
  if (padding != 0) {
    p[0] |= 0x20;
    p.back() = padding;
  }
  return p;
}

TEST(Red, CopyForReceiver) {
  auto in = packet(63, red_payload(), 4);
  auto view = RtpPacket::parse(in);
  ASSERT_TRUE(view);
  std::vector<std::uint8_t> out(in.size(), 0xEE);

  // Stripped: the header (marker, sequence, timestamp, SSRC as they were; no padding) and the
  // primary's 7 bytes, under the receiver's Opus PT.
  std::size_t n = copy_for_receiver(out.data(), *view, 63, 0, 111, 110);
  std::vector<std::uint8_t> want = {0x80, 0x80 | 110, 0x12, 0x34, 0x00, 0x01, 0x02,
                                    0x03, 0xAA,       0xBB, 0xCC, 0xDD, 'P',  'P',
                                    'P',  'P',        'P',  'P',  'P'};
  EXPECT_EQ(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)), want);

  // Kept: the whole packet under the receiver's RED PT, its blocks renumbered to its Opus PT.
  n = copy_for_receiver(out.data(), *view, 63, 62, 111, 110);
  ASSERT_EQ(n, in.size());
  EXPECT_EQ(out[1], 0x80 | 62);
  EXPECT_EQ(out[12], 0x80 | 110);
  EXPECT_EQ(out[16], 110);
  EXPECT_TRUE(std::equal(in.begin() + 17, in.end(), out.begin() + 17));

  // Plain Opus from the same publisher: copied under the receiver's Opus PT.
  auto opus = packet(111, {1, 2, 3});
  auto plain = RtpPacket::parse(opus);
  ASSERT_TRUE(plain);
  n = copy_for_receiver(out.data(), *plain, 63, 0, 111, 110);
  ASSERT_EQ(n, opus.size());
  EXPECT_EQ(out[1], 0x80 | 110);
  EXPECT_TRUE(std::equal(opus.begin() + 2, opus.end(), out.begin() + 2));
}

}  // namespace
}  // namespace ringlane::rtp
