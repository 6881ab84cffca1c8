// Send-side bandwidth estimation (draft-ietf-rmcat-gcc-02, libwebrtc goog_cc). See the header.
#include "bandwidth_estimator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ringlane::sfu {
namespace {

// Trendline filter: smoothing of the accumulated delay, and the gain from slope to threshold
// units; the slope is scaled by the number of deltas seen, up to 60.
constexpr double kSmoothing = 0.9;
constexpr double kThresholdGain = 4.0;
constexpr std::uint32_t kMinDeltas = 60;
// gcc-02 §5.4: K_u, K_d and the clamp of del_var_th; changes larger than 15 ms over the
// threshold are spikes and do not move it. Time steps are capped at 100 ms. The gains are
// libwebrtc's (its trendline estimator), not the draft's 0.01 and 0.00018: with the draft's K_d
// a threshold raised by the jitter of a ramp-up sinks back so slowly that a later bottleneck
// took seconds to show (a shaped browser subscriber here, 8 s to switch down).
constexpr double kUp = 0.0087;
constexpr double kDown = 0.039;
constexpr double kMinThresholdMs = 6.0;
constexpr double kMaxThresholdMs = 600.0;
constexpr double kMaxAdaptOffsetMs = 15.0;
constexpr double kMaxAdaptStepMs = 100.0;
// gcc-02 §5.4: overuse is signalled after it lasted 10 ms and more than one delta.
constexpr double kOverusingTimeMs = 10.0;

// gcc-02 §6: beta, and the multiplicative increase (8 % per second).
constexpr double kBeta = 0.85;
constexpr double kIncreasePerSecond = 1.08;
constexpr double kPacketBits = 1200.0 * 8;
// The estimate may not grow past what was acknowledged by more than this: with little sent it
// would otherwise climb to max_bps untested.
constexpr double kAckedHeadroom = 1.5;
constexpr double kAckedHeadroomBps = 10'000;

// Loss-based control (gcc-02 §6 / libwebrtc SendSideBandwidthEstimation): loss measured over
// at least 20 packets; above 10 % it cuts, below 2 % it lets the rate grow, in between holds.
constexpr std::uint32_t kLossMinPackets = 20;
constexpr double kLossHigh = 0.10;
constexpr double kLossLow = 0.02;
constexpr double kLossSmoothing = 0.1;  // per loss window: about ten windows' memory
constexpr std::int64_t kLossDecreaseIntervalUs = 300'000;  // plus one RTT

// Probes (libwebrtc ProbeBitrateEstimator): at least 5 packets measured; a receive rate over
// twice the send rate is a measuring artefact; below 90 % of the send rate, or with over 10 %
// lost, the probe filled the link and the estimate becomes 95 % of what came through.
constexpr std::uint32_t kProbeMinPackets = 5;
constexpr double kProbeMaxRatio = 2.0;
constexpr double kProbeSaturatedRatio = 0.9;
constexpr double kProbeMinReceived = 0.9;
constexpr double kProbeTargetUtilization = 0.95;
constexpr std::int64_t kProbeTimeoutUs = 1'000'000;  // after sending ends
constexpr std::int64_t kProbeBurstUs = 10'000;

constexpr std::int64_t kDefaultRttUs = 100'000;

double us_to_ms(std::int64_t us) {
  return static_cast<double>(us) / 1000.0;
}
double us_to_s(std::int64_t us) {
  return static_cast<double>(us) / 1e6;
}
}  // namespace

namespace bwe {

BandwidthUsage TrendlineDetector::update(const InterArrival::Delta& d, std::int64_t arrival_us) {
  deltas_ = std::min<std::uint32_t>(deltas_ + 1, 1000);
  accumulated_ms_ += d.arrival_ms - d.send_ms;
  smoothed_ms_ = kSmoothing * smoothed_ms_ + (1 - kSmoothing) * accumulated_ms_;
  if (first_arrival_us_ < 0) {
    first_arrival_us_ = arrival_us;
  }
  x_ms_[next_] = us_to_ms(arrival_us - first_arrival_us_);
  y_ms_[next_] = smoothed_ms_;
  next_ = (next_ + 1) % kWindow;
  points_ = std::min(points_ + 1, kWindow);
  double trend = trend_;
  if (points_ == kWindow) {
    // Least squares slope of delay over time (ms per ms).
    double x_mean = std::accumulate(x_ms_.begin(), x_ms_.end(), 0.0) / kWindow;
    double y_mean = std::accumulate(y_ms_.begin(), y_ms_.end(), 0.0) / kWindow;
    double num = 0;
    double den = 0;
    for (std::size_t i = 0; i < kWindow; ++i) {
      num += (x_ms_[i] - x_mean) * (y_ms_[i] - y_mean);
      den += (x_ms_[i] - x_mean) * (x_ms_[i] - x_mean);
    }
    if (den != 0) {
      trend = num / den;
    }
  }
  trend_ = trend;
  detect(trend, d.send_ms, arrival_us);
  return state_;
}

void TrendlineDetector::detect(double trend, double send_delta_ms, std::int64_t arrival_us) {
  if (deltas_ < 2) {
    state_ = BandwidthUsage::kNormal;
    return;
  }
  double modified = std::min(deltas_, kMinDeltas) * trend * kThresholdGain;
  if (modified > threshold_ms_) {
    overusing_ms_ = overusing_ms_ < 0 ? send_delta_ms / 2 : overusing_ms_ + send_delta_ms;
    ++overuse_count_;
    // A delay still growing: only then overuse (a shrinking slope is the queue draining).
    if (overusing_ms_ > kOverusingTimeMs && overuse_count_ > 1 && trend >= previous_trend_) {
      overusing_ms_ = 0;
      overuse_count_ = 0;
      state_ = BandwidthUsage::kOverusing;
    }
  } else {
    overusing_ms_ = -1;
    overuse_count_ = 0;
    state_ = modified < -threshold_ms_ ? BandwidthUsage::kUnderusing : BandwidthUsage::kNormal;
  }
  previous_trend_ = trend;
  adapt_threshold(modified, arrival_us);
}

void TrendlineDetector::adapt_threshold(double modified, std::int64_t arrival_us) {
  if (threshold_updated_us_ < 0) {
    threshold_updated_us_ = arrival_us;
  }
  double magnitude = std::fabs(modified);
  if (magnitude > threshold_ms_ + kMaxAdaptOffsetMs) {
    threshold_updated_us_ = arrival_us;
    return;
  }
  // gcc-02 §5.4: del_var_th += dt * K * (|m| - del_var_th).
  double k = magnitude < threshold_ms_ ? kDown : kUp;
  double dt_ms = std::clamp(us_to_ms(arrival_us - threshold_updated_us_), 0.0, kMaxAdaptStepMs);
  threshold_ms_ += k * (magnitude - threshold_ms_) * dt_ms;
  threshold_ms_ = std::clamp(threshold_ms_, kMinThresholdMs, kMaxThresholdMs);
  threshold_updated_us_ = arrival_us;
}

AimdRateControl::AimdRateControl(double start_bps, double min_bps, double max_bps)
    : bps_(start_bps), min_bps_(min_bps), max_bps_(max_bps) {}

double AimdRateControl::capacity_margin_bps() const {
  return 3 * std::sqrt(capacity_variance_ * capacity_kbps_) * 1000;  // three deviations
}

void AimdRateControl::update_capacity(double sample_bps) {
  constexpr double kAlpha = 0.05;
  double sample = sample_bps / 1000;
  capacity_kbps_ = capacity_kbps_ <= 0 ? sample : (1 - kAlpha) * capacity_kbps_ + kAlpha * sample;
  double error = capacity_kbps_ - sample;
  capacity_variance_ =
      (1 - kAlpha) * capacity_variance_ + kAlpha * error * error / std::max(capacity_kbps_, 1.0);
  capacity_variance_ = std::clamp(capacity_variance_, 0.4, 2.5);
}

double AimdRateControl::additive_increase(double seconds, std::int64_t rtt_us) const {
  // gcc-02 §6: about one packet per response time (an RTT plus 100 ms), with the packet size
  // that a 30 fps stream at this rate would use.
  double frame_bits = bps_ / 30;
  double packets = std::max(1.0, std::ceil(frame_bits / kPacketBits));
  double response_s = us_to_s(rtt_us + 100'000);
  return std::max(4'000.0, frame_bits / packets / response_s) * seconds;
}

void AimdRateControl::update(BandwidthUsage usage, double acked_bps, std::int64_t rtt_us,
                             std::int64_t now_us) {
  // gcc-02 §6 Figure 2: the state follows the signal.
  switch (usage) {
    case BandwidthUsage::kNormal:
      if (state_ == State::kHold) {
        last_change_us_ = now_us;  // holding time is not increase time
        state_ = State::kIncrease;
      }
      break;
    case BandwidthUsage::kOverusing:
      state_ = State::kDecrease;
      break;
    case BandwidthUsage::kUnderusing:
      state_ = State::kHold;  // the queues drain: let them
      break;
  }
  double next = bps_;
  if (state_ == State::kIncrease) {
    if (capacity_kbps_ > 0 && acked_bps > capacity_kbps_ * 1000 + capacity_margin_bps()) {
      capacity_kbps_ = 0;  // the link grew past where it used to saturate
    }
    double seconds = last_change_us_ < 0 ? 0 : std::min(us_to_s(now_us - last_change_us_), 1.0);
    if (capacity_kbps_ > 0) {
      next += additive_increase(seconds, rtt_us);
    } else {
      next += std::max(bps_ * (std::pow(kIncreasePerSecond, seconds) - 1), 1'000.0);
    }
    if (acked_bps > 0) {
      // Never below the current rate for it: the cap stops growth, it is not a congestion sign.
      next = std::max(bps_, std::min(next, kAckedHeadroom * acked_bps + kAckedHeadroomBps));
    }
    last_change_us_ = now_us;
  } else if (state_ == State::kDecrease) {
    double throughput = acked_bps > 0 ? acked_bps : bps_;
    double decreased = kBeta * throughput;
    if (decreased > bps_ && capacity_kbps_ > 0) {
      decreased = kBeta * capacity_kbps_ * 1000;
    }
    next = std::min(bps_, decreased);
    if (capacity_kbps_ > 0 && throughput < capacity_kbps_ * 1000 - capacity_margin_bps()) {
      capacity_kbps_ = 0;  // the link shrank: the old capacity is no reference
    }
    update_capacity(throughput);
    state_ = State::kHold;
    last_change_us_ = now_us;
    last_decrease_us_ = now_us;
  }
  bps_ = std::clamp(next, min_bps_, max_bps_);
}

bool AimdRateControl::time_to_reduce(std::int64_t now_us, double acked_bps,
                                     std::int64_t rtt_us) const {
  std::int64_t interval = std::clamp<std::int64_t>(rtt_us, 10'000, 200'000);
  if (last_decrease_us_ < 0 || now_us - last_decrease_us_ >= interval) {
    return true;
  }
  return acked_bps > 0 && acked_bps < 0.5 * bps_;
}

void AimdRateControl::set(double bps, std::int64_t now_us) {
  bps_ = std::clamp(bps, min_bps_, max_bps_);
  if (capacity_kbps_ > 0 && bps_ > capacity_kbps_ * 1000 + capacity_margin_bps()) {
    capacity_kbps_ = 0;
  }
  last_change_us_ = now_us;
}

}  // namespace bwe

BandwidthEstimator::BandwidthEstimator(BandwidthEstimatorConfig config)
    : config_(config),
      delay_based_(static_cast<double>(config.start_bps), static_cast<double>(config.min_bps),
                   static_cast<double>(config.max_bps)),
      loss_based_bps_(static_cast<double>(config.start_bps)),
      estimate_bps_(std::clamp(config.start_bps, config.min_bps, config.max_bps)) {}

void BandwidthEstimator::on_sent(std::uint16_t seq, std::size_t bytes, std::int64_t now_us,
                                 bool probe) {
  counters_.padding_bytes += probe ? bytes : 0;  // outside a cluster, measured like media
  SentPacket& p = history_[seq % kHistory];
  p.send_us = now_us;
  p.seq = seq;
  p.bytes = static_cast<std::uint16_t>(std::min<std::size_t>(bytes, UINT16_MAX));
  p.report = Report::kSent;
  p.cluster = 0;
  if (probe_.active && now_us >= probe_.start_us && now_us < probe_.end_us) {
    // Media sent meanwhile counts too: the cluster measures the total rate.
    p.cluster = probe_.id;
    if (probe_.sent == 0) {
      probe_.first_send_us = now_us;
    }
    ++probe_.sent;
    probe_.sent_bytes += p.bytes;
    probe_.last_send_us = now_us;
    probe_.last_sent_bytes = p.bytes;
  }
}

std::int64_t BandwidthEstimator::unwrap_reference(std::int32_t reference_time) {
  // The reference time is 24 bits, signed, in 64 ms (transport-wide-cc-01 §3.1): unwrap it
  // against the previous feedback's so arrival times keep counting across its wrap.
  if (!have_reference_) {
    have_reference_ = true;
    reference_ = reference_time;
  } else {
    auto diff =
        static_cast<std::uint32_t>(std::int64_t{reference_time} - last_reference_) & 0xFFFFFFu;
    reference_ += (diff & 0x800000u) != 0 ? static_cast<std::int64_t>(diff) - 0x1000000
                                          : static_cast<std::int64_t>(diff);
  }
  last_reference_ = reference_time;
  return reference_;
}

void BandwidthEstimator::on_feedback(const rtcp::TransportCc& feedback, std::int64_t now_us) {
  ++counters_.feedbacks;
  expire_probe(now_us);
  if (feedback.packets.empty()) {
    return;
  }
  // transport-wide-cc-01 §3.1: the first received packet's delta is from the reference time,
  // every later one from the previous received packet.
  std::int64_t arrival_us = unwrap_reference(feedback.reference_time) * 64'000;
  std::int64_t newest_send_us = -1;
  bool known = false;
  for (const rtcp::TwccPacket& r : feedback.packets) {
    if (r.received) {
      arrival_us += r.delta_us;  // the chain runs through every received packet, known or not
    }
    SentPacket& p = history_[r.sequence % kHistory];
    if (p.report == Report::kNone || p.seq != r.sequence) {
      ++counters_.unknown_reports;
      continue;
    }
    if (p.report == Report::kReceived || (p.report == Report::kLost && !r.received)) {
      ++counters_.duplicate_reports;
      continue;
    }
    known = true;
    if (p.cluster != 0 && p.cluster == probe_.id && probe_.active && p.send_us >= probe_.start_us) {
      on_probe_packet(p, r.received, arrival_us);
    }
    if (!r.received) {
      p.report = Report::kLost;
      ++loss_expected_;
      ++loss_lost_;
      continue;
    }
    if (p.report == Report::kLost) {
      loss_lost_ -= loss_lost_ > 0 ? 1 : 0;  // reported lost before, arrived late
    } else {
      ++loss_expected_;
    }
    p.report = Report::kReceived;
    newest_send_us = std::max(newest_send_us, p.send_us);
    acked_.on_received(arrival_us, p.bytes);
    bwe::InterArrival::Delta d;
    if (inter_arrival_.on_packet(p.send_us, arrival_us, now_us, d)) {
      detector_.update(d, arrival_us);
      if (probe_.active && p.cluster == probe_.id &&
          detector_.state() == BandwidthUsage::kOverusing) {
        probe_.overuse = true;
      }
    }
  }
  if (!known) {
    return;  // nothing new: repeated or foreign feedback leaves everything as it was
  }
  if (newest_send_us >= 0 && now_us >= newest_send_us) {
    // Includes the receiver's feedback interval: an upper bound, which is what the
    // decrease interval and the additive increase want.
    std::int64_t sample = now_us - newest_send_us;
    rtt_us_ = rtt_us_ < 0 ? sample : (7 * rtt_us_ + sample) / 8;
  }
  double acked = acked_.bps();
  BandwidthUsage usage = detector_.state();
  if (usage != BandwidthUsage::kOverusing ||
      delay_based_.time_to_reduce(now_us, acked, rtt_or_default())) {
    delay_based_.update(usage, acked, rtt_or_default(), now_us);
  }
  if (probe_.active && now_us >= probe_.end_us && probe_.reported >= probe_.sent) {
    conclude_probe();
  }
  update_loss_based(now_us);
  double estimate = std::min(delay_based_.bps(), loss_based_bps_);
  estimate_bps_ =
      std::clamp(static_cast<std::uint64_t>(estimate), config_.min_bps, config_.max_bps);
}

void BandwidthEstimator::update_loss_based(std::int64_t now_us) {
  if (loss_expected_ < kLossMinPackets) {
    return;
  }
  loss_fraction_ = static_cast<double>(loss_lost_) / loss_expected_;
  loss_smoothed_ = loss_smoothed_ < 0
                       ? loss_fraction_
                       : loss_smoothed_ + kLossSmoothing * (loss_fraction_ - loss_smoothed_);
  loss_expected_ = 0;
  loss_lost_ = 0;
  double current = std::min(static_cast<double>(estimate_bps_), loss_based_bps_);
  if (loss_fraction_ > kLossHigh) {
    // One cut per RTT and then some, so the cut shows in the loss before the next one.
    if (loss_decreased_us_ < 0 ||
        now_us - loss_decreased_us_ >= kLossDecreaseIntervalUs + rtt_or_default()) {
      loss_based_bps_ = current * (1 - 0.5 * loss_fraction_);
      loss_decreased_us_ = now_us;
    }
  } else if (loss_fraction_ < kLossLow) {
    // Grow at 8 %/s from the rate actually in use, so that after loss it comes back as the
    // delay-based side would, and without loss it stays just above it, out of the way.
    double seconds = loss_updated_us_ < 0 ? 0 : std::min(us_to_s(now_us - loss_updated_us_), 1.0);
    double base = std::min(loss_based_bps_, delay_based_.bps());
    loss_based_bps_ =
        std::max(loss_based_bps_, base * std::pow(kIncreasePerSecond, seconds) + 1'000 * seconds);
  }
  loss_based_bps_ = std::clamp(loss_based_bps_, static_cast<double>(config_.min_bps),
                               static_cast<double>(config_.max_bps));
  loss_updated_us_ = now_us;
}

bool BandwidthEstimator::start_probe(std::uint64_t target_bps, std::int64_t now_us) {
  expire_probe(now_us);
  if (probe_.active || target_bps == 0) {
    return false;
  }
  std::uint8_t id = probe_.id == UINT8_MAX ? 1 : static_cast<std::uint8_t>(probe_.id + 1);
  probe_ = ProbeCluster{};
  probe_.active = true;
  probe_.id = id;
  probe_.target_bps = static_cast<double>(std::min(target_bps, config_.max_bps));
  probe_.start_us = now_us;
  probe_.end_us = now_us + config_.probe_duration_us;
  return true;
}

std::size_t BandwidthEstimator::padding_due(std::int64_t now_us) {
  expire_probe(now_us);
  if (!probe_.active || now_us >= probe_.end_us || now_us < probe_.start_us) {
    return 0;
  }
  double due = probe_.target_bps * us_to_s(now_us - probe_.start_us) / 8 -
               static_cast<double>(probe_.sent_bytes);
  double burst = std::max(1200.0, probe_.target_bps * us_to_s(kProbeBurstUs) / 8);
  return due <= 0 ? 0 : static_cast<std::size_t>(std::min(due, burst));
}

void BandwidthEstimator::on_probe_packet(const SentPacket& p, bool received,
                                         std::int64_t arrival_us) {
  ++probe_.reported;
  if (!received) {
    return;
  }
  if (probe_.received == 0 || arrival_us < probe_.first_arrival_us) {
    probe_.first_arrival_us = arrival_us;
    probe_.first_arrival_bytes = p.bytes;
  }
  if (probe_.received == 0 || arrival_us > probe_.last_arrival_us) {
    probe_.last_arrival_us = arrival_us;
  }
  ++probe_.received;
  probe_.received_bytes += p.bytes;
}

void BandwidthEstimator::expire_probe(std::int64_t now_us) {
  if (probe_.active && now_us >= probe_.end_us + kProbeTimeoutUs) {
    conclude_probe();  // feedback for some of it never came: judge by what did
  }
}

void BandwidthEstimator::conclude_probe() {
  probe_.active = false;
  std::int64_t send_span = probe_.last_send_us - probe_.first_send_us;
  std::int64_t receive_span = probe_.last_arrival_us - probe_.first_arrival_us;
  if (probe_.sent < kProbeMinPackets || probe_.received < kProbeMinPackets || send_span <= 0 ||
      receive_span <= 0) {
    ++counters_.probes_failed;
    return;
  }
  // Rates over the spans: the last packet sent and the first received close no interval.
  double send_bps =
      static_cast<double>(probe_.sent_bytes - probe_.last_sent_bytes) * 8 / us_to_s(send_span);
  double receive_bps = static_cast<double>(probe_.received_bytes - probe_.first_arrival_bytes) * 8 /
                       us_to_s(receive_span);
  if (receive_bps > kProbeMaxRatio * send_bps) {
    ++counters_.probes_failed;
    return;
  }
  ++counters_.probes;
  counters_.last_probe_saturated = false;
  double received_ratio = static_cast<double>(probe_.received) / probe_.sent;
  if (received_ratio < kProbeMinReceived || receive_bps < kProbeSaturatedRatio * send_bps) {
    // The link took less than was offered: that is its capacity.
    ++counters_.probes_saturated;
    counters_.last_probe_saturated = true;
    double capacity = kProbeTargetUtilization * receive_bps;
    counters_.last_probe_bps = static_cast<std::uint64_t>(receive_bps);
    delay_based_.set(capacity, probe_.last_send_us);
    return;
  }
  double result = std::min({send_bps, receive_bps, probe_.target_bps});
  counters_.last_probe_bps = static_cast<std::uint64_t>(std::min(send_bps, receive_bps));
  if (!probe_.overuse && result > delay_based_.bps()) {
    delay_based_.set(result, probe_.last_send_us);
    loss_based_bps_ = std::max(loss_based_bps_, result);
  }
}

std::int64_t BandwidthEstimator::rtt_or_default() const {
  return rtt_us_ < 0 ? kDefaultRttUs : rtt_us_;
}

BandwidthEstimatorStats BandwidthEstimator::stats() const {
  BandwidthEstimatorStats s = counters_;
  s.estimate_bps = estimate_bps_;
  s.delay_based_bps = static_cast<std::uint64_t>(delay_based_.bps());
  s.loss_based_bps = static_cast<std::uint64_t>(loss_based_bps_);
  s.acked_bps = static_cast<std::uint64_t>(acked_.bps());
  s.usage = detector_.state();
  s.loss_fraction = loss_fraction_;
  s.loss_smoothed = std::max(loss_smoothed_, 0.0);
  s.rtt_us = rtt_or_default();
  return s;
}

}  // namespace ringlane::sfu
