#pragma once
// What a receiver report says about one incoming RTP stream (RFC 3550 §6.4.1, Appendix A.3
// and A.8): extended highest sequence, cumulative and fractional loss, interarrival jitter,
// and the last sender report's timestamp for the publisher's RTT.
#include <cstdint>

#include "ringlane/dataplane/rtp/rtcp.hpp"

namespace ringlane::sfu {

class ReceiveStats {
 public:
  void on_packet(std::uint16_t seq, std::uint32_t rtp_timestamp, std::uint64_t arrival_ms,
                 std::uint32_t clock_rate) {
    if (!started_) {
      started_ = true;
      base_ = seq;
      max_ = seq;
      cycles_ = 0;
    } else {
      auto delta = static_cast<std::uint16_t>(seq - max_);
      if (delta != 0 && delta < 0x8000) {
        if (seq < max_) {
          cycles_ += 1u << 16;  // wrapped forward
        }
        max_ = seq;
      }
    }
    ++received_;
    // A.8: jitter in RTP units from the difference of relative transit times.
    auto arrival = static_cast<std::uint32_t>(arrival_ms * clock_rate / 1000);
    auto transit = static_cast<std::int32_t>(arrival - rtp_timestamp);
    if (has_transit_) {
      // Modulo 2^32, as the clocks are (a signed subtraction could overflow).
      auto diff = static_cast<std::int32_t>(static_cast<std::uint32_t>(transit) -
                                            static_cast<std::uint32_t>(transit_));
      std::int64_t d = diff < 0 ? -std::int64_t{diff} : diff;
      jitter_ += (static_cast<double>(d) - jitter_) / 16.0;
    }
    transit_ = transit;
    has_transit_ = true;
  }
  void on_sender_report(std::uint64_t ntp, std::uint64_t now_ms) {
    last_sr_ = static_cast<std::uint32_t>(ntp >> 16);  // the middle 32 bits
    last_sr_ms_ = now_ms;
  }
  bool started() const { return started_; }
  std::uint16_t highest() const { return max_; }

  // Fills a report block and starts the next reporting interval.
  rtcp::ReportBlock report(std::uint32_t ssrc, std::uint64_t now_ms) {
    rtcp::ReportBlock b;
    b.ssrc = ssrc;
    std::uint32_t extended = cycles_ + max_;
    std::int64_t expected = static_cast<std::int64_t>(extended) - base_ + 1;
    std::int64_t lost = expected - static_cast<std::int64_t>(received_);
    // 24-bit signed, clamped (A.3).
    b.cumulative_lost = static_cast<std::int32_t>(lost > 0x7FFFFF    ? 0x7FFFFF
                                                  : lost < -0x800000 ? -0x800000
                                                                     : lost);
    std::int64_t expected_interval = expected - expected_prior_;
    std::int64_t received_interval = static_cast<std::int64_t>(received_) - received_prior_;
    std::int64_t lost_interval = expected_interval - received_interval;
    expected_prior_ = expected;
    received_prior_ = static_cast<std::int64_t>(received_);
    b.fraction_lost = expected_interval <= 0 || lost_interval <= 0
                          ? 0
                          : static_cast<std::uint8_t>((lost_interval << 8) / expected_interval);
    b.highest_sequence = extended;
    b.jitter = static_cast<std::uint32_t>(jitter_);
    b.last_sr = last_sr_;
    // DLSR in units of 1/65536 s.
    b.delay_since_last_sr =
        last_sr_ms_ == 0 ? 0 : static_cast<std::uint32_t>((now_ms - last_sr_ms_) * 65536 / 1000);
    return b;
  }

 private:
  bool started_ = false;
  bool has_transit_ = false;
  std::uint16_t base_ = 0;
  std::uint16_t max_ = 0;
  std::uint32_t cycles_ = 0;
  std::uint64_t received_ = 0;
  std::int64_t expected_prior_ = 0;
  std::int64_t received_prior_ = 0;
  std::int32_t transit_ = 0;
  double jitter_ = 0;
  std::uint32_t last_sr_ = 0;
  std::uint64_t last_sr_ms_ = 0;
};

}  // namespace ringlane::sfu
