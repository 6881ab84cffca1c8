// RTCP through the SFU: keyframe requests from subscribers to the publisher (throttled),
// NACKs passed upstream, sender reports passed downstream under the subscriber's SSRC, and the
// SFU's own receiver reports to publishers.
#include <gtest/gtest.h>

#include "unit/sfu/harness.hpp"

namespace ringlane::sfu::testing {
namespace {

std::vector<std::uint8_t> pli(std::uint32_t media) {
  std::vector<std::uint8_t> p(12);
  EXPECT_EQ(rtcp::build_pli(p, 0xB0B0, media), 12u);
  return p;
}

class FeedbackTest : public EngineTest {
 protected:
  // The keyframe requests A received: each a PLI for `kVideo`; returns how many, and remembers
  // the sender SSRC the SFU uses towards A.
  std::size_t plis_at_a() {
    std::size_t n = 0;
    for (const auto& r : rtcp_at(a_)) {
      auto fb = rtcp::parse_feedback(view(r));
      EXPECT_TRUE(fb);
      if (!fb) {
        continue;
      }
      EXPECT_EQ(r.type, rtcp::kPsfb);
      EXPECT_EQ(fb->fmt, rtcp::kFmtPli);
      EXPECT_EQ(fb->media_ssrc, kVideo);
      EXPECT_TRUE(fb->fci.empty());
      sfu_ssrc_ = fb->sender_ssrc;
      ++n;
    }
    return n;
  }
  std::uint32_t sfu_ssrc_ = 0;
};

TEST_F(FeedbackTest, SubscribingWhileConnectedRequestsAKeyframe) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
  ASSERT_TRUE(add_track(a_, kAudio, shm::MediaKind::kAudio, 111));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  EXPECT_EQ(plis_at_a(), 0u);
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_EQ(counters().pli_sent, 1u);
  // Audio has no keyframes.
  ASSERT_TRUE(subscribe(b_, a_, kAudio, 0x4444, 111));
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_sent, 1u);
  EXPECT_EQ(counters().pli_throttled, 0u);
}

TEST_F(FeedbackTest, SubscriberConnectingLaterRequestsAKeyframe) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
  ASSERT_TRUE(create(b_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
  EXPECT_EQ(plis_at_a(), 0u);  // B could not decode it yet
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(b_, response));
  ASSERT_NO_FATAL_FAILURE(handshake(b_));
  EXPECT_EQ(plis_at_a(), 1u);
}

TEST_F(FeedbackTest, KeyframeOwedToAPublisherIsSentWhenItConnects) {
  ASSERT_TRUE(create(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
  EXPECT_EQ(counters().pli_sent, 0u);
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(a_, response));
  ASSERT_NO_FATAL_FAILURE(handshake(a_));
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_EQ(counters().pli_sent, 1u);
}

TEST_F(FeedbackTest, PliFromTheSubscriberReachesThePublisherThrottled) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);  // the subscription's own
  advance(250);
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_EQ(counters().pli_received, 1u);
  EXPECT_EQ(counters().rtcp_in, 1u);
  advance(199);
  send_rtcp(b_, pli(kSubVideo));
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_throttled, 2u);
  timer();
  EXPECT_EQ(plis_at_a(), 0u);  // held back while inside the interval
  advance(1);                  // 200 ms since the last one sent: one for both
  timer();
  EXPECT_EQ(plis_at_a(), 1u);
  timer();
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_received, 3u);
  EXPECT_EQ(counters().pli_sent, 3u);
  advance(200);
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_EQ(counters().pli_sent, 4u);

  // FIR names the stream in its FCI, and counts as a keyframe request too (RFC 5104 §4.3.1).
  advance(200);
  std::vector<std::uint8_t> fir(20);
  rtcp::FirEntry entry{kSubVideo, 1};
  ASSERT_EQ(rtcp::build_fir(fir, 0xB0B0, std::span(&entry, 1)), 20u);
  send_rtcp(b_, fir);
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_EQ(counters().pli_received, 5u);

  // A PLI for a stream B does not receive goes nowhere.
  advance(200);
  send_rtcp(b_, pli(0x7777));
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_received, 5u);
}

TEST_F(FeedbackTest, KeyframeRequestCommand) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  advance(200);
  EXPECT_TRUE(command(shm::Command::kKeyframeRequest,
                      shm::encode(shm::KeyframeRequest{a_.session, kVideo})));
  EXPECT_EQ(plis_at_a(), 1u);
  EXPECT_TRUE(command(shm::Command::kKeyframeRequest,
                      shm::encode(shm::KeyframeRequest{a_.session, kVideo})));
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_throttled, 1u);
  advance(200);
  timer();
  EXPECT_EQ(plis_at_a(), 1u);  // the held-back one
}

TEST_F(FeedbackTest, ReceiverReportCarriesTheExtendedHighestSequenceAndLoss) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  timer();  // nothing received yet: no report, and the next is due in a second
  EXPECT_TRUE(rtcp_at(a_).empty());
  // Across the 16-bit wrap, with 1 lost; one arrival time and one timestamp, so no jitter.
  for (std::uint16_t seq : {65534, 65535, 0, 2}) {
    send_rtp(a_, {.sequence = seq});
  }
  rtp_at(b_);
  // The gap was NACKed upstream at once (the loss still counts in the report).
  auto nacks = rtcp_at(a_);
  ASSERT_EQ(nacks.size(), 1u);
  auto fb = rtcp::parse_feedback(view(nacks[0]));
  ASSERT_TRUE(fb);
  EXPECT_EQ(rtcp::parse_nack(*fb), std::vector<std::uint16_t>{1});
  advance(999);
  timer();
  EXPECT_TRUE(rtcp_at(a_).empty());
  advance(1);
  timer();
  auto got = rtcp_at(a_);
  ASSERT_EQ(got.size(), 1u);
  auto rr = rtcp::parse_rr(view(got[0]));
  ASSERT_TRUE(rr);
  EXPECT_EQ(rr->ssrc, sfu_ssrc_);    // the SSRC the SFU's PLIs came from
  ASSERT_EQ(rr->blocks.size(), 1u);  // the audio track received nothing
  const rtcp::ReportBlock& b = rr->blocks[0];
  EXPECT_EQ(b.ssrc, kVideo);
  EXPECT_EQ(b.highest_sequence, 65536u + 2u);
  EXPECT_EQ(b.cumulative_lost, 1);
  EXPECT_EQ(b.fraction_lost, 256 / 5);
  EXPECT_EQ(b.jitter, 0u);
  EXPECT_EQ(b.last_sr, 0u);
  EXPECT_EQ(b.delay_since_last_sr, 0u);
  EXPECT_EQ(counters().rr_sent, 1u);

  // The next interval: the lost packet arrives late, nothing else.
  send_rtp(a_, {.sequence = 1});
  advance(1000);
  timer();
  got = rtcp_at(a_);
  ASSERT_EQ(got.size(), 1u);
  rr = rtcp::parse_rr(view(got[0]));
  ASSERT_TRUE(rr);
  ASSERT_EQ(rr->blocks.size(), 1u);
  EXPECT_EQ(rr->blocks[0].highest_sequence, 65538u);
  EXPECT_EQ(rr->blocks[0].cumulative_lost, 0);
  EXPECT_EQ(rr->blocks[0].fraction_lost, 0);
  // B is connected but publishes nothing: it gets no report.
  EXPECT_TRUE(rtcp_at(b_).empty());
}

// RFC 3550 A.8 with RTP's modular clocks: transit times a few ticks apart either side of the
// int32 boundary differ by those few ticks (and computing it must not overflow).
TEST_F(FeedbackTest, JitterAcrossTheSignedBoundaryOfTransitTime) {
  ASSERT_NO_FATAL_FAILURE(call());
  timer();  // the first report time passes with nothing to report
  EXPECT_EQ(plis_at_a(), 1u);
  auto arrival = static_cast<std::uint32_t>(now_.mono_ms * 90);  // 90 kHz ticks
  const std::uint32_t transit1 = 0x7FFFFFFFu - 799;
  const std::uint32_t transit2 = 0x80000000u + 800;  // 1600 ticks later, modulo 2^32
  send_rtp(a_, {.sequence = 1, .timestamp = arrival - transit1});
  send_rtp(a_, {.sequence = 2, .timestamp = arrival - transit2});
  advance(1000);
  timer();
  auto got = rtcp_at(a_);
  ASSERT_EQ(got.size(), 1u);
  auto rr = rtcp::parse_rr(view(got[0]));
  ASSERT_TRUE(rr);
  ASSERT_EQ(rr->blocks.size(), 1u);
  EXPECT_EQ(rr->blocks[0].jitter, 1600u / 16);
}

TEST_F(FeedbackTest, SenderReportReachesTheSubscriberUnderItsSsrc) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  send_rtp(a_, {.sequence = 10});
  rtp_at(b_);
  const std::uint64_t ntp = 0x0123456789ABCDEFull;
  send_rtcp(a_, build_sr(kVideo, ntp, 0xCAFEBABE, 7, 700));
  auto got = rtcp_at(b_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, rtcp::kSr);
  EXPECT_EQ(got[0].count, 0);  // the publisher's report blocks are its own business
  auto sr = rtcp::parse_sr(view(got[0]));
  ASSERT_TRUE(sr);
  EXPECT_EQ(sr->ssrc, kSubVideo);
  EXPECT_EQ(sr->ntp, ntp);
  EXPECT_EQ(sr->rtp_timestamp, 0xCAFEBABEu);
  EXPECT_EQ(sr->packet_count, 7u);
  EXPECT_EQ(sr->octet_count, 700u);
  EXPECT_TRUE(sr->blocks.empty());
  EXPECT_EQ(counters().sr_forwarded, 1u);

  // An SR for a track nobody subscribes to, or no track, goes nowhere.
  send_rtcp(a_, build_sr(kAudio, ntp, 1, 1, 1));
  send_rtcp(a_, build_sr(0x9999, ntp, 1, 1, 1));
  EXPECT_TRUE(rtcp_at(b_).empty());
  EXPECT_EQ(counters().sr_forwarded, 1u);

  // The next receiver report to A echoes the SR's middle 32 bits and the delay since it.
  advance(500);
  timer();
  got = rtcp_at(a_);
  ASSERT_EQ(got.size(), 1u);
  auto rr = rtcp::parse_rr(view(got[0]));
  ASSERT_TRUE(rr);
  ASSERT_EQ(rr->blocks.size(), 1u);
  EXPECT_EQ(rr->blocks[0].last_sr, 0x456789ABu);
  EXPECT_EQ(rr->blocks[0].delay_since_last_sr, 500u * 65536u / 1000u);
}

TEST_F(FeedbackTest, NackFromTheSubscriberReachesThePublisherRenamed) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  std::vector<std::uint8_t> nack(64);
  const std::uint16_t lost[] = {1001, 1003, 1030};
  nack.resize(rtcp::build_nack(nack, 0xB0B0, kSubVideo, lost));
  ASSERT_EQ(nack.size(), 20u);
  send_rtcp(b_, nack);
  auto got = rtcp_at(a_);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, rtcp::kRtpfb);
  auto fb = rtcp::parse_feedback(view(got[0]));
  ASSERT_TRUE(fb);
  EXPECT_EQ(fb->fmt, rtcp::kFmtNack);
  EXPECT_EQ(fb->sender_ssrc, sfu_ssrc_);
  EXPECT_EQ(fb->media_ssrc, kVideo);
  EXPECT_EQ(rtcp::parse_nack(*fb), (std::vector<std::uint16_t>{1001, 1003, 1030}));
  EXPECT_EQ(counters().nack_received, 1u);
  EXPECT_EQ(counters().nack_forwarded, 1u);

  // About a stream B does not receive: nothing.
  std::vector<std::uint8_t> other(64);
  other.resize(rtcp::build_nack(other, 0xB0B0, 0x7777, lost));
  send_rtcp(b_, other);
  EXPECT_TRUE(rtcp_at(a_).empty());
  EXPECT_EQ(counters().nack_received, 1u);
}

// A subscriber's NACK is answered from the packets the SFU kept, as RTX when the subscriber
// negotiated it (RFC 4588 §4: own SSRC, payload type and sequence; the OSN, then the payload).
TEST_F(FeedbackTest, NackIsAnsweredFromTheStoreAsRtx) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96, 0x1112, 97));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100, kSubRtx, 101));
  EXPECT_EQ(plis_at_a(), 1u);
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint16_t seq = 1000; seq < 1004; ++seq) {
    sent.push_back(build_rtp({.sequence = seq}));
    send_rtp(a_, {.sequence = seq});
  }
  // 1001 and 1003 are lost on the way to B.
  auto wire = take(b_, rtp::PacketKind::kRtp);
  ASSERT_EQ(wire.size(), 4u);
  b_.inbox.push_back(std::move(wire[0]));
  b_.inbox.push_back(std::move(wire[2]));
  ASSERT_EQ(rtp_at(b_).size(), 2u);
  advance(20);
  std::vector<std::uint8_t> nack(64);
  const std::uint16_t lost[] = {1001, 1003};
  nack.resize(rtcp::build_nack(nack, 0xB0B0, kSubVideo, lost));
  send_rtcp(b_, nack);
  auto got = rtp_at(b_);
  ASSERT_EQ(got.size(), 2u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    auto p = rtp::RtpPacket::parse(got[i]);
    auto in = rtp::RtpPacket::parse(sent[1 + 2 * i]);
    ASSERT_TRUE(p && in);
    EXPECT_EQ(p->ssrc(), kSubRtx);
    EXPECT_EQ(p->payload_type(), 101);
    EXPECT_EQ(p->sequence(), i);  // the RTX stream's own numbering
    ASSERT_TRUE(p->extension(3));
    auto pay = p->payload();
    ASSERT_GE(pay.size(), 2u);
    EXPECT_EQ(load_be16(pay.data()), lost[i]);
    auto want = in->payload();
    EXPECT_EQ(std::vector<std::uint8_t>(pay.begin() + 2, pay.end()),
              std::vector<std::uint8_t>(want.begin(), want.end()));
  }
  EXPECT_EQ(counters().nack_received, 1u);
  EXPECT_EQ(counters().retransmitted, 2u);
  EXPECT_EQ(counters().retransmit_missed, 0u);
  EXPECT_EQ(counters().nack_forwarded, 0u);  // nothing to ask the publisher
  EXPECT_TRUE(rtcp_at(a_).empty());
}

TEST_F(FeedbackTest, NackWithoutRtxGetsThePacketAndWhatIsNotKeptGoesUpstream) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  send_rtp(a_, {.sequence = 1000});
  take(b_, rtp::PacketKind::kRtp);  // lost on the way to B
  std::vector<std::uint8_t> nack(64);
  const std::uint16_t lost[] = {1000, 1500};
  nack.resize(rtcp::build_nack(nack, 0xB0B0, kSubVideo, lost));
  send_rtcp(b_, nack);
  auto got = rtp_at(b_);
  ASSERT_EQ(got.size(), 1u);
  auto p = rtp::RtpPacket::parse(got[0]);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ssrc(), kSubVideo);
  EXPECT_EQ(p->payload_type(), 100);
  EXPECT_EQ(p->sequence(), 1000);
  EXPECT_EQ(counters().retransmitted, 1u);
  EXPECT_EQ(counters().retransmit_missed, 1u);
  // 1500 was never seen: the NACK goes to A under A's numbering.
  auto up = rtcp_at(a_);
  ASSERT_EQ(up.size(), 1u);
  auto fb = rtcp::parse_feedback(view(up[0]));
  ASSERT_TRUE(fb);
  EXPECT_EQ(fb->media_ssrc, kVideo);
  EXPECT_EQ(rtcp::parse_nack(*fb), (std::vector<std::uint16_t>{1500}));  // only what is not kept
  EXPECT_EQ(counters().nack_forwarded, 1u);

  // The same packet NACKed again before the resend can have arrived: not sent twice, and not
  // asked of the publisher either; past the guard it is resent again.
  std::vector<std::uint8_t> repeat(64);
  const std::uint16_t once[] = {1000};
  repeat.resize(rtcp::build_nack(repeat, 0xB0B0, kSubVideo, once));
  advance(30);
  send_rtcp(b_, repeat);
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_TRUE(rtcp_at(a_).empty());
  EXPECT_EQ(counters().retransmit_throttled, 1u);
  EXPECT_EQ(counters().retransmitted, 1u);
  advance(100);
  send_rtcp(b_, repeat);
  // Sent again (B got the first, so to B's SRTP this one is a replay; a lost first would not be).
  EXPECT_EQ(take(b_, rtp::PacketKind::kRtp).size(), 1u);
  EXPECT_EQ(counters().retransmitted, 2u);
  EXPECT_EQ(counters().retransmit_throttled, 1u);

  // Kept packets age out: a second later the store no longer answers. B's decoder would wait for
  // that packet in vain (until its own keyframe request, seconds later): the publisher is asked
  // for the packet and for a keyframe, the keyframe at most once a second per route.
  advance(1001 - 130);
  std::vector<std::uint8_t> late(64);
  const std::uint16_t again[] = {1000};
  late.resize(rtcp::build_nack(late, 0xB0B0, kSubVideo, again));
  send_rtcp(b_, late);
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_EQ(counters().retransmit_missed, 2u);
  auto up_late = rtcp_at(a_);
  ASSERT_EQ(up_late.size(), 2u);
  std::size_t plis = 0;
  for (const auto& r : up_late) {
    auto pli = rtcp::parse_feedback(view(r));
    plis += pli && r.type == rtcp::kPsfb && pli->fmt == rtcp::kFmtPli && pli->media_ssrc == kVideo;
  }
  EXPECT_EQ(plis, 1u);
  EXPECT_EQ(counters().repair_keyframes, 1u);
  EXPECT_EQ(counters().nack_forwarded, 2u);
  advance(300);
  send_rtcp(b_, late);
  EXPECT_EQ(rtcp_at(a_).size(), 1u);  // the NACK upstream, no second keyframe yet
  EXPECT_EQ(counters().repair_keyframes, 1u);
}

// RFC 4585 §3.5.1: a gap in what the publisher sends is NACKed at once, at most 32 packets.
TEST_F(FeedbackTest, GapFromThePublisherIsNackedUpstream) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  send_rtp(a_, {.sequence = 1000});
  send_rtp(a_, {.sequence = 1003});
  auto up = rtcp_at(a_);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].type, rtcp::kRtpfb);
  auto fb = rtcp::parse_feedback(view(up[0]));
  ASSERT_TRUE(fb);
  EXPECT_EQ(fb->fmt, rtcp::kFmtNack);
  EXPECT_EQ(fb->sender_ssrc, sfu_ssrc_);
  EXPECT_EQ(fb->media_ssrc, kVideo);
  EXPECT_EQ(rtcp::parse_nack(*fb), (std::vector<std::uint16_t>{1001, 1002}));
  EXPECT_EQ(counters().upstream_nacks, 1u);
  // 33 missing: past repair. Old packets (reordering) and audio gaps ask for nothing.
  send_rtp(a_, {.sequence = 1037});
  send_rtp(a_, {.sequence = 1001});
  send_rtp(a_, {.ssrc = kAudio, .payload_type = 111, .sequence = 1, .extensions = false});
  send_rtp(a_, {.ssrc = kAudio, .payload_type = 111, .sequence = 9, .extensions = false});
  EXPECT_TRUE(rtcp_at(a_).empty());
  EXPECT_EQ(counters().upstream_nacks, 1u);
  EXPECT_EQ(rtp_at(b_).size(), 4u);
}

TEST_F(FeedbackTest, TamperedAndReplayedSrtcpAreDropped) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_EQ(plis_at_a(), 1u);
  advance(500);
  auto wire = protect_rtcp(b_, pli(kSubVideo));
  deliver(b_.address, wire);
  EXPECT_EQ(plis_at_a(), 1u);
  advance(500);
  deliver(b_.address, wire);
  EXPECT_EQ(dropped(Drop::kSrtpReplay), 1u);
  auto tampered = protect_rtcp(b_, pli(kSubVideo));
  tampered[9] ^= 0x01;
  deliver(b_.address, tampered);
  EXPECT_EQ(dropped(Drop::kSrtpAuth), 1u);
  EXPECT_EQ(plis_at_a(), 0u);
  EXPECT_EQ(counters().pli_received, 1u);
  EXPECT_EQ(counters().rtcp_in, 1u);
}

}  // namespace
}  // namespace ringlane::sfu::testing
