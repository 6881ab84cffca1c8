#pragma once
// The receive-side estimate the SFU sends as REMB (draft-alvestrand-rmcat-remb) to a publisher
// that negotiated goog-remb but not transport-cc (older GStreamer, Firefox-shaped offers): such
// a sender has no estimator of its own and caps its encoder at what the receiver tells it.
//
// Kept simple, per publisher session, updated once per receiver-report interval from what the
// SFU itself measures of that publisher: the incoming rate (all its tracks) and the worst
// fraction lost of that interval (RFC 3550 §6.4.1, as in the receiver report). In the manner of
// the loss-based part of Google Congestion Control (draft-ietf-rmcat-gcc-02 §6):
//   - loss > 10%: cut to (1 - loss/2) of the estimate;
//   - loss < 2%: grow by 8% per interval while under 1.5 x the incoming rate plus 100 kbit/s
//     (headroom for the sender to ramp up into; an estimate far above what it sends would
//     say nothing), and hold above that;
//   - in between: hold.
// Within [kMinBps, kMaxBps]; the first estimate is the headroom over the first incoming rate.
#include <algorithm>
#include <cstdint>

namespace ringlane::sfu {

class RembEstimate {
 public:
  static constexpr std::uint64_t kMinBps = 50'000;
  static constexpr std::uint64_t kMaxBps = 50'000'000;
  static constexpr std::uint64_t kHeadroomBps = 100'000;

  // `fraction_lost` in 1/256 (the receiver report's field). Returns the new estimate.
  std::uint64_t update(std::uint64_t incoming_bps, std::uint8_t fraction_lost) {
    std::uint64_t ceiling = incoming_bps * 3 / 2 + kHeadroomBps;
    if (estimate_bps_ == 0) {
      estimate_bps_ = ceiling;
    } else if (fraction_lost > 26) {  // > 10%
      estimate_bps_ = estimate_bps_ * (512 - fraction_lost) / 512;
    } else if (fraction_lost < 5) {  // < 2%
      estimate_bps_ = std::min(estimate_bps_ * 108 / 100, std::max(ceiling, estimate_bps_));
    }
    estimate_bps_ = std::clamp(estimate_bps_, kMinBps, kMaxBps);
    return estimate_bps_;
  }
  std::uint64_t estimate_bps() const { return estimate_bps_; }

 private:
  std::uint64_t estimate_bps_ = 0;  // 0: nothing measured yet
};

}  // namespace ringlane::sfu
