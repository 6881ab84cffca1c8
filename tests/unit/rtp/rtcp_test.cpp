// RTCP compound parsing and builders, byte for byte.
#include "ringlane/dataplane/rtp/rtcp.hpp"

#include <gtest/gtest.h>

#include "unit/test_util.hpp"

namespace ringlane::rtcp {
namespace {
using ringlane::testing::from_hex;

std::vector<std::uint8_t> v(Bytes b) {
  return {b.begin(), b.end()};
}

// SR with one report block, then SDES with a CNAME: the compound every sender emits.
const auto kSrSdes = from_hex(
    "81c8000c 11223344 e8d4a510 00000000 0001e240 00000064 00003e80"  // SR, RC=1
    "55667788 05fffffe 00010203 00000010 aabbccdd 00000100"           // block: lost -2
    "81ca0004 11223344 01066162 63646566 00000000");                  // SDES CNAME "abcdef"

TEST(Rtcp, ParsesSenderReportAndSdes) {
  auto c = Compound::parse(kSrSdes);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->packets().size(), 2u);
  auto sr = parse_sr(c->packets()[0]);
  ASSERT_TRUE(sr);
  EXPECT_EQ(sr->ssrc, 0x11223344u);
  EXPECT_EQ(sr->ntp, 0xe8d4a51000000000ull);
  EXPECT_EQ(sr->rtp_timestamp, 123456u);
  EXPECT_EQ(sr->packet_count, 100u);
  EXPECT_EQ(sr->octet_count, 16000u);
  ASSERT_EQ(sr->blocks.size(), 1u);
  EXPECT_EQ(sr->blocks[0].ssrc, 0x55667788u);
  EXPECT_EQ(sr->blocks[0].fraction_lost, 5);
  EXPECT_EQ(sr->blocks[0].cumulative_lost, -2);
  EXPECT_EQ(sr->blocks[0].highest_sequence, 0x00010203u);
  EXPECT_EQ(sr->blocks[0].delay_since_last_sr, 0x100u);
  std::vector<SdesItem> items;
  ASSERT_TRUE(parse_sdes(c->packets()[1], items));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].type, 1);
  EXPECT_EQ(as_string(items[0].value), "abcdef");
}

TEST(Rtcp, RefusesBrokenCompounds) {
  auto bad_version = kSrSdes;
  bad_version[28 + 24] = 0x41;  // second packet's version 1
  EXPECT_FALSE(Compound::parse(bad_version));
  auto too_long = kSrSdes;
  too_long[3] = 0x40;  // first packet claims more than there is
  EXPECT_FALSE(Compound::parse(too_long));
  auto padded_first = kSrSdes;
  padded_first[0] |= 0x20;  // padding on a packet that is not last
  EXPECT_FALSE(Compound::parse(padded_first));
  for (std::size_t n = 1; n < kSrSdes.size(); ++n) {
    if (n == 52)
      continue;  // the SR alone is a valid compound
    EXPECT_FALSE(Compound::parse(Bytes(kSrSdes.data(), n))) << n;
  }
  EXPECT_FALSE(Compound::parse(Bytes{}));
  // A report count larger than the packet: the compound parses, the SR view refuses.
  auto lying_rc = from_hex("82c80006 11223344 00000000 00000000 00000000 00000000 00000000");
  auto c = Compound::parse(lying_rc);
  ASSERT_TRUE(c);
  EXPECT_FALSE(parse_sr(c->packets()[0]));
}

TEST(Rtcp, ReceiverReportRoundTrip) {
  ReportBlock b{0xAABBCCDD, 64, -5, 70000, 12, 0x11112222, 655};
  std::array<std::uint8_t, 64> out{};
  std::size_t n = build_rr(out, 0x01020304, std::span(&b, 1));
  ASSERT_EQ(n, 32u);
  EXPECT_EQ(v(Bytes(out.data(), n)),
            from_hex("81c90007 01020304 aabbccdd 40fffffb 00011170 0000000c 11112222 0000028f"));
  auto c = Compound::parse(Bytes(out.data(), n));
  ASSERT_TRUE(c);
  auto rr = parse_rr(c->packets()[0]);
  ASSERT_TRUE(rr);
  EXPECT_EQ(rr->ssrc, 0x01020304u);
  ASSERT_EQ(rr->blocks.size(), 1u);
  EXPECT_EQ(rr->blocks[0], b);
}

TEST(Rtcp, PliAndFirBytes) {
  std::array<std::uint8_t, 32> out{};
  ASSERT_EQ(build_pli(out, 1, 0x22222222), 12u);
  EXPECT_EQ(v(Bytes(out.data(), 12)), from_hex("81ce0002 00000001 22222222"));
  auto f = parse_feedback(Compound::parse(Bytes(out.data(), 12))->packets()[0]);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->fmt, kFmtPli);
  EXPECT_EQ(f->media_ssrc, 0x22222222u);

  FirEntry e{0x33333333, 9};
  ASSERT_EQ(build_fir(out, 1, std::span(&e, 1)), 20u);
  EXPECT_EQ(v(Bytes(out.data(), 20)), from_hex("84ce0004 00000001 00000000 33333333 09000000"));
  auto fir = parse_fir(*parse_feedback(Compound::parse(Bytes(out.data(), 20))->packets()[0]));
  ASSERT_TRUE(fir);
  EXPECT_EQ(fir->at(0), e);
}

TEST(Rtcp, NackPacksAndUnpacks) {
  std::vector<std::uint16_t> lost = {100, 101, 105, 116, 117, 200, 65535};
  std::array<std::uint8_t, 64> out{};
  std::size_t n = build_nack(out, 1, 2, lost);
  // (100, bits for 101 105 116) (117, none) (200, none) (65535, none)
  EXPECT_EQ(v(Bytes(out.data(), n)),
            from_hex("81cd0006 00000001 00000002 00648011 00750000 00c80000 ffff0000"));
  auto parsed = parse_nack(*parse_feedback(Compound::parse(Bytes(out.data(), n))->packets()[0]));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, lost);
  // Wrap-around: 65534 then 0 and 1 fit one pair.
  std::vector<std::uint16_t> wrap = {65534, 0, 1};
  n = build_nack(out, 1, 2, wrap);
  EXPECT_EQ(n, 16u);
  EXPECT_EQ(*parse_nack(*parse_feedback(Compound::parse(Bytes(out.data(), n))->packets()[0])),
            wrap);
}

TEST(Rtcp, RembBytesAndBitrate) {
  std::array<std::uint8_t, 64> out{};
  std::uint32_t ssrcs[] = {0x11111111, 0x22222222};
  std::size_t n = build_remb(out, 0x01, 1'000'000, ssrcs);
  // 1,000,000 = 250,000 << 2: exp 2, mantissa 0x3d090.
  EXPECT_EQ(v(Bytes(out.data(), n)),
            from_hex("8fce0006 00000001 00000000 52454d42 020bd090 11111111 22222222"));
  auto r = parse_remb(*parse_feedback(Compound::parse(Bytes(out.data(), n))->packets()[0]));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bitrate_bps, 1'000'000u);
  EXPECT_EQ(r->ssrcs, std::vector<std::uint32_t>(std::begin(ssrcs), std::end(ssrcs)));
  // A rate that does not fit 18 bits loses its low bits, never its magnitude.
  n = build_remb(out, 1, 123'456'789'012ull, {});
  EXPECT_NEAR(static_cast<double>(
                  parse_remb(*parse_feedback(Compound::parse(Bytes(out.data(), n))->packets()[0]))
                      ->bitrate_bps),
              123'456'789'012.0, 123'456'789'012.0 / (1 << 17));
}

TEST(Rtcp, TransportWideFeedback) {
  // base 100, 5 packets, reference time 1 (64 ms), feedback #7; a run of three "small delta"
  // then a 2-bit vector [large, not received]; deltas 4, 8, 0 (x250 us) and -4 (x250 us).
  auto bytes = from_hex(
      "8fcd0007 00000001 00000002"
      "00640005 00000107 2003e000 040800ff fc000000");
  bytes[0] = 0x8f;  // FMT 15, RTPFB
  auto c = Compound::parse(bytes);
  ASSERT_TRUE(c);
  auto f = parse_feedback(c->packets()[0]);
  ASSERT_TRUE(f);
  auto t = parse_transport_cc(*f);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->base_sequence, 100);
  EXPECT_EQ(t->reference_time, 1);
  EXPECT_EQ(t->feedback_count, 7);
  ASSERT_EQ(t->packets.size(), 5u);
  EXPECT_EQ(t->packets[0].delta_us, 1000);
  EXPECT_EQ(t->packets[1].delta_us, 2000);
  EXPECT_EQ(t->packets[2].delta_us, 0);
  EXPECT_TRUE(t->packets[3].received);
  EXPECT_EQ(t->packets[3].delta_us, -1000);
  EXPECT_FALSE(t->packets[4].received);
  EXPECT_EQ(t->packets[4].sequence, 104);
  // Deltas cut short: refused.
  Feedback shorter = *f;
  shorter.fci = f->fci.first(14);
  EXPECT_FALSE(parse_transport_cc(shorter));
  // A run-length chunk claiming more packets than the cap: refused, not allocated.
  auto huge = from_hex("8fcd0005 00000001 00000002 0064ffff 00000107 3fff0000");
  auto hf = parse_feedback(Compound::parse(huge)->packets()[0]);
  EXPECT_FALSE(parse_transport_cc(*hf));
}

TEST(Rtcp, ByeAndApp) {
  auto bytes = from_hex("81cb0003 11223344 04627965 21000000 80cc0003 11223344 54455354 01020304");
  auto c = Compound::parse(bytes);
  ASSERT_TRUE(c);
  auto bye = parse_bye(c->packets()[0]);
  ASSERT_TRUE(bye);
  EXPECT_EQ(bye->ssrcs, std::vector<std::uint32_t>{0x11223344});
  EXPECT_EQ(as_string(bye->reason), "bye!");
  auto lying = from_hex("81cb0002 11223344 09627965");  // reason longer than the packet
  EXPECT_FALSE(parse_bye(Compound::parse(lying)->packets()[0]));
  auto app = parse_app(c->packets()[1]);
  ASSERT_TRUE(app);
  EXPECT_EQ(std::string(app->name.begin(), app->name.end()), "TEST");
  EXPECT_EQ(app->data.size(), 4u);
}

}  // namespace
}  // namespace ringlane::rtcp
