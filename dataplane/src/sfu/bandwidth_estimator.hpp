#pragma once
// Send-side bandwidth estimation towards one subscriber, after Google Congestion Control
// (draft-ietf-rmcat-gcc-02) as libwebrtc's goog_cc runs it on transport-wide feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01). Internal to the SFU engine.
//
// Sans-I/O: the engine reports each packet it sent the subscriber (with the transport-wide
// sequence it wrote) and each feedback it got back, with its monotonic clock; the estimator
// answers with a rate and, while a probe runs, with how much padding to send now.
//
// Two controllers, the lower wins (gcc-02 §6): a delay-based one (packet groups -> trendline of
// the queuing delay -> overuse detector -> AIMD) and a loss-based one. Probes (padding up to a
// target rate for a few hundred ms) let the estimate jump up instead of creeping at 8 %/s.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "ringlane/dataplane/rtp/rtcp.hpp"

namespace ringlane::sfu {

struct BandwidthEstimatorConfig {
  std::uint64_t start_bps = 1'000'000;
  std::uint64_t min_bps = 50'000;
  std::uint64_t max_bps = 20'000'000;
  std::int64_t probe_duration_us = 300'000;  // how long one probe cluster sends
};

// The delay-based signal (gcc-02 §5.4).
enum class BandwidthUsage : std::uint8_t { kNormal, kOverusing, kUnderusing };

// For metrics and logs.
struct BandwidthEstimatorStats {
  std::uint64_t estimate_bps = 0;
  std::uint64_t delay_based_bps = 0;
  std::uint64_t loss_based_bps = 0;
  std::uint64_t acked_bps = 0;  // received rate over the last 500 ms; 0 until measured
  BandwidthUsage usage = BandwidthUsage::kNormal;
  double loss_fraction = 0;  // of the last loss window (at least 20 packets)
  // Smoothed over about ten windows: 2.5% random loss over 20 packets reads 10% in one window
  // of eleven, so a decision that must tell random loss from a full queue reads this.
  double loss_smoothed = 0;
  std::int64_t rtt_us = 0;            // send -> feedback of the newest reported packet, smoothed
  std::uint64_t last_probe_bps = 0;   // the last concluded probe's measured rate, 0 if none
  bool last_probe_saturated = false;  // it found the link's capacity: do not probe again soon
  std::uint64_t probes = 0;           // concluded with a result
  std::uint64_t probes_saturated = 0;
  std::uint64_t probes_failed = 0;  // too few packets reported to measure anything
  std::uint64_t padding_bytes = 0;
  std::uint64_t feedbacks = 0;
  std::uint64_t unknown_reports = 0;    // a sequence never sent, or gone from the history
  std::uint64_t duplicate_reports = 0;  // a packet reported again (repeated feedback)
};

namespace bwe {

// gcc-02 §5.2: packets sent within 5 ms of the group's first form a group (a frame, a padding
// burst); what the filter sees is the change in one-way delay from one group to the next.
class InterArrival {
 public:
  struct Delta {
    double send_ms = 0;     // between the groups' last send times
    double arrival_ms = 0;  // between the groups' last arrivals (the receiver's clock)
  };
  // One received packet, in feedback order; `now_us` is when its feedback arrived. True, with
  // `out`, when the packet closes a group that follows another.
  bool on_packet(std::int64_t send_us, std::int64_t arrival_us, std::int64_t now_us, Delta& out) {
    bool closed = false;
    if (current_.empty) {
      current_.start(send_us, arrival_us);
    } else if (send_us < current_.first_send_us) {
      return false;  // reordered behind a group already closed
    } else if (!belongs_to_burst(send_us, arrival_us) &&
               send_us - current_.first_send_us > kGroupUs) {
      std::int64_t arrival_delta = current_.last_arrival_us - previous_.last_arrival_us;
      std::int64_t feedback_delta = current_.feedback_us - previous_.feedback_us;
      if (!previous_.empty && arrival_delta - feedback_delta >= kClockJumpUs) {
        current_ = Group{};  // the receiver's clock jumped: the groups before are no reference
      } else if (!previous_.empty && arrival_delta < 0) {
        // The group's arrivals were reordered: skip this packet; persisting, start over.
        if (++reordered_ >= kReorderedReset) {
          previous_ = current_ = Group{};
          reordered_ = 0;
        }
        return false;
      } else if (!previous_.empty) {
        reordered_ = 0;
        out.send_ms = static_cast<double>(current_.last_send_us - previous_.last_send_us) / 1000;
        out.arrival_ms = static_cast<double>(arrival_delta) / 1000;
        closed = true;
      }
      previous_ = current_;
      current_.start(send_us, arrival_us);
    } else {
      current_.last_send_us = std::max(current_.last_send_us, send_us);
    }
    current_.last_arrival_us = arrival_us;
    current_.feedback_us = now_us;
    return closed;
  }

 private:
  static constexpr std::int64_t kGroupUs = 5'000;
  // Packets arriving back to back, faster than they were sent, queued behind the same
  // bottleneck burst: they join the group (libwebrtc's burst grouping), for up to 100 ms.
  static constexpr std::int64_t kBurstUs = 5'000;
  static constexpr std::int64_t kMaxBurstUs = 100'000;
  // Arrival gaps this much longer than the gaps between the feedbacks that reported them are
  // a receiver clock jump, not a queue.
  static constexpr std::int64_t kClockJumpUs = 3'000'000;
  static constexpr int kReorderedReset = 3;
  struct Group {
    std::int64_t first_send_us = 0;
    std::int64_t last_send_us = 0;
    std::int64_t first_arrival_us = 0;
    std::int64_t last_arrival_us = 0;
    std::int64_t feedback_us = 0;  // our clock
    bool empty = true;
    void start(std::int64_t send_us, std::int64_t arrival_us) {
      first_send_us = last_send_us = send_us;
      first_arrival_us = arrival_us;
      empty = false;
    }
  };
  bool belongs_to_burst(std::int64_t send_us, std::int64_t arrival_us) const {
    std::int64_t arrival_delta = arrival_us - current_.last_arrival_us;
    std::int64_t send_delta = send_us - current_.last_send_us;
    return send_delta == 0 || (arrival_delta - send_delta < 0 && arrival_delta <= kBurstUs &&
                               arrival_us - current_.first_arrival_us < kMaxBurstUs);
  }
  Group current_;
  Group previous_;
  int reordered_ = 0;
};

// The slope of the accumulated, smoothed delay over the last 20 groups (libwebrtc's trendline
// filter, in place of gcc-02 §5.3's Kalman filter), compared against an adaptive threshold
// (gcc-02 §5.4).
class TrendlineDetector {
 public:
  BandwidthUsage update(const InterArrival::Delta& d, std::int64_t arrival_us);
  BandwidthUsage state() const { return state_; }
  double threshold_ms() const { return threshold_ms_; }

 private:
  static constexpr std::size_t kWindow = 20;
  void detect(double trend, double send_delta_ms, std::int64_t arrival_us);
  void adapt_threshold(double modified_trend, std::int64_t arrival_us);
  std::array<double, kWindow> x_ms_{};  // arrival time since the first group
  std::array<double, kWindow> y_ms_{};  // smoothed accumulated delay
  std::size_t points_ = 0;
  std::size_t next_ = 0;
  std::uint32_t deltas_ = 0;
  std::int64_t first_arrival_us_ = -1;
  double accumulated_ms_ = 0;
  double smoothed_ms_ = 0;
  double trend_ = 0;
  double previous_trend_ = 0;
  double threshold_ms_ = 12.5;  // gcc-02 §5.4: initial del_var_th
  std::int64_t threshold_updated_us_ = -1;
  double overusing_ms_ = -1;  // how long the trend has been above the threshold, -1 when not
  int overuse_count_ = 0;
  BandwidthUsage state_ = BandwidthUsage::kNormal;
};

// The rate the receiver acknowledged: bytes received over the last 500 ms of its clock, in
// 10 ms buckets (no allocation, reordering inside the window tolerated).
class AckedBitrate {
 public:
  void on_received(std::int64_t arrival_us, std::size_t bytes) {
    if (!started_ || arrival_us < latest_us_ - 10 * kWindowBuckets * kBucketUs) {
      // First packet, or the receiver's clock went back far: start over.
      buckets_ = {};
      started_ = true;
      first_us_ = latest_us_ = arrival_us;
    }
    std::int64_t index = bucket(arrival_us);
    if (index <= bucket(latest_us_) - kWindowBuckets) {
      return;  // older than the window
    }
    Bucket& b = buckets_[static_cast<std::size_t>(index) % kBuckets];
    if (b.index > index) {
      return;  // its slot already holds a newer bucket
    }
    if (b.index < index) {
      b = Bucket{index, 0};
    }
    b.bytes += bytes;
    latest_us_ = std::max(latest_us_, arrival_us);
  }
  // 0 until 100 ms of arrivals were seen.
  double bps() const {
    if (!started_ || latest_us_ - first_us_ < 100'000) {
      return 0;
    }
    std::int64_t oldest = bucket(latest_us_) - kWindowBuckets + 1;
    std::uint64_t bytes = 0;
    for (const Bucket& b : buckets_) {
      bytes += b.index >= oldest ? b.bytes : 0;
    }
    std::int64_t span_us = latest_us_ - std::max(first_us_, oldest * kBucketUs);
    return span_us <= 0 ? 0 : static_cast<double>(bytes) * 8e6 / static_cast<double>(span_us);
  }

 private:
  static constexpr std::int64_t kBucketUs = 10'000;
  static constexpr std::int64_t kWindowBuckets = 50;
  static constexpr std::size_t kBuckets = 64;
  struct Bucket {
    std::int64_t index = std::numeric_limits<std::int64_t>::min();  // none
    std::uint64_t bytes = 0;
  };
  static std::int64_t bucket(std::int64_t us) {  // floor division: the clock may be negative
    return us >= 0 ? us / kBucketUs : -((-us + kBucketUs - 1) / kBucketUs);
  }
  std::array<Bucket, kBuckets> buckets_{};
  std::int64_t first_us_ = 0;
  std::int64_t latest_us_ = 0;
  bool started_ = false;
};

// gcc-02 §6 rate controller: multiplicative increase far from the last congestion point,
// additive near it, decrease to beta x acknowledged rate on overuse, hold on underuse.
class AimdRateControl {
 public:
  AimdRateControl(double start_bps, double min_bps, double max_bps);
  // `acked_bps` 0 when not measured yet.
  void update(BandwidthUsage usage, double acked_bps, std::int64_t rtt_us, std::int64_t now_us);
  // An overuse reduces at most once per RTT (the previous cut needs that long to show), unless
  // the acknowledged rate already collapsed below half of the estimate.
  bool time_to_reduce(std::int64_t now_us, double acked_bps, std::int64_t rtt_us) const;
  void set(double bps, std::int64_t now_us);  // a probe's result
  double bps() const { return bps_; }

 private:
  enum class State : std::uint8_t { kHold, kIncrease, kDecrease };
  double additive_increase(double seconds, std::int64_t rtt_us) const;
  void update_capacity(double sample_bps);
  double capacity_margin_bps() const;
  double bps_;
  double min_bps_;
  double max_bps_;
  State state_ = State::kHold;
  std::int64_t last_change_us_ = -1;
  std::int64_t last_decrease_us_ = -1;
  // The acknowledged rate at the last decreases, averaged, with its normalized variance (kbps):
  // near it the link is known to saturate, so the increase turns additive. 0: not known.
  double capacity_kbps_ = 0;
  double capacity_variance_ = 0.4;
};

}  // namespace bwe

class BandwidthEstimator {
 public:
  explicit BandwidthEstimator(BandwidthEstimatorConfig config = {});

  // A packet sent to the subscriber with transport-wide sequence `seq`, `bytes` on the wire
  // (after SRTP), at `now_us` (monotonic microseconds). `probe` marks padding sent to probe.
  // Constant time, no allocation.
  void on_sent(std::uint16_t seq, std::size_t bytes, std::int64_t now_us, bool probe);
  // A transport-cc feedback from the subscriber, arriving at now_us (same clock as on_sent).
  void on_feedback(const rtcp::TransportCc& feedback, std::int64_t now_us);
  std::uint64_t estimate_bps() const { return estimate_bps_; }

  // Asks whether `target_bps` fits: for the configured duration, padding_due() tops what is
  // sent up to target_bps. False (nothing started) while another probe runs.
  bool start_probe(std::uint64_t target_bps, std::int64_t now_us);
  // Bytes of padding to send now (each packet through on_sent(..., probe=true)); 0 when no
  // probe is sending. At most ~10 ms worth per call, so a late call does not burst.
  std::size_t padding_due(std::int64_t now_us);
  // From start_probe until the probe's result is in (or it timed out).
  bool probing() const { return probe_.active; }

  BandwidthEstimatorStats stats() const;

 private:
  static constexpr std::size_t kHistory = 4096;  // a power of two dividing 65536
  enum class Report : std::uint8_t { kNone, kSent, kLost, kReceived };
  struct SentPacket {
    std::int64_t send_us = 0;
    std::uint16_t seq = 0;
    std::uint16_t bytes = 0;
    std::uint8_t cluster = 0;  // probe cluster id, 0 for none
    Report report = Report::kNone;
  };
  // The packets sent while a probe runs (media and padding) and what feedback said of them.
  struct ProbeCluster {
    bool active = false;
    std::uint8_t id = 0;
    double target_bps = 0;
    std::int64_t start_us = 0;
    std::int64_t end_us = 0;  // sending stops here
    std::uint32_t sent = 0;
    std::uint64_t sent_bytes = 0;
    std::int64_t first_send_us = 0;
    std::int64_t last_send_us = 0;
    std::uint32_t last_sent_bytes = 0;
    std::uint32_t reported = 0;
    std::uint32_t received = 0;
    std::uint64_t received_bytes = 0;
    std::int64_t first_arrival_us = 0;
    std::int64_t last_arrival_us = 0;
    std::uint32_t first_arrival_bytes = 0;
    bool overuse = false;
  };
  std::int64_t unwrap_reference(std::int32_t reference_time);
  void on_probe_packet(const SentPacket& p, bool received, std::int64_t arrival_us);
  void conclude_probe();
  void expire_probe(std::int64_t now_us);
  void update_loss_based(std::int64_t now_us);
  std::int64_t rtt_or_default() const;

  BandwidthEstimatorConfig config_;
  std::array<SentPacket, kHistory> history_{};
  bwe::InterArrival inter_arrival_;
  bwe::TrendlineDetector detector_;
  bwe::AckedBitrate acked_;
  bwe::AimdRateControl delay_based_;
  double loss_based_bps_;
  std::uint32_t loss_expected_ = 0;
  std::uint32_t loss_lost_ = 0;
  double loss_fraction_ = 0;
  double loss_smoothed_ = -1;  // -1 until the first window
  std::int64_t loss_updated_us_ = -1;
  std::int64_t loss_decreased_us_ = -1;
  std::int64_t rtt_us_ = -1;
  bool have_reference_ = false;
  std::int32_t last_reference_ = 0;
  std::int64_t reference_ = 0;  // unwrapped, in 64 ms units
  ProbeCluster probe_;
  std::uint64_t estimate_bps_;
  BandwidthEstimatorStats counters_;
};

}  // namespace ringlane::sfu
