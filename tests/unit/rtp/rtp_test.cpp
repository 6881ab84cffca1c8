// RTP views and RFC 7983 demultiplexing, byte for byte.
#include "ringlane/dataplane/rtp/packet.hpp"

#include <gtest/gtest.h>

#include "ringlane/dataplane/rtp/demux.hpp"
#include "unit/test_util.hpp"

namespace ringlane::rtp {
namespace {
using ringlane::testing::from_hex;

// An Opus packet as Chrome sends it: PT 111, one-byte extensions (RFC 8285) carrying
// ssrc-audio-level (id 1) and transport-wide sequence number (id 3), then padding.
const auto kOpus = from_hex("906f1234 000003c0 11223344 bede0002 10aa3101 02000000 deadbeef");

TEST(Demux, ClassifiesByFirstByte) {
  auto kind = [](std::initializer_list<std::uint8_t> b) {
    std::vector<std::uint8_t> v(b);
    return classify(v);
  };
  EXPECT_EQ(kind({0x00, 0x01}), PacketKind::kStun);
  EXPECT_EQ(kind({0x01, 0x01}), PacketKind::kStun);
  EXPECT_EQ(kind({0x10}), PacketKind::kZrtp);
  EXPECT_EQ(kind({0x16, 0xfe, 0xfd}), PacketKind::kDtls);  // handshake record
  EXPECT_EQ(kind({0x17, 0xfe, 0xfd}), PacketKind::kDtls);  // application data
  EXPECT_EQ(kind({0x40, 0x00}), PacketKind::kTurnChannel);
  EXPECT_EQ(kind({0x90, 0x6f}), PacketKind::kRtp);
  EXPECT_EQ(kind({0x80, 0xe0}), PacketKind::kRtp);   // PT 96 with marker
  EXPECT_EQ(kind({0x81, 0xc8}), PacketKind::kRtcp);  // SR
  EXPECT_EQ(kind({0x8f, 0xce}), PacketKind::kRtcp);  // PSFB
  EXPECT_EQ(kind({0x80}), PacketKind::kUnknown);
  EXPECT_EQ(kind({0xff, 0x00}), PacketKind::kUnknown);
  EXPECT_EQ(kind({}), PacketKind::kUnknown);
}

TEST(RtpPacket, ParsesChromeOpusPacket) {
  auto bytes = kOpus;
  auto p = RtpPacket::parse(bytes);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload_type(), 111);
  EXPECT_FALSE(p->marker());
  EXPECT_EQ(p->sequence(), 0x1234);
  EXPECT_EQ(p->timestamp(), 960u);
  EXPECT_EQ(p->ssrc(), 0x11223344u);
  EXPECT_EQ(p->extension_profile(), RtpPacket::kOneByteProfile);
  EXPECT_EQ(p->header_size(), 24u);
  auto level = p->extension(1);
  ASSERT_TRUE(level);
  EXPECT_EQ(std::vector<std::uint8_t>(level->begin(), level->end()),
            std::vector<std::uint8_t>{0xaa});
  auto twcc = p->extension(3);
  ASSERT_TRUE(twcc);
  EXPECT_EQ(load_be16(twcc->data()), 0x0102);
  EXPECT_FALSE(p->extension(2));
  EXPECT_EQ(p->payload().size(), 4u);
  EXPECT_EQ(load_be32(p->payload().data()), 0xdeadbeefu);
}

TEST(RtpPacket, RewritesInPlaceForASubscriber) {
  auto bytes = kOpus;
  auto p = RtpPacket::parse(bytes);
  ASSERT_TRUE(p);
  p->set_ssrc(0xCAFEBABE);
  p->set_sequence(7);
  p->set_timestamp(0x01020304);
  p->set_payload_type(100);
  p->set_marker(true);
  std::uint8_t seq[2] = {0xAB, 0xCD};
  EXPECT_TRUE(p->set_extension(3, seq));
  std::uint8_t wrong[3] = {1, 2, 3};
  EXPECT_FALSE(p->set_extension(3, wrong));
  EXPECT_FALSE(p->set_extension(9, seq));
  EXPECT_EQ(bytes, from_hex("90e40007 01020304 cafebabe bede0002 10aa31ab cd000000 deadbeef"));
}

TEST(RtpPacket, CsrcsTwoByteExtensionsAndPadding) {
  auto bytes = from_hex(
      "b2600001 00000001 00000002"  // V=2 P=1 X=1 CC=2, PT 96
      "0000000a 0000000b"           // CSRCs
      "10000002 07020102 08000000"  // two-byte profile: id 7 len 2, id 8 len 0, padding
      "aabbcc 00 00 00 03");        // payload aabbcc00, then 3 bytes of padding (last = 3)
  auto p = RtpPacket::parse(bytes);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->csrc_count(), 2);
  EXPECT_EQ(p->csrc(1), 0x0bu);
  auto e7 = p->extension(7);
  ASSERT_TRUE(e7);
  EXPECT_EQ(e7->size(), 2u);
  auto e8 = p->extension(8);
  ASSERT_TRUE(e8);
  EXPECT_EQ(e8->size(), 0u);
  EXPECT_EQ(p->padding_size(), 3);
  EXPECT_EQ(p->payload().size(), 4u);
}

TEST(RtpPacket, RefusesWhatDoesNotAddUp) {
  auto expect_error = [](std::vector<std::uint8_t> b, RtpError want) {
    RtpError e{};
    EXPECT_FALSE(RtpPacket::parse(b, &e));
    EXPECT_EQ(e, want);
  };
  expect_error(from_hex("80600001"), RtpError::kTooShort);
  expect_error(from_hex("40600001 00000001 00000002"), RtpError::kBadVersion);
  expect_error(from_hex("8f600001 00000001 00000002 00000003"), RtpError::kBadCsrc);
  expect_error(from_hex("90600001 00000001 00000002 bede0005 10aa0000"), RtpError::kBadExtension);
  expect_error(from_hex("90600001 00000001 00000002 bede"), RtpError::kBadExtension);
  expect_error(from_hex("a0600001 00000001 00000002 aabb0000"), RtpError::kBadPadding);  // pad 0
  expect_error(from_hex("a0600001 00000001 00000002 aabb0009"), RtpError::kBadPadding);  // too long
  // Every truncation of a valid packet with an extension is refused or shorter-but-consistent.
  for (std::size_t n = 0; n < 24; ++n) {
    std::vector<std::uint8_t> cut(kOpus.begin(), kOpus.begin() + static_cast<long>(n));
    EXPECT_FALSE(RtpPacket::parse(cut)) << n;
  }
}

TEST(RtpPacket, MalformedExtensionElementsStopTheWalk) {
  // One-byte element claiming 16 bytes inside a 4-byte block: not found, no overread.
  auto bytes = from_hex("90600001 00000001 00000002 bede0001 1f000000");
  auto p = RtpPacket::parse(bytes);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->extension(1));
  // Unknown profile: no elements.
  auto other = from_hex("90600001 00000001 00000002 12340001 10aa0000");
  auto q = RtpPacket::parse(other);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->extension(1));
}

}  // namespace
}  // namespace ringlane::rtp

namespace ringlane::rtp {
namespace {
TEST(RtpPacket, SrtpHeaderParseLeavesPaddingToAfterDecryption) {
  // P set and a last byte that is really tag: parse() refuses, the header parse does not.
  auto bytes = ringlane::testing::from_hex("a0600001 00000001 00000002 aabbccdd eeff0000");
  EXPECT_FALSE(RtpPacket::parse(bytes));
  auto p = RtpPacket::parse_srtp_header(bytes);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->padding());
  EXPECT_EQ(p->padding_size(), 0);
  EXPECT_EQ(p->payload().size(), 8u);
}
}  // namespace
}  // namespace ringlane::rtp
