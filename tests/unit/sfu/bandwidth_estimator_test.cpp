// The bandwidth estimator against a simulated path: a sender pacing media at the estimate (plus
// probe padding), a bottleneck link with a FIFO queue, propagation delay and seeded random
// loss, and a receiver that answers with transport-wide feedback every 100 ms as Chromium
// does. Simulated clock only: every run is the same run. RINGLANE_BWE_TRACE=1 prints the
// estimate once a second.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "../../../dataplane/src/sfu/bandwidth_estimator.hpp"

namespace ringlane::sfu {
namespace {

constexpr std::int64_t kMs = 1'000;
constexpr std::int64_t kSecond = 1'000'000;
constexpr std::size_t kPacket = 1200;

// xorshift64*: the same sequence on every platform (std:: distributions are not specified).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed == 0 ? 1 : seed) {}
  double uniform() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return static_cast<double>((s_ * 2685821657736338717ull) >> 11) / 9007199254740992.0;
  }

 private:
  std::uint64_t s_;
};

struct Link {
  double capacity_bps = 10e6;
  std::size_t queue_bytes = 16'384;
  std::int64_t propagation_us = 20 * kMs;  // each way
  double loss = 0;                         // random, before the queue
};

struct SimOptions {
  BandwidthEstimatorConfig config;
  Link link;
  double media_bps = 1.5e6;  // what the publishers offer this subscriber
  std::uint64_t seed = 1;
  std::uint16_t first_seq = 0;
  std::int64_t receiver_clock_us = 0;  // the receiver's clock, ahead of ours by this much
  std::int64_t feedback_interval_us = 100 * kMs;
  bool duplicate_feedback = false;
  bool probes = false;  // as the engine would: 2 x estimate every 2 s while media exceeds it
};

class Simulation {
 public:
  explicit Simulation(SimOptions o)
      : o_(o), bwe_(o.config), rng_(o.seed), next_seq_(o.first_seq), next_report_(o.first_seq) {}

  BandwidthEstimator& bwe() { return bwe_; }
  SimOptions& options() { return o_; }
  std::int64_t now() const { return now_; }
  std::int64_t next_seq() const { return next_seq_; }
  bool reference_wrapped() const { return reference_wrapped_; }
  double drop_fraction() const {
    return static_cast<double>(dropped_) / static_cast<double>(sent_);
  }
  std::uint64_t delivered_reports() const { return delivered_reports_; }
  // What the bottleneck's queue did since the last reset_path_stats(): time spent in it.
  double mean_queue_delay_ms() const {
    return queue_delay_sum_us_ / 1000 /
           static_cast<double>(std::max<std::uint64_t>(1, queue_delay_count_));
  }
  double max_queue_delay_ms() const { return queue_delay_max_us_ / 1000; }
  void reset_path_stats() {
    sent_ = dropped_ = queue_delay_count_ = 0;
    queue_delay_sum_us_ = queue_delay_max_us_ = 0;
  }
  // The highest loss fraction the estimator reported, sampled every 100 ms.
  double max_loss_fraction() const { return max_loss_fraction_; }
  // The estimate at every 100 ms of the run.
  const std::vector<std::uint64_t>& trace() const { return trace_; }
  std::uint64_t at(std::int64_t t_us) const {
    return trace_.at(static_cast<std::size_t>(t_us / (100 * kMs)));
  }

  void run_for(std::int64_t us) {
    std::int64_t end = now_ + us;
    while (now_ < end) {
      step();
    }
  }

  void print(const char* name) const {
    if (std::getenv("RINGLANE_BWE_TRACE") == nullptr) {
      return;
    }
    std::string line;
    for (std::size_t i = 0; i < trace_.size(); i += 10) {
      line += std::to_string(trace_[i] / 1000) + " ";
    }
    BandwidthEstimatorStats st = bwe_.stats();
    std::printf(
        "%s (kbps, 1/s): %s\n  end: delay %llu loss-based %llu acked %llu loss %.3f rtt %lld ms"
        " probes %llu (saturated %llu, failed %llu) drops %.3f queue mean %.0f max %.0f ms\n",
        name, line.c_str(), static_cast<unsigned long long>(st.delay_based_bps / 1000),
        static_cast<unsigned long long>(st.loss_based_bps / 1000),
        static_cast<unsigned long long>(st.acked_bps / 1000), st.loss_fraction,
        static_cast<long long>(st.rtt_us / 1000), static_cast<unsigned long long>(st.probes),
        static_cast<unsigned long long>(st.probes_saturated),
        static_cast<unsigned long long>(st.probes_failed), drop_fraction(), mean_queue_delay_ms(),
        max_queue_delay_ms());
  }

 private:
  struct InFlight {
    std::int64_t seq;
    std::int64_t arrival_us;
  };
  struct Queued {
    std::int64_t seq;
    std::size_t bytes;
    std::int64_t enqueued_us;
  };
  struct ToSender {
    std::int64_t at_us;
    rtcp::TransportCc feedback;
  };

  void step() {
    while (!to_sender_.empty() && to_sender_.front().at_us <= now_) {
      bwe_.on_feedback(to_sender_.front().feedback, now_);
      delivered_reports_ += to_sender_.front().feedback.packets.size();
      if (o_.duplicate_feedback) {
        bwe_.on_feedback(to_sender_.front().feedback, now_);
      }
      to_sender_.pop_front();
    }
    while (!in_flight_.empty() && in_flight_.front().arrival_us <= now_) {
      received_[in_flight_.front().seq] = in_flight_.front().arrival_us;
      highest_ = std::max(highest_, in_flight_.front().seq);
      in_flight_.pop_front();
    }
    if (now_ >= next_feedback_) {
      send_feedback();
      next_feedback_ += o_.feedback_interval_us;
    }
    double estimate = static_cast<double>(bwe_.estimate_bps());
    if (o_.probes && now_ >= next_probe_) {
      next_probe_ += 2 * kSecond;
      if (!bwe_.probing() && o_.media_bps > estimate) {
        bwe_.start_probe(2 * bwe_.estimate_bps(), now_);
      }
    }
    media_budget_ += std::min(estimate, o_.media_bps) / 8 * 0.001;
    while (media_budget_ >= kPacket) {
      send(kPacket, false);
      media_budget_ -= kPacket;
    }
    if (now_ % (5 * kMs) == 0) {
      for (std::size_t due = bwe_.padding_due(now_); due > 0;) {
        std::size_t n = std::min(due, kPacket);
        send(n, true);
        due -= n;
      }
    }
    serve_link();
    if (now_ % (100 * kMs) == 0) {
      trace_.push_back(bwe_.estimate_bps());
      max_loss_fraction_ = std::max(max_loss_fraction_, bwe_.stats().loss_fraction);
    }
    now_ += kMs;
  }

  void send(std::size_t bytes, bool probe) {
    std::int64_t seq = next_seq_++;
    bwe_.on_sent(static_cast<std::uint16_t>(seq), bytes, now_, probe);
    ++sent_;
    if (rng_.uniform() < o_.link.loss) {
      ++dropped_;
      return;
    }
    if (queued_bytes_ + bytes > o_.link.queue_bytes) {
      ++dropped_;  // tail drop
      return;
    }
    queued_bytes_ += bytes;
    queue_.push_back({seq, bytes, now_});
  }

  // The bottleneck serves its queue in order at the capacity of the moment (a change applies
  // to the packets not yet being sent), until the next step.
  void serve_link() {
    double horizon = static_cast<double>(now_ + kMs);
    while (!queue_.empty()) {
      const Queued& q = queue_.front();
      double start = std::max(link_free_us_, static_cast<double>(q.enqueued_us));
      double done = start + static_cast<double>(q.bytes) * 8e6 / o_.link.capacity_bps;
      if (done > horizon) {
        break;
      }
      link_free_us_ = done;
      in_flight_.push_back({q.seq, static_cast<std::int64_t>(done) + o_.link.propagation_us});
      queued_bytes_ -= q.bytes;
      double delay = done - static_cast<double>(q.enqueued_us);
      queue_delay_sum_us_ += delay;
      queue_delay_max_us_ = std::max(queue_delay_max_us_, delay);
      ++queue_delay_count_;
      queue_.pop_front();
    }
  }

  // Every packet from the first not yet reported to the highest received: the ones missing
  // are lost (the path is FIFO, nothing arrives late).
  void send_feedback() {
    if (highest_ < next_report_) {
      return;
    }
    rtcp::TransportCc fb;
    fb.base_sequence = static_cast<std::uint16_t>(next_report_);
    fb.feedback_count = feedback_count_++;
    bool first = true;
    std::int64_t previous_tick = 0;
    for (std::int64_t s = next_report_; s <= highest_; ++s) {
      auto it = received_.find(s);
      if (it == received_.end()) {
        fb.packets.push_back({static_cast<std::uint16_t>(s), false, 0});
        continue;
      }
      // On the wire: 250 us ticks, the reference in 64 ms (256 ticks), 24 bits signed.
      std::int64_t tick = (it->second + o_.receiver_clock_us) / 250;
      if (first) {
        first = false;
        std::int64_t reference = tick / 256;
        auto field = static_cast<std::uint32_t>(reference) & 0xFFFFFFu;
        fb.reference_time = (field & 0x800000u) != 0 ? static_cast<std::int32_t>(field) - 0x1000000
                                                     : static_cast<std::int32_t>(field);
        reference_wrapped_ = reference_wrapped_ || (last_reference_ > 0 && fb.reference_time < 0);
        last_reference_ = fb.reference_time;
        previous_tick = reference * 256;
      }
      fb.packets.push_back({static_cast<std::uint16_t>(s), true, (tick - previous_tick) * 250});
      previous_tick = tick;
      received_.erase(it);
    }
    next_report_ = highest_ + 1;
    to_sender_.push_back({now_ + o_.link.propagation_us, std::move(fb)});
  }

  SimOptions o_;
  BandwidthEstimator bwe_;
  Rng rng_;
  std::int64_t now_ = 0;
  std::int64_t next_seq_;
  double media_budget_ = 0;
  double link_free_us_ = 0;
  std::deque<Queued> queue_;
  std::size_t queued_bytes_ = 0;
  std::deque<InFlight> in_flight_;
  std::uint64_t sent_ = 0;
  std::uint64_t dropped_ = 0;
  double queue_delay_sum_us_ = 0;
  double queue_delay_max_us_ = 0;
  std::uint64_t queue_delay_count_ = 0;
  std::uint64_t delivered_reports_ = 0;
  double max_loss_fraction_ = 0;
  std::map<std::int64_t, std::int64_t> received_;
  std::int64_t highest_ = -1;
  std::int64_t next_report_;
  std::int64_t next_feedback_ = 100 * kMs;
  std::int64_t next_probe_ = 0;
  std::uint8_t feedback_count_ = 0;
  std::int32_t last_reference_ = 0;
  bool reference_wrapped_ = false;
  std::deque<ToSender> to_sender_;
  std::vector<std::uint64_t> trace_;
};

SimOptions shaped(double capacity_bps) {
  SimOptions o;
  o.link.capacity_bps = capacity_bps;
  return o;
}

// The first time at or after `from` where the estimate satisfies `pred`, -1 if never.
template <typename Pred>
std::int64_t first_time(const Simulation& sim, std::int64_t from, Pred pred) {
  for (std::size_t i = static_cast<std::size_t>(from / (100 * kMs)); i < sim.trace().size(); ++i) {
    if (pred(sim.trace()[i])) {
      return static_cast<std::int64_t>(i) * 100 * kMs;
    }
  }
  return -1;
}

// How often the estimate fell by over 1 % from one 100 ms sample to the next.
int decreases(const Simulation& sim) {
  int n = 0;
  for (std::size_t i = 1; i < sim.trace().size(); ++i) {
    n += static_cast<double>(sim.trace()[i]) < 0.99 * static_cast<double>(sim.trace()[i - 1]);
  }
  return n;
}

std::pair<std::uint64_t, std::uint64_t> range(const Simulation& sim, std::int64_t from) {
  auto begin = sim.trace().begin() + from / (100 * kMs);
  auto [lo, hi] = std::minmax_element(begin, sim.trace().end());
  return {*lo, *hi};
}

// 1.5 Mbit/s of media into a 300 kbit/s bottleneck: the estimate must find it and stay there,
// and it must be the delay that tells: the queue stays short and (almost) nothing is dropped,
// where a loss-only controller would keep the 440 ms buffer full.
TEST(BandwidthEstimatorSim, FindsShapedBottleneck) {
  Simulation sim(shaped(300e3));
  sim.run_for(5 * kSecond);
  sim.reset_path_stats();
  sim.run_for(25 * kSecond);
  sim.print("shaped 300k");
  EXPECT_LT(sim.drop_fraction(), 0.01);
  EXPECT_LT(sim.mean_queue_delay_ms(), 150);
  std::int64_t below = first_time(sim, 0, [](std::uint64_t e) { return e < 400'000; });
  ASSERT_GE(below, 0);
  EXPECT_LE(below, 5 * kSecond);
  auto [lo, hi] = range(sim, 5 * kSecond);
  EXPECT_GE(lo, 150'000u);
  EXPECT_LE(hi, 450'000u);
}

// The bottleneck is lifted; probes, as the engine starts them, lift the estimate within
// seconds, where the 8 %/s increase alone would take far longer.
TEST(BandwidthEstimatorSim, ProbesFindLiftedBottleneck) {
  auto run = [](bool probes) {
    Simulation sim(shaped(300e3));
    sim.run_for(30 * kSecond);
    sim.options().link.capacity_bps = 10e6;
    sim.options().probes = probes;
    sim.run_for(15 * kSecond);
    return sim;
  };
  Simulation probed = run(true);
  probed.print("lifted, probes");
  EXPECT_LT(probed.at(30 * kSecond), 450'000u);  // where it started from
  std::int64_t above =
      first_time(probed, 30 * kSecond, [](std::uint64_t e) { return e > 1'200'000; });
  ASSERT_GE(above, 0);
  EXPECT_LE(above, 45 * kSecond);
  EXPECT_GT(probed.bwe().stats().probes, 0u);
  EXPECT_GT(probed.bwe().stats().last_probe_bps, 1'000'000u);

  Simulation unprobed = run(false);
  unprobed.print("lifted, no probes");
  EXPECT_LT(unprobed.at(40 * kSecond), probed.at(40 * kSecond));
}

// Probing a link that is still shaped: the probe saturates it, and the estimate stays near
// the capacity rather than taking the probe's target.
TEST(BandwidthEstimatorSim, ProbeIntoBottleneckStaysAtCapacity) {
  SimOptions o = shaped(300e3);
  o.probes = true;
  Simulation sim(o);
  sim.run_for(30 * kSecond);
  sim.print("shaped 300k, probes");
  EXPECT_GT(sim.bwe().stats().probes_saturated, 0u);
  auto [lo, hi] = range(sim, 5 * kSecond);
  EXPECT_GE(lo, 150'000u);
  EXPECT_LE(hi, 450'000u);
}

// 2 % random loss on an uncongested link is below the 10 % that cuts: no collapse.
// It climbs, held back at times (windows over 2 % hold), cut rarely (a 20-packet window can
// see over 10 % by chance).
TEST(BandwidthEstimatorSim, ModerateLossDoesNotCollapse) {
  SimOptions o = shaped(5e6);
  Simulation lossless(o);
  lossless.run_for(30 * kSecond);
  lossless.print("no loss");
  EXPECT_EQ(decreases(lossless), 0);
  o.link.loss = 0.02;
  Simulation sim(o);
  sim.run_for(30 * kSecond);
  sim.print("2% loss");
  auto [lo, hi] = range(sim, 0);
  EXPECT_GE(lo, 950'000u);
  EXPECT_GE(sim.at(29 * kSecond), 1'200'000u);
  EXPECT_LE(decreases(sim), 2);
  EXPECT_NEAR(sim.drop_fraction(), 0.02, 0.005);
  EXPECT_GT(sim.max_loss_fraction(), 0.02);  // it did see windows over 2 %
}

// Little media on a wide link: from below, the estimate grows to 1.5 x what is acknowledged
// and no further (beyond that it has never been tested).
TEST(BandwidthEstimatorSim, AppLimitedDoesNotRunAway) {
  SimOptions o = shaped(10e6);
  o.config.start_bps = 300'000;
  o.media_bps = 400e3;
  Simulation sim(o);
  sim.run_for(30 * kSecond);
  sim.print("app-limited 400k");
  auto [lo, hi] = range(sim, 0);
  EXPECT_LE(hi, 1.5 * 400e3 * 1.05 + 10e3);  // 5 %: a packet more or less in the 500 ms window
  EXPECT_GE(sim.at(29 * kSecond), 550'000u);
}

// 20 % random loss: the loss-based side cuts it, though the delay never grows.
TEST(BandwidthEstimatorSim, HeavyLossCuts) {
  SimOptions o = shaped(5e6);
  o.link.loss = 0.20;
  Simulation sim(o);
  sim.run_for(20 * kSecond);
  sim.print("20% loss");
  EXPECT_LT(sim.at(5 * kSecond), 700'000u);
  EXPECT_LT(sim.at(19 * kSecond), 300'000u);
  EXPECT_GE(sim.at(19 * kSecond), o.config.min_bps);
  EXPECT_GT(sim.bwe().stats().loss_fraction, 0.10);
}

// The transport-wide sequence wrapping (from 65500) and the feedback's 24-bit reference time
// wrapping change nothing: the run is the same, estimate for estimate.
TEST(BandwidthEstimatorFeedback, WrapAroundIsInvisible) {
  SimOptions plain = shaped(1e6);
  SimOptions wrapping = plain;
  wrapping.first_seq = 65500;
  // The reference time turns negative 6 s in, while the estimate works against the 1 Mbit/s
  // bottleneck. The offset is on a 320 ms boundary (64 ms reference units, 10 ms
  // acknowledged-rate buckets) so that only the wrap differs.
  constexpr std::int64_t kWrapUs = (std::int64_t{1} << 23) * 64 * kMs;
  wrapping.receiver_clock_us = (kWrapUs - 6 * kSecond) / (320 * kMs) * (320 * kMs);
  Simulation a(plain);
  Simulation b(wrapping);
  a.run_for(15 * kSecond);
  b.run_for(15 * kSecond);
  a.print("1M, no wrap");
  EXPECT_TRUE(b.reference_wrapped());
  EXPECT_GT(b.next_seq(), 65536);
  EXPECT_EQ(a.trace(), b.trace());
  EXPECT_EQ(b.bwe().stats().unknown_reports, 0u);
  auto [lo, hi] = range(b, 5 * kSecond);  // and it is a run that found the bottleneck
  EXPECT_GE(lo, 500'000u);
  EXPECT_LE(hi, 1'300'000u);
}

// Every feedback delivered twice: the repeats are counted and change nothing.
TEST(BandwidthEstimatorFeedback, DuplicatesChangeNothing) {
  SimOptions once = shaped(300e3);
  SimOptions twice = once;
  twice.duplicate_feedback = true;
  Simulation a(once);
  Simulation b(twice);
  a.run_for(10 * kSecond);
  b.run_for(10 * kSecond);
  EXPECT_EQ(a.trace(), b.trace());
  EXPECT_GT(b.delivered_reports(), 250u);
  EXPECT_EQ(b.bwe().stats().duplicate_reports, b.delivered_reports());
  EXPECT_EQ(a.bwe().stats().duplicate_reports, 0u);
}

// Feedback about packets never sent, or sent so long ago the history forgot them, and empty
// feedback: counted, and the estimate does not move.
TEST(BandwidthEstimatorFeedback, UnknownStaleAndEmptyAreIgnored) {
  Simulation sim(shaped(2e6));
  sim.run_for(40 * kSecond);  // well over 4096 packets
  ASSERT_GT(sim.next_seq(), 6000);
  BandwidthEstimator& bwe = sim.bwe();
  std::uint64_t before = bwe.estimate_bps();
  std::uint64_t unknown = bwe.stats().unknown_reports;
  rtcp::TransportCc stale;
  stale.base_sequence = static_cast<std::uint16_t>(sim.next_seq() - 5000);
  for (int i = 0; i < 50; ++i) {
    stale.packets.push_back({static_cast<std::uint16_t>(stale.base_sequence + i), i % 2 == 0, 0});
  }
  bwe.on_feedback(stale, sim.now());
  rtcp::TransportCc ahead;
  ahead.base_sequence = static_cast<std::uint16_t>(sim.next_seq() + 100);
  for (int i = 0; i < 50; ++i) {
    ahead.packets.push_back({static_cast<std::uint16_t>(ahead.base_sequence + i), false, 0});
  }
  bwe.on_feedback(ahead, sim.now());
  bwe.on_feedback(rtcp::TransportCc{}, sim.now());
  EXPECT_EQ(bwe.estimate_bps(), before);
  EXPECT_EQ(bwe.stats().unknown_reports, unknown + 100);
  // And the run goes on as before.
  sim.run_for(5 * kSecond);
  EXPECT_GT(bwe.estimate_bps(), before / 2);
}

// Garbage arrival times (wild jumps either way, as a broken receiver might send): no crash,
// and the estimate stays within bounds and near where it was.
TEST(BandwidthEstimatorFeedback, WildDeltasStayBounded) {
  BandwidthEstimator bwe;
  std::int64_t now = 0;
  std::uint16_t seq = 0;
  for (int round = 0; round < 20; ++round) {
    rtcp::TransportCc fb;
    fb.base_sequence = seq;
    fb.reference_time = round % 2 == 0 ? 0x7FFFFF : -0x800000 + round;
    for (int i = 0; i < 30; ++i, now += 10 * kMs) {
      bwe.on_sent(seq, kPacket, now, false);
      fb.packets.push_back({seq++, i % 15 != 0, (i % 2 == 0 ? 8'191'750 : -8'191'750)});
    }
    bwe.on_feedback(fb, now);
    EXPECT_GE(bwe.estimate_bps(), 500'000u);
    EXPECT_LE(bwe.estimate_bps(), 1'500'000u);
  }
}

// Padding: none without a probe; while one runs, the target rate less what media already
// sent; none after the cluster's duration; the probe times out without feedback.
TEST(BandwidthEstimatorProbe, PaddingFollowsTarget) {
  BandwidthEstimatorConfig config;
  BandwidthEstimator bwe(config);
  std::uint16_t seq = 0;
  for (std::int64_t t = 0; t < 100 * kMs; t += 5 * kMs) {
    EXPECT_EQ(bwe.padding_due(t), 0u);
  }
  EXPECT_FALSE(bwe.probing());
  const std::int64_t start = 100 * kMs;
  ASSERT_TRUE(bwe.start_probe(2'000'000, start));
  EXPECT_TRUE(bwe.probing());
  EXPECT_FALSE(bwe.start_probe(4'000'000, start + kMs));  // one at a time
  std::uint64_t padding = 0;
  std::uint64_t media = 0;
  std::uint64_t padding_at_100ms = 0;
  for (std::int64_t t = start; t < start + 600 * kMs; t += 5 * kMs) {
    if (t >= start + 150 * kMs && t < start + 300 * kMs && (t / (5 * kMs)) % 2 == 0) {
      bwe.on_sent(seq++, kPacket, t, false);  // 150..300 ms: media at 960 kbit/s
      media += kPacket;
    }
    for (std::size_t due = bwe.padding_due(t); due > 0;) {
      std::size_t n = std::min(due, kPacket);
      bwe.on_sent(seq++, n, t, true);
      padding += n;
      due -= n;
    }
    if (t == start + 100 * kMs) {
      padding_at_100ms = padding;
    }
  }
  // 2 Mbit/s for 100 ms: 25000 bytes, within a call's granularity.
  EXPECT_NEAR(static_cast<double>(padding_at_100ms), 25'000, 1'500);
  // 300 ms in all, media included.
  EXPECT_NEAR(static_cast<double>(padding + media), 75'000, 2'500);
  EXPECT_EQ(media, 15 * kPacket);
  EXPECT_EQ(bwe.padding_due(start + 301 * kMs), 0u);
  EXPECT_TRUE(bwe.probing());  // waiting for feedback
  EXPECT_EQ(bwe.padding_due(start + 1400 * kMs), 0u);
  EXPECT_FALSE(bwe.probing());
  EXPECT_EQ(bwe.stats().probes_failed, 1u);
  EXPECT_EQ(bwe.estimate_bps(), config.start_bps);
}

}  // namespace
}  // namespace ringlane::sfu
