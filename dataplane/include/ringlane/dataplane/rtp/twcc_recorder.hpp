#pragma once
// The receive side of transport-wide congestion control
// (draft-holmer-rmcat-transport-wide-cc-extensions-01): when each transport-wide sequence number
// of one publisher's session arrived, answered with transport-cc feedback (RTPFB FMT=15) so the
// browser's send-side estimator sees queuing delay and loss. One per session, not per stream:
// the sequence number counts every packet of the transport (§2). Sans-I/O: the engine feeds it
// sequence numbers and its clock, and sends what build_feedback writes. The SFU keeps one per
// publisher session, sfu_load one per synthetic subscriber.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlane/common/bytes.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"

namespace ringlane::sfu {

class TwccRecorder {
 public:
  // Sequence numbers held at once, from the oldest not yet reported to the newest received (a
  // ring of arrival times indexed by sequence). At 1,000 packets/s that is 4 s without feedback.
  static constexpr std::size_t kWindow = 4096;
  // Statuses in one feedback: 512 large deltas with their two-bit vector chunks fit
  // kMaxFeedbackSize, so a buffer that large always takes a whole feedback.
  static constexpr std::size_t kMaxStatuses = 512;
  static constexpr std::size_t kMaxFeedbackSize = 1200;
  // The smallest buffer that always takes a feedback: the fixed part, one chunk and the first
  // delta (small: it counts from the reference time, §3.1), padded to 32 bits.
  static constexpr std::size_t kMinFeedbackSize = 24;

  struct Counters {
    std::uint64_t recorded = 0;    // arrivals stored (reordered ones included)
    std::uint64_t reordered = 0;   // arrived after a higher sequence, in time to be reported
    std::uint64_t duplicates = 0;  // a sequence already stored: the first arrival is kept
    std::uint64_t late = 0;        // older than what was already reported: ignored
    std::uint64_t restarts = 0;    // a jump the window cannot span: started over from it
    std::uint64_t feedbacks = 0;
  };

  TwccRecorder();

  // A packet with transport-wide sequence `seq` arrived at `arrival_us` (monotonic
  // microseconds, the same clock for every call).
  void on_packet(std::uint16_t seq, std::int64_t arrival_us);

  // True while recorded statuses wait for a feedback.
  bool pending() const { return started_ && begin_ < end_; }

  // Writes the next feedback (the oldest unreported statuses, up to kMaxStatuses and what fits
  // `out`) and returns its length; 0 when nothing is pending, or when `out` is smaller than
  // kMinFeedbackSize (nothing is then written or consumed). Call it every 50-100 ms and again at
  // once while pending(): a long gap, more than kMaxStatuses packets, or arrival times too far
  // apart for one feedback's 16-bit deltas (8.19 s) continue in the next one.
  std::size_t build_feedback(MutableBytes out, std::uint32_t sender_ssrc, std::uint32_t media_ssrc);

  const Counters& counters() const { return counters_; }

 private:
  std::int64_t& slot(std::int64_t seq) {
    return arrivals_[static_cast<std::size_t>(seq) & (kWindow - 1)];
  }
  void start(std::int64_t seq, std::int64_t arrival_us);

  // Arrival time per sequence number modulo kWindow (kNotReceived for a gap); only the slots of
  // [begin_, end_) mean anything.
  std::vector<std::int64_t> arrivals_;
  // The statuses handed to the builder, filled per feedback: kept here, not allocated each time.
  std::vector<rtcp::TwccPacket> scratch_;
  bool started_ = false;
  // A feedback was built since the (re)start; until then a packet older than begin_ widens the
  // window instead of counting as late.
  bool reported_ = false;
  std::int64_t begin_ = 0;  // unwrapped: the first sequence the next feedback reports
  std::int64_t end_ = 0;    // unwrapped: one past the newest sequence received
  std::uint8_t feedback_count_ = 0;
  Counters counters_;
};

}  // namespace ringlane::sfu
