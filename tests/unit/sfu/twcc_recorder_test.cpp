// Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01):
// the RTCP builder against the parser and a hand-made vector, then the SFU's recorder fed
// arrivals with loss, reordering, duplicates, wrap, jumps and gaps, read back feedback by feedback.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "ringlane/dataplane/rtp/twcc_recorder.hpp"
#include "unit/test_util.hpp"

namespace ringlane::sfu {
namespace {

using ringlane::testing::from_hex;
using rtcp::TransportCc;
using rtcp::TwccPacket;

constexpr std::uint32_t kSender = 0x5F5F0001;
constexpr std::uint32_t kMedia = 0xABCD1234;

// The feedback in `bytes` as a receiver reads it: a compound of one RTPFB FMT=15 packet.
std::optional<TransportCc> read_back(Bytes bytes) {
  auto c = rtcp::Compound::parse(bytes);
  EXPECT_TRUE(c);
  if (!c) {
    return std::nullopt;
  }
  EXPECT_EQ(c->packets().size(), 1u);
  const rtcp::Packet& p = c->packets()[0];
  EXPECT_EQ(p.type, rtcp::kRtpfb);
  EXPECT_EQ(p.bytes.size(), bytes.size());  // no P bit: nothing stripped
  auto f = rtcp::parse_feedback(p);
  EXPECT_TRUE(f);
  if (!f) {
    return std::nullopt;
  }
  EXPECT_EQ(f->fmt, rtcp::kFmtTwcc);
  EXPECT_EQ(f->sender_ssrc, kSender);
  EXPECT_EQ(f->media_ssrc, kMedia);
  auto t = rtcp::parse_transport_cc(*f);
  EXPECT_TRUE(t);
  return t;
}

TwccPacket got(std::int64_t delta_ticks) {
  return {0, true, delta_ticks * 250};
}
TwccPacket lost() {
  return {0, false, 0};
}

// Builds `in`, parses it back and checks every status: sequence, received flag and delta in
// 250 us units, exactly. Returns the bytes written.
std::size_t round_trip(std::uint16_t base, std::int32_t reference, std::uint8_t count,
                       const std::vector<TwccPacket>& in) {
  std::vector<std::uint8_t> out(4096);
  std::size_t covered = 0;
  std::size_t n =
      rtcp::build_transport_cc(out, kSender, kMedia, base, reference, count, in, &covered);
  EXPECT_GT(n, 0u);
  EXPECT_EQ(n % 4, 0u);
  EXPECT_EQ(covered, in.size());
  auto t = read_back(Bytes(out.data(), n));
  if (!t) {
    return n;
  }
  EXPECT_EQ(t->base_sequence, base);
  EXPECT_EQ(t->reference_time, reference);
  EXPECT_EQ(t->feedback_count, count);
  EXPECT_EQ(t->packets.size(), in.size());
  for (std::size_t i = 0; i < std::min(in.size(), t->packets.size()); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t->packets[i].sequence, static_cast<std::uint16_t>(base + i));
    EXPECT_EQ(t->packets[i].received, in[i].received);
    EXPECT_EQ(t->packets[i].delta_us, in[i].received ? in[i].delta_us : 0);
  }
  return n;
}

TEST(TwccBuilder, RoundTripSmallDeltas) {
  std::vector<TwccPacket> in;
  for (int i = 0; i < 40; ++i) {
    in.push_back(got(i % 7 == 0 ? 0 : 4 + i));  // 0..11 ms, every one a 1-byte delta
  }
  // All 40 statuses "received, small delta": one run-length chunk, 40 one-byte deltas, then
  // two bytes of zero padding.
  EXPECT_EQ(round_trip(1000, 5, 3, in), 20u + 2 + 40 + 2);
}

TEST(TwccBuilder, RoundTripMixedLossAndEdgeDeltas) {
  // Small deltas at both ends of their range, large ones just past it, negative ones (a packet
  // that arrived before its predecessor), and the extremes of 16 signed bits.
  std::vector<TwccPacket> in = {
      got(0), lost(), got(255),  got(256), lost(), lost(), got(-1), got(1), got(32767), got(-32768),
      got(3), lost(), got(-200), got(10),  lost(), got(0), got(0),  lost(), got(1),     got(2)};
  round_trip(7, 100, 0, in);
  // Non-multiples of 250 us round down, as the parser's 250 us units can only say.
  std::vector<std::uint8_t> out(64);
  std::vector<TwccPacket> odd = {{0, true, 999}, {0, true, -1}};
  std::size_t n = rtcp::build_transport_cc(out, kSender, kMedia, 0, 0, 0, odd);
  auto t = read_back(Bytes(out.data(), n));
  ASSERT_TRUE(t);
  ASSERT_EQ(t->packets.size(), 2u);
  EXPECT_EQ(t->packets[0].delta_us, 750);
  EXPECT_EQ(t->packets[1].delta_us, -250);
}

TEST(TwccBuilder, LongLostRunTakesOneChunk) {
  std::vector<TwccPacket> in = {got(3)};
  in.insert(in.end(), 300, lost());
  in.push_back(got(200));
  // One-bit vector [got, 13 lost], a run of 287 lost, a run of 1 got: 3 chunks and 2 deltas.
  EXPECT_EQ(round_trip(40000, 1, 9, in), 20u + 3 * 2 + 2);
  // Past one run-length chunk's 8191: still a handful of chunks.
  std::vector<TwccPacket> longer = {got(1)};
  longer.insert(longer.end(), 10000, lost());
  longer.push_back(got(1));
  EXPECT_LE(round_trip(0, 1, 9, longer), 20u + 4 * 2 + 2 + 2);
}

TEST(TwccBuilder, SequenceWrap) {
  std::vector<TwccPacket> in;
  for (int i = 0; i < 12; ++i) {
    in.push_back(i == 6 ? lost() : got(i));
  }
  round_trip(65530, 0x7FFFFF, 255, in);  // 65530..65535, 0..5; the largest reference time
  round_trip(65535, -1, 1, in);          // a 24-bit reference time reads back signed
}

TEST(TwccBuilder, DeltaBeyond16BitsEndsTheFeedbackBeforeIt) {
  std::vector<std::uint8_t> out(256);
  std::vector<TwccPacket> in = {got(1), lost(), got(2), got(32768), got(1)};
  std::size_t covered = 99;
  std::size_t n = rtcp::build_transport_cc(out, kSender, kMedia, 10, 0, 0, in, &covered);
  EXPECT_EQ(covered, 3u);
  auto t = read_back(Bytes(out.data(), n));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->packets.size(), 3u);
  // Negative past 16 bits too, and when it is the very first packet nothing can be sent.
  in = {got(-32769)};
  EXPECT_EQ(rtcp::build_transport_cc(out, kSender, kMedia, 10, 0, 0, in, &covered), 0u);
  EXPECT_EQ(covered, 0u);
  EXPECT_EQ(rtcp::build_transport_cc(out, kSender, kMedia, 10, 0, 0, {}, &covered), 0u);
}

// Draft §3.1 field by field. Base 0x00FE, 19 statuses, reference time 0x000123 (x64 ms),
// feedback #9. Statuses: 16 received small (0, fourteen of 1, then 255 ticks: the largest small
// delta), then large (-1 tick), lost, small (2 ticks).
//   run length chunk (§3.1.3): T=0 S=01 length=16          -> 0 01 0000000010000 = 0x2010
//   status vector chunk (§3.1.4): T=1 S=1, symbols 10 00 01, rest 00
//                                                          -> 1 1 10 00 01 00 00 00 00 = 0xE100
//   deltas: 00, 14 x 01, ff, ff ff (-1, two bytes), 02; 8 + 4 + 19 = 31 bytes of FCI, one zero
//   pad (§3.1 "zero padding", no P bit).
//   header: V=2 P=0 FMT=15, PT=205, length (12 + 32) / 4 - 1 = 10 -> 8f cd 00 0a
TEST(TwccBuilder, BytesFromTheDraftChunkLayout) {
  const auto expected = from_hex(
      "8fcd000a 5f5f0001 abcd1234"
      "00fe0013 00012309"
      "2010e100"
      "00010101 01010101 01010101 010101ff"
      "ffff0200");
  std::vector<TwccPacket> in(16, got(1));
  in.front() = got(0);
  in.back() = got(255);
  in.push_back(got(-1));
  in.push_back(lost());
  in.push_back(got(2));
  std::array<std::uint8_t, 64> out{};
  std::size_t n = rtcp::build_transport_cc(out, kSender, kMedia, 0x00FE, 0x123, 9, in);
  EXPECT_EQ(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)),
            expected);

  // One-bit vector (§3.1.4, S=0): 14 statuses with no large delta, then a run of 20 lost.
  //   symbols 1 0 1 1 0 0 0 0 0 0 0 0 0 1 -> 1 0 10110000000001 = 0xAC01
  //   run: T=0 S=00 length=20 -> 0x0014; deltas 04 08 0c 10; FCI 8 + 4 + 4 = 16, no padding.
  in = {got(4), lost(), got(8), got(12)};
  in.insert(in.end(), 9, lost());
  in.push_back(got(16));
  in.insert(in.end(), 20, lost());
  n = rtcp::build_transport_cc(out, kSender, kMedia, 0xFFFF, 0, 0xFF, in);
  EXPECT_EQ(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)),
            from_hex("8fcd0006 5f5f0001 abcd1234 ffff0022 000000ff ac010014 04080c10"));
}

TEST(TwccBuilder, NeverWritesPastTheBufferAndCoversWhatFits) {
  std::vector<TwccPacket> in;
  for (int i = 0; i < 200; ++i) {
    in.push_back(i % 11 == 3 ? lost() : got(i % 3 == 0 ? -5 * i : i));
  }
  std::vector<std::uint8_t> full(2048);
  std::size_t all = 0;
  std::size_t full_n = rtcp::build_transport_cc(full, kSender, kMedia, 500, 2, 3, in, &all);
  ASSERT_EQ(all, in.size());
  std::size_t last_covered = 0;
  for (std::size_t size = 0; size <= full_n + 8; ++size) {
    SCOPED_TRACE(size);
    std::vector<std::uint8_t> buf(size + 16, 0xEE);
    std::size_t covered = 0;
    std::size_t n = rtcp::build_transport_cc(MutableBytes(buf.data(), size), kSender, kMedia, 500,
                                             2, 3, in, &covered);
    EXPECT_LE(n, size);
    EXPECT_TRUE(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(size), buf.end(),
                            [](std::uint8_t b) { return b == 0xEE; }));
    if (size < 24) {
      EXPECT_EQ(n, 0u);
    }
    if (n == 0) {
      EXPECT_EQ(covered, 0u);
      continue;
    }
    EXPECT_GE(covered, last_covered);  // a bigger buffer never covers less
    last_covered = covered;
    auto t = read_back(Bytes(buf.data(), n));
    ASSERT_TRUE(t);
    ASSERT_EQ(t->packets.size(), covered);
    for (std::size_t i = 0; i < covered; ++i) {
      EXPECT_EQ(t->packets[i].received, in[i].received);
      EXPECT_EQ(t->packets[i].delta_us, in[i].received ? in[i].delta_us : 0);
    }
  }
  EXPECT_EQ(last_covered, in.size());
}

// --- The recorder ---

// Every feedback read back, with the absolute arrival time of each received sequence.
struct Reader {
  std::vector<TransportCc> feedbacks;
  std::map<std::uint16_t, int> reported;           // sequence -> times it appeared
  std::map<std::uint16_t, std::int64_t> arrivals;  // received sequence -> arrival, 250 us units

  // Drains `r` the way the engine should: build until nothing is pending.
  void drain(TwccRecorder& r, std::size_t buffer = TwccRecorder::kMaxFeedbackSize) {
    for (int guard = 0; guard < 10000; ++guard) {
      std::vector<std::uint8_t> buf(buffer + 16, 0xEE);
      std::size_t n = r.build_feedback(MutableBytes(buf.data(), buffer), kSender, kMedia);
      EXPECT_LE(n, buffer);
      EXPECT_TRUE(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(buffer), buf.end(),
                              [](std::uint8_t b) { return b == 0xEE; }));
      if (n == 0) {
        EXPECT_FALSE(r.pending());
        return;
      }
      auto t = read_back(Bytes(buf.data(), n));
      ASSERT_TRUE(t);
      add(*t);
    }
    ADD_FAILURE() << "feedback never drained";
  }

  void add(const TransportCc& t) {
    if (!feedbacks.empty()) {
      const TransportCc& prev = feedbacks.back();
      EXPECT_EQ(t.feedback_count, static_cast<std::uint8_t>(prev.feedback_count + 1));
    }
    // The receiver's view: reference time, then the running sum of deltas.
    std::int64_t time = std::int64_t{t.reference_time} * 64000;
    for (const TwccPacket& p : t.packets) {
      ++reported[p.sequence];
      if (p.received) {
        time += p.delta_us;
        arrivals[p.sequence] = time;
      }
    }
    feedbacks.push_back(t);
  }
};

// Arrival `us` as a feedback can carry it: rounded down to 250 us.
std::int64_t quantized(std::int64_t us) {
  return us / 250 * 250;
}

TEST(TwccRecorder, ReportsEveryReceivedPacketOnceWithItsArrival) {
  TwccRecorder r;
  Reader reader;
  std::map<std::uint16_t, std::int64_t> sent;
  const std::int64_t t0 = 5'000'123;
  std::int64_t next_feedback = t0 + 100'000;
  std::size_t dropped = 0;
  for (int i = 0; i < 1000; ++i) {
    // 1 ms apart with some jitter off the 250 us grid; every 20th packet from the 7th lost (5%).
    std::int64_t at = t0 + i * 1000 + (i * 37) % 400;
    auto seq = static_cast<std::uint16_t>(20000 + i);
    if (i % 20 == 7) {
      ++dropped;
      continue;
    }
    if (at >= next_feedback) {
      reader.drain(r);
      next_feedback += 100'000;
    }
    r.on_packet(seq, at);
    sent[seq] = at;
  }
  reader.drain(r);

  EXPECT_EQ(dropped, 50u);
  // Every sequence from the first to the last exactly once, received or not.
  ASSERT_EQ(reader.reported.size(), 1000u);
  EXPECT_EQ(reader.reported.begin()->first, 20000);
  for (const auto& [seq, times] : reader.reported) {
    EXPECT_EQ(times, 1) << seq;
  }
  // Exactly the received set, each at its arrival to 250 us.
  ASSERT_EQ(reader.arrivals.size(), sent.size());
  for (const auto& [seq, at] : sent) {
    ASSERT_TRUE(reader.arrivals.count(seq)) << seq;
    EXPECT_EQ(reader.arrivals[seq], quantized(at)) << seq;
  }
  // About one feedback per 100 ms, each starting right after the previous one.
  EXPECT_EQ(reader.feedbacks.size(), 10u);
  for (std::size_t i = 1; i < reader.feedbacks.size(); ++i) {
    const auto& prev = reader.feedbacks[i - 1];
    EXPECT_EQ(reader.feedbacks[i].base_sequence,
              static_cast<std::uint16_t>(prev.base_sequence + prev.packets.size()));
    EXPECT_TRUE(reader.feedbacks[i].packets.front().received);  // starts at a newly received one
  }
  EXPECT_EQ(r.counters().recorded, 950u);
  EXPECT_EQ(r.counters().feedbacks, reader.feedbacks.size());
  EXPECT_EQ(r.counters().reordered + r.counters().duplicates + r.counters().late, 0u);
}

TEST(TwccRecorder, ReorderingAndDuplicates) {
  TwccRecorder r;
  Reader reader;
  r.on_packet(10, 1'000'000);
  r.on_packet(12, 1'001'000);
  r.on_packet(9, 1'001'500);   // before the first one, nothing reported yet: widens the window
  r.on_packet(11, 1'002'000);  // late, inside the window: fills its slot
  r.on_packet(12, 1'003'000);  // duplicate: the first arrival stands
  r.on_packet(14, 1'004'000);
  reader.drain(r);
  ASSERT_EQ(reader.feedbacks.size(), 1u);
  EXPECT_EQ(reader.feedbacks[0].base_sequence, 9);
  ASSERT_EQ(reader.feedbacks[0].packets.size(), 6u);  // 9..14, 13 lost
  EXPECT_FALSE(reader.feedbacks[0].packets[4].received);
  EXPECT_EQ(reader.arrivals[9], 1'001'500);
  EXPECT_EQ(reader.arrivals[10], 1'000'000);  // a negative delta from 9
  EXPECT_EQ(reader.arrivals[11], 1'002'000);
  EXPECT_EQ(reader.arrivals[12], 1'001'000);  // negative again
  EXPECT_EQ(reader.arrivals[14], 1'004'000);
  // Once reported, 13 cannot come back as received, nor can 11 be reported twice.
  r.on_packet(13, 1'005'000);
  r.on_packet(11, 1'005'100);
  EXPECT_FALSE(r.pending());
  r.on_packet(15, 1'006'000);
  reader.drain(r);
  ASSERT_EQ(reader.feedbacks.size(), 2u);
  EXPECT_EQ(reader.feedbacks[1].base_sequence, 15);
  EXPECT_EQ(reader.feedbacks[1].packets.size(), 1u);
  EXPECT_EQ(r.counters().recorded, 6u);
  EXPECT_EQ(r.counters().reordered, 2u);
  EXPECT_EQ(r.counters().duplicates, 1u);
  EXPECT_EQ(r.counters().late, 2u);
}

TEST(TwccRecorder, SequenceWrap) {
  TwccRecorder r;
  Reader reader;
  std::int64_t at = 70'000'000;
  for (std::uint16_t seq = 65530; seq != 65534; ++seq) {
    r.on_packet(seq, at += 2000);
  }
  reader.drain(r);
  for (std::uint16_t seq = 65534; seq != 6; ++seq) {
    if (seq != 2) {
      r.on_packet(seq, at += 2000);
    }
  }
  r.on_packet(65533, at += 100);  // reported before the wrap: late, not a new lap
  reader.drain(r);
  ASSERT_EQ(reader.feedbacks.size(), 2u);
  EXPECT_EQ(reader.feedbacks[0].base_sequence, 65530);
  EXPECT_EQ(reader.feedbacks[0].packets.size(), 4u);
  EXPECT_EQ(reader.feedbacks[1].base_sequence, 65534);
  ASSERT_EQ(reader.feedbacks[1].packets.size(), 8u);  // 65534, 65535, 0..5
  EXPECT_EQ(reader.feedbacks[1].packets[7].sequence, 5);
  EXPECT_FALSE(reader.feedbacks[1].packets[4].received);  // 2
  EXPECT_EQ(reader.reported.size(), 12u);
  EXPECT_EQ(reader.arrivals[5], at - 100);
  EXPECT_EQ(r.counters().late, 1u);
  EXPECT_EQ(r.counters().restarts, 0u);
}

TEST(TwccRecorder, HugeJumpStartsOver) {
  TwccRecorder r;
  Reader reader;
  for (int i = 0; i < 100; ++i) {
    r.on_packet(static_cast<std::uint16_t>(i), 1'000'000 + i * 1000);
  }
  reader.drain(r);
  for (int i = 100; i < 150; ++i) {  // never reported: the jump drops them
    r.on_packet(static_cast<std::uint16_t>(i), 1'000'000 + i * 1000);
  }
  for (int i = 0; i < 10; ++i) {
    r.on_packet(static_cast<std::uint16_t>(30150 + i), 2'000'000 + i * 1000);
  }
  r.on_packet(149, 2'100'000);  // a straggler from before the jump: late
  EXPECT_EQ(r.counters().restarts, 1u);
  reader.drain(r);
  ASSERT_EQ(reader.feedbacks.size(), 2u);
  EXPECT_EQ(reader.feedbacks[1].base_sequence, 30150);
  EXPECT_EQ(reader.feedbacks[1].packets.size(), 10u);
  EXPECT_EQ(reader.feedbacks[1].feedback_count, 1);  // the count goes on
  EXPECT_EQ(reader.arrivals[30159], 2'009'000);
  EXPECT_EQ(r.counters().late, 1u);
  // A gap the window can span is a lost run, not a restart.
  r.on_packet(30159 + 4000, 3'000'000);
  EXPECT_EQ(r.counters().restarts, 1u);
  reader.drain(r);
  EXPECT_EQ(reader.reported.size(), 100u + 10 + 4000);
}

TEST(TwccRecorder, LongGapContinuesInTheNextFeedback) {
  TwccRecorder r;
  Reader reader;
  r.on_packet(100, 1'000'000);
  r.on_packet(100 + 3000, 1'500'000);
  for (int i = 1; i <= 600; ++i) {  // then more than one feedback of received packets
    r.on_packet(static_cast<std::uint16_t>(3100 + i), 1'500'000 + i * 500);
  }
  reader.drain(r);
  // 3601 statuses, at most kMaxStatuses each, each reported once.
  EXPECT_EQ(reader.feedbacks.size(), 8u);  // 7 full ones and one of 17
  for (const auto& f : reader.feedbacks) {
    EXPECT_LE(f.packets.size(), TwccRecorder::kMaxStatuses);
  }
  EXPECT_EQ(reader.reported.size(), 3601u);
  EXPECT_EQ(reader.arrivals.size(), 602u);
  EXPECT_EQ(reader.arrivals[100], 1'000'000);
  EXPECT_EQ(reader.arrivals[3100], 1'500'000);
  EXPECT_EQ(reader.arrivals[3700], 1'800'000);
}

TEST(TwccRecorder, ArrivalsTooFarApartForOneFeedbackAreSplit) {
  TwccRecorder r;
  Reader reader;
  r.on_packet(1, 1'000'000);
  r.on_packet(2, 1'000'000 + 10'000'000);  // 10 s later: 40000 ticks, past 16 bits
  r.on_packet(3, 1'000'000 + 10'001'000);
  reader.drain(r);
  ASSERT_EQ(reader.feedbacks.size(), 2u);
  EXPECT_EQ(reader.feedbacks[0].packets.size(), 1u);
  EXPECT_EQ(reader.feedbacks[1].base_sequence, 2);
  EXPECT_EQ(reader.arrivals[2], 11'000'000);
  EXPECT_EQ(reader.arrivals[3], 11'001'000);
}

TEST(TwccRecorder, TooSmallBufferWritesNothingAndKeepsThePending) {
  TwccRecorder r;
  std::array<std::uint8_t, 64> buf{};
  EXPECT_EQ(r.build_feedback(buf, kSender, kMedia), 0u);  // nothing recorded yet
  for (int i = 0; i < 5; ++i) {
    r.on_packet(static_cast<std::uint16_t>(700 + i), 9'000'000 + i * 70'000);  // large deltas
  }
  buf.fill(0xEE);
  EXPECT_EQ(r.build_feedback(MutableBytes(buf.data(), TwccRecorder::kMinFeedbackSize - 1), kSender,
                             kMedia),
            0u);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](std::uint8_t b) { return b == 0xEE; }));
  EXPECT_TRUE(r.pending());
  EXPECT_EQ(r.counters().feedbacks, 0u);
  // The smallest useful buffer takes one status at a time; nothing was lost meanwhile.
  Reader reader;
  reader.drain(r, TwccRecorder::kMinFeedbackSize);
  EXPECT_EQ(reader.feedbacks.front().base_sequence, 700);
  EXPECT_EQ(reader.feedbacks.front().feedback_count, 0);
  EXPECT_EQ(reader.reported.size(), 5u);
  EXPECT_EQ(reader.arrivals[704], 9'280'000);
  EXPECT_EQ(r.build_feedback(buf, kSender, kMedia), 0u);  // all reported: nothing due
}

TEST(TwccRecorder, FeedbackCountWraps) {
  TwccRecorder r;
  Reader reader;
  for (int i = 0; i < 300; ++i) {
    r.on_packet(static_cast<std::uint16_t>(i), 1'000'000 + i * 1000);
    reader.drain(r);  // checks the count advances by one each time, through 255 -> 0
  }
  EXPECT_EQ(reader.feedbacks.size(), 300u);
  EXPECT_EQ(reader.feedbacks.back().feedback_count, 299 % 256);
}

// Bounds: deterministic noise (loss, reordering, duplicates, bursts, pauses) and every buffer
// size from the smallest to a full one; no feedback outgrows its buffer, every status once.
TEST(TwccRecorder, FeedbackNeverExceedsItsBuffer) {
  std::uint32_t state = 12345;
  auto rnd = [&state](std::uint32_t n) {
    state = state * 1664525u + 1013904223u;
    return (state >> 8) % n;
  };
  for (std::size_t buffer : {std::size_t{24}, std::size_t{25}, std::size_t{31}, std::size_t{64},
                             std::size_t{100}, std::size_t{333}, std::size_t{1200}}) {
    SCOPED_TRACE(buffer);
    TwccRecorder r;
    Reader reader;
    std::int64_t at = 123'456'789;
    std::uint16_t seq = 65000;
    std::vector<std::uint16_t> held;  // packets delayed behind later ones
    for (int i = 0; i < 3000; ++i) {
      at += rnd(100) == 0 ? 200'000 : rnd(3000);
      std::uint32_t what = rnd(100);
      if (what < 5) {
        ++seq;  // lost
      } else if (what < 10) {
        held.push_back(seq++);
      } else {
        r.on_packet(seq, at);
        if (what < 12) {
          r.on_packet(seq, at + 10);  // duplicate
        }
        ++seq;
      }
      if (held.size() > 2 || (!held.empty() && rnd(4) == 0)) {
        r.on_packet(held.front(), at);
        held.erase(held.begin());
      }
      if (rnd(60) == 0) {
        reader.drain(r, buffer);
      }
    }
    reader.drain(r, buffer);
    for (const auto& [s, times] : reader.reported) {
      EXPECT_EQ(times, 1) << s;
    }
    EXPECT_EQ(reader.arrivals.size(), r.counters().recorded);
    EXPECT_EQ(r.counters().restarts, 0u);
    // The noise did reach every path.
    EXPECT_GT(r.counters().reordered, 0u);
    EXPECT_GT(r.counters().duplicates, 0u);
    EXPECT_GT(r.counters().late, 0u);
    EXPECT_GT(reader.feedbacks.size(), 50u);
  }
}

}  // namespace
}  // namespace ringlane::sfu
