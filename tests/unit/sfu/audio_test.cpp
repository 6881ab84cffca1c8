// Audio at the SFU with real SRTP: RFC 2198 RED passed through to a subscriber that negotiated
// it (renumbered to its payload types) and stripped to the primary block for one that did not;
// malformed RED a counted drop; Opus DTX (few packets, timestamp jumps, continuous sequence
// numbers) counted as neither loss nor freeze; REMB to a publisher without transport-cc, never
// to one with it.
#include <gtest/gtest.h>

#include <vector>

#include "../../../dataplane/src/sfu/remb_estimate.hpp"
#include "harness.hpp"
#include "ringlane/dataplane/rtp/red.hpp"

namespace ringlane::sfu::testing {
namespace {

constexpr std::uint8_t kOpus = 111;
constexpr std::uint8_t kRed = 63;

class AudioTest : public EngineTest {
 protected:
  // A publishes audio kAudio (Opus 111, RED 63 when `red`).
  void publish(bool red) {
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    shm::TrackAdd t;
    t.session = a_.session;
    t.ssrc = kAudio;
    t.kind = shm::MediaKind::kAudio;
    t.payload_type = kOpus;
    t.clock_rate = 48000;
    t.codec = shm::Codec::kOpus;
    t.red_payload_type = red ? kRed : 0;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(t)));
  }
  bool subscribe_audio(Browser& sub, std::uint32_t ssrc, std::uint8_t opus, std::uint8_t red) {
    shm::Subscribe s;
    s.subscriber = sub.session;
    s.publisher = a_.session;
    s.publisher_ssrc = kAudio;
    s.ssrc = ssrc;
    s.payload_type = opus;
    s.red_payload_type = red;
    s.extensions[4] = 0;
    s.extensions[13] = 3;
    return command(shm::Command::kSubscribe, shm::encode(s));
  }
  // An audio packet of A: the harness's header (extensions 4 and 13) and `payload`.
  void send_audio(std::uint8_t pt, std::uint16_t seq, std::uint32_t ts,
                  const std::vector<std::uint8_t>& payload) {
    Rtp r;
    r.ssrc = kAudio;
    r.payload_type = pt;
    r.sequence = seq;
    r.timestamp = ts;
    r.payload = 0;
    auto p = build_rtp(r);
    p.insert(p.end(), payload.begin(), payload.end());
    deliver(a_.address, protect_rtp(a_, std::move(p)));
  }
};

// One redundant block (20 ms earlier, 4 bytes) and a primary of 12 bytes, both Opus 111.
std::vector<std::uint8_t> red_payload(std::uint8_t seed) {
  std::vector<std::uint8_t> p = {0x80 | kOpus, 960 >> 6, (960 & 0x3F) << 2, 4, kOpus};
  for (int i = 0; i < 4; ++i) {
    p.push_back(static_cast<std::uint8_t>(0xA0 + i));
  }
  for (int i = 0; i < 12; ++i) {
    p.push_back(static_cast<std::uint8_t>(seed + i));
  }
  return p;
}

TEST_F(AudioTest, RedKeptForOneSubscriberStrippedForTheOther) {
  ASSERT_NO_FATAL_FAILURE(publish(true));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_NO_FATAL_FAILURE(connect(c_));
  // B negotiated RED (its numbering: Opus 109, RED 62); C did not (Opus 110).
  ASSERT_TRUE(subscribe_audio(b_, 0xB0B0, 109, 62));
  ASSERT_TRUE(subscribe_audio(c_, 0xC0C0, 110, 0));
  take_events();

  send_audio(kRed, 500, 48000, red_payload(0x10));
  auto at_b = rtp_at(b_);
  auto at_c = rtp_at(c_);
  ASSERT_EQ(at_b.size(), 1u);
  ASSERT_EQ(at_c.size(), 1u);
  auto pb = rtp::RtpPacket::parse(at_b[0]);
  auto pc = rtp::RtpPacket::parse(at_c[0]);
  ASSERT_TRUE(pb && pc);
  // Sequence numbers and timestamps unchanged on both; each its own SSRC.
  for (const auto* p : {&*pb, &*pc}) {
    EXPECT_EQ(p->sequence(), 500);
    EXPECT_EQ(p->timestamp(), 48000u);
  }
  EXPECT_EQ(pb->ssrc(), 0xB0B0u);
  EXPECT_EQ(pc->ssrc(), 0xC0C0u);
  // B: RED under 62, the block headers renumbered to its Opus 109, the data as sent.
  EXPECT_EQ(pb->payload_type(), 62);
  auto want_b = red_payload(0x10);
  want_b[0] = 0x80 | 109;
  want_b[4] = 109;
  auto got_b = pb->payload();
  EXPECT_EQ(std::vector<std::uint8_t>(got_b.begin(), got_b.end()), want_b);
  // C: the primary block alone, as Opus 110.
  EXPECT_EQ(pc->payload_type(), 110);
  auto got_c = pc->payload();
  auto sent_payload = red_payload(0x10);
  std::vector<std::uint8_t> want_c(sent_payload.begin() + 9, sent_payload.end());
  EXPECT_EQ(std::vector<std::uint8_t>(got_c.begin(), got_c.end()), want_c);
  EXPECT_EQ(at_c[0].size(), at_b[0].size() - 9);

  // Plain Opus from the same publisher reaches both as Opus in their numbering.
  send_audio(kOpus, 501, 48960, {1, 2, 3, 4});
  at_b = rtp_at(b_);
  at_c = rtp_at(c_);
  ASSERT_EQ(at_b.size(), 1u);
  ASSERT_EQ(at_c.size(), 1u);
  EXPECT_EQ(rtp::RtpPacket::parse(at_b[0])->payload_type(), 109);
  EXPECT_EQ(rtp::RtpPacket::parse(at_c[0])->payload_type(), 110);
  EXPECT_EQ(rtp::RtpPacket::parse(at_c[0])->payload().size(), 4u);
  EXPECT_EQ(dropped(Drop::kRedMalformed), 0u);
}

TEST_F(AudioTest, MalformedRedIsACountedDrop) {
  ASSERT_NO_FATAL_FAILURE(publish(true));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_NO_FATAL_FAILURE(connect(c_));
  ASSERT_TRUE(subscribe_audio(b_, 0xB0B0, 111, 63));
  ASSERT_TRUE(subscribe_audio(c_, 0xC0C0, 111, 0));
  std::uint64_t forwarded = counters().rtp_forwarded;
  const std::vector<std::vector<std::uint8_t>> bad = {
      {},                                                // no block header
      {0x80 | kOpus, 0x0F, 0x00},                        // a header cut short
      {0x80 | kOpus, 0x0F, 0x00, 0x00},                  // F=1 and nothing after
      {0x80 | kOpus, 0x0F, 0x00, 0x20, kOpus, 1, 2, 3},  // 32 bytes claimed, 3 there
  };
  std::uint16_t seq = 100;
  for (const auto& payload : bad) {
    send_audio(kRed, seq, 960u * seq, payload);
    ++seq;
  }
  EXPECT_EQ(dropped(Drop::kRedMalformed), bad.size());
  EXPECT_EQ(counters().rtp_forwarded, forwarded);
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_TRUE(rtp_at(c_).empty());
  // A good one after them still goes through.
  send_audio(kRed, seq, 960u * seq, red_payload(1));
  EXPECT_EQ(rtp_at(b_).size(), 1u);
  EXPECT_EQ(rtp_at(c_).size(), 1u);
}

// Receiver-report blocks A got about its audio.
template <typename RtcpList>
std::vector<rtcp::ReportBlock> audio_blocks(const RtcpList& rtcp, std::uint32_t ssrc) {
  std::vector<rtcp::ReportBlock> out;
  for (const auto& p : rtcp) {
    if (p.type != rtcp::kRr) {
      continue;
    }
    auto rr = rtcp::parse_rr(rtcp::Packet{p.count, p.type, p.bytes});
    if (rr) {
      for (const auto& b : rr->blocks) {
        if (b.ssrc == ssrc) {
          out.push_back(b);
        }
      }
    }
  }
  return out;
}

TEST_F(AudioTest, DtxIsNeitherLossNorFreeze) {
  ASSERT_NO_FATAL_FAILURE(publish(false));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_TRUE(subscribe_audio(b_, 0xB0B0, 111, 0));
  take_events();
  std::uint16_t seq = 1000;
  std::uint32_t ts = 0;
  std::size_t sent = 0;
  std::size_t forwarded = 0;
  std::vector<rtcp::ReportBlock> blocks;
  // Every packet `step_ms` after the last, its timestamp as far ahead (48 kHz), the timers run
  // as time passes.
  auto run = [&](int packets, std::uint32_t step_ms) {
    for (int i = 0; i < packets; ++i) {
      for (std::uint32_t t = 0; t < step_ms; t += 20) {
        advance(20);
        timer();
      }
      ts += step_ms * 48;
      send_audio(kOpus, seq++, ts, {0xF8, 0xFF, 0xFE});
      ++sent;
      forwarded += rtp_at(b_).size();
      auto got = audio_blocks(rtcp_at(a_), kAudio);
      blocks.insert(blocks.end(), got.begin(), got.end());
    }
  };
  // Talk (20 ms packets), DTX silence (Opus sends a comfort-noise frame every 400 ms, sequence
  // numbers continuous), talk again: 3 s of each.
  run(150, 20);
  run(8, 400);
  run(150, 20);
  EXPECT_EQ(forwarded, sent);
  ASSERT_GE(blocks.size(), 8u);
  for (const auto& b : blocks) {
    EXPECT_EQ(b.fraction_lost, 0);
    EXPECT_EQ(b.cumulative_lost, 0);
    EXPECT_EQ(b.jitter, 0u);  // arrivals exactly as the timestamps say
  }
  EXPECT_EQ(counters().upstream_nacks, 0u);
  EXPECT_EQ(counters().freezes, 0u);
  bool reported = false;
  for (const auto& r : out_.route_reports) {
    if (r.ssrc == 0xB0B0) {
      reported = true;
      EXPECT_EQ(r.kind, shm::MediaKind::kAudio);
      EXPECT_EQ(r.freezes, 0u);
    }
  }
  EXPECT_TRUE(reported);

  // Real loss, by contrast, is reported: 10 sequence numbers skipped.
  seq = static_cast<std::uint16_t>(seq + 10);
  blocks.clear();
  run(60, 20);
  bool lost = false;
  for (const auto& b : blocks) {
    lost = lost || (b.fraction_lost > 0 && b.cumulative_lost == 10);
  }
  EXPECT_TRUE(lost);
}

TEST(RembEstimate, GrowsWithoutLossAndCutsOnLoss) {
  RembEstimate e;
  EXPECT_EQ(e.update(1'000'000, 0), 1'600'000u);   // 1.5 x incoming + 100 kbit/s
  EXPECT_EQ(e.update(1'500'000, 0), 1'728'000u);   // +8%, under the 2.35 Mbit/s ceiling
  EXPECT_EQ(e.update(1'000'000, 0), 1'728'000u);   // above 1.6 Mbit/s: held, not grown
  EXPECT_EQ(e.update(1'000'000, 10), 1'728'000u);  // 4% loss: held
  EXPECT_EQ(e.update(1'000'000, 64), 1'512'000u);  // 25% loss: x (1 - 0.125)
  for (int i = 0; i < 100; ++i) {
    e.update(0, 255);
  }
  EXPECT_EQ(e.estimate_bps(), RembEstimate::kMinBps);
}

class RembTest : public EngineTest {
 protected:
  void publish_video(bool remb, std::uint8_t transport_cc) {
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    shm::TrackAdd t;
    t.session = a_.session;
    t.ssrc = kVideo;
    t.kind = shm::MediaKind::kVideo;
    t.payload_type = 96;
    t.codec = shm::Codec::kVp8;
    t.remb = remb;
    t.transport_cc_extension = transport_cc;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(t)));
  }
  // `seconds` of 1,000-byte packets every 10 ms (800 kbit/s of payload); every `lose`-th
  // sequence number is skipped (0: none). The REMB packets A received, as raw bytes.
  std::vector<std::vector<std::uint8_t>> stream(int seconds, int lose = 0) {
    std::vector<std::vector<std::uint8_t>> remb;
    for (int i = 0; i < seconds * 100; ++i) {
      advance(10);
      if (i % 5 == 0) {
        timer();
      }
      if (lose == 0 || seq_ % lose != 0) {
        Rtp r;
        r.ssrc = kVideo;
        r.sequence = seq_;
        r.timestamp = 900u * seq_;
        r.payload = 1000;
        send_rtp(a_, r);
      }
      ++seq_;
      for (const auto& p : rtcp_at(a_)) {
        if (p.type == rtcp::kPsfb && (p.count & 0x1F) == rtcp::kFmtAfb) {
          remb.push_back(p.bytes);
        }
      }
    }
    return remb;
  }
  std::uint16_t seq_ = 1;
};

TEST_F(RembTest, SentToAPublisherWithoutTransportCc) {
  ASSERT_NO_FATAL_FAILURE(publish_video(true, 0));
  auto remb = stream(5);
  ASSERT_GE(remb.size(), 3u);
  std::uint64_t last = 0;
  for (const auto& bytes : remb) {
    // draft-alvestrand-rmcat-remb §2.2: PSFB FMT 15, media SSRC 0, "REMB", one SSRC (A's
    // video), BR Exp (6 bits) and BR Mantissa (18 bits).
    ASSERT_EQ(bytes.size(), 24u);
    EXPECT_EQ(bytes[0], 0x80 | rtcp::kFmtAfb);
    EXPECT_EQ(bytes[1], rtcp::kPsfb);
    EXPECT_EQ(load_be16(bytes.data() + 2), 24 / 4 - 1);
    EXPECT_EQ(load_be32(bytes.data() + 8), 0u);
    EXPECT_EQ(std::string(bytes.begin() + 12, bytes.begin() + 16), "REMB");
    EXPECT_EQ(bytes[16], 1);
    EXPECT_EQ(load_be32(bytes.data() + 20), kVideo);
    unsigned exp = bytes[17] >> 2;
    std::uint64_t mantissa = (std::uint64_t{bytes[17] & 3u} << 16) | load_be16(bytes.data() + 18);
    std::uint64_t bps = mantissa << exp;
    auto parsed = rtcp::parse_remb(*rtcp::parse_feedback(
        rtcp::Packet{static_cast<std::uint8_t>(bytes[0] & 0x1F), bytes[1], bytes}));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->bitrate_bps, bps);
    EXPECT_EQ(parsed->ssrcs, std::vector<std::uint32_t>{kVideo});
    // Within 0.01% of a value above what arrives: no loss, so it only grows.
    EXPECT_GE(bps, last);
    last = bps;
  }
  // ~830 kbit/s arrive (with headers): the estimate leaves headroom above that.
  EXPECT_GT(last, 800'000u);
  EXPECT_EQ(counters().remb_sent, remb.size());

  // 20% loss: the estimate is cut.
  auto lossy = stream(3, 5);
  ASSERT_FALSE(lossy.empty());
  auto parsed = rtcp::parse_remb(*rtcp::parse_feedback(rtcp::Packet{
      static_cast<std::uint8_t>(lossy.back()[0] & 0x1F), lossy.back()[1], lossy.back()}));
  ASSERT_TRUE(parsed);
  EXPECT_LT(parsed->bitrate_bps, last);
}

TEST_F(RembTest, NeverToATransportCcPublisher) {
  ASSERT_NO_FATAL_FAILURE(publish_video(true, 5));
  EXPECT_TRUE(stream(3).empty());
  EXPECT_EQ(counters().remb_sent, 0u);
  EXPECT_GT(counters().rr_sent, 0u);  // it hears receiver reports all the same
}

TEST_F(RembTest, NotWithoutGoogRemb) {
  ASSERT_NO_FATAL_FAILURE(publish_video(false, 0));
  EXPECT_TRUE(stream(3).empty());
  EXPECT_EQ(counters().remb_sent, 0u);
}

}  // namespace
}  // namespace ringlane::sfu::testing
