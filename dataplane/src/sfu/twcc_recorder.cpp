#include "ringlane/dataplane/rtp/twcc_recorder.hpp"

#include <algorithm>
#include <limits>
#include <span>

namespace ringlane::sfu {
namespace {

constexpr std::int64_t kNotReceived = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kTicksPerReference = rtcp::kTwccReferenceTickUs / rtcp::kTwccDeltaTickUs;

static_assert((TwccRecorder::kWindow & (TwccRecorder::kWindow - 1)) == 0, "ring index by mask");
static_assert(TwccRecorder::kMaxStatuses < TwccRecorder::kWindow);
// Worst case of one feedback: every status a large delta (2 bytes) in two-bit vector chunks of 7.
static_assert(20 + 2 * TwccRecorder::kMaxStatuses + 2 * ((TwccRecorder::kMaxStatuses + 6) / 7) <=
              TwccRecorder::kMaxFeedbackSize);

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

TwccRecorder::TwccRecorder() : arrivals_(kWindow, kNotReceived), scratch_(kMaxStatuses) {}

void TwccRecorder::start(std::int64_t seq, std::int64_t arrival_us) {
  started_ = true;
  reported_ = false;
  begin_ = seq;
  end_ = seq + 1;
  slot(seq) = arrival_us;
  ++counters_.recorded;
}

void TwccRecorder::on_packet(std::uint16_t seq, std::int64_t arrival_us) {
  if (!started_) {
    start(seq, arrival_us);
    return;
  }
  // Unwrap against the newest sequence: within half the 16-bit space forward is newer, else
  // older (as RFC 3550 Appendix A.1 does for RTP sequence numbers).
  std::int64_t newest = end_ - 1;
  auto diff = static_cast<std::int16_t>(
      static_cast<std::uint16_t>(seq - static_cast<std::uint16_t>(newest)));
  std::int64_t s = newest + diff;

  if (s >= end_) {
    if (s - begin_ >= static_cast<std::int64_t>(kWindow)) {
      // The window cannot hold both the oldest unreported status and this one: a jump in the
      // publisher's numbering, or feedback not drained for a long time. Start over from this
      // packet; the statuses dropped are never reported, so the sender sees them neither
      // received nor lost.
      ++counters_.restarts;
      start(s, arrival_us);
      return;
    }
    for (std::int64_t gap = end_; gap < s; ++gap) {
      slot(gap) = kNotReceived;
    }
    slot(s) = arrival_us;
    end_ = s + 1;
    ++counters_.recorded;
    return;
  }
  if (s < begin_) {
    // Already reported (lost or received) cannot be taken back: each sequence is reported once,
    // and the next feedback starts after the last one reported (as libwebrtc's receiver does).
    // Before the first feedback nothing was reported, so an early packet arriving late widens
    // the window back, as far as it reaches.
    if (reported_ || end_ - s > static_cast<std::int64_t>(kWindow)) {
      ++counters_.late;
      return;
    }
    for (std::int64_t gap = s + 1; gap < begin_; ++gap) {
      slot(gap) = kNotReceived;
    }
    begin_ = s;
    slot(s) = arrival_us;
    ++counters_.recorded;
    ++counters_.reordered;
    return;
  }
  std::int64_t& arrival = slot(s);
  if (arrival != kNotReceived) {
    ++counters_.duplicates;
    return;
  }
  arrival = arrival_us;
  ++counters_.recorded;
  ++counters_.reordered;
}

std::size_t TwccRecorder::build_feedback(MutableBytes out, std::uint32_t sender_ssrc,
                                         std::uint32_t media_ssrc) {
  if (!pending()) {
    return 0;
  }
  auto count =
      static_cast<std::size_t>(std::min(end_ - begin_, static_cast<std::int64_t>(kMaxStatuses)));
  // §3.1: the reference time is in 64 ms; taken from the first arrival pending, rounded down, so
  // the first delta is 0..63.75 ms, a small one. The newest sequence is always received, so
  // there is one; a feedback of lost statuses only (a gap longer than kMaxStatuses) borrows the
  // time of the arrival after it, which keeps the sender's reference times in order.
  std::int64_t first = begin_;
  while (first < end_ - 1 && slot(first) == kNotReceived) {
    ++first;
  }
  std::int64_t reference = floor_div(slot(first), rtcp::kTwccReferenceTickUs);
  // Deltas are differences of arrival times rounded down to 250 us ticks, never rounded one by
  // one, so the sender's running sum lands on every arrival without drift.
  std::int64_t previous = reference * kTicksPerReference;
  for (std::size_t i = 0; i < count; ++i) {
    std::int64_t seq = begin_ + static_cast<std::int64_t>(i);
    std::int64_t arrival = slot(seq);
    rtcp::TwccPacket& p = scratch_[i];
    p.sequence = static_cast<std::uint16_t>(seq);
    p.received = arrival != kNotReceived;
    p.delta_us = 0;
    if (p.received) {
      std::int64_t ticks = floor_div(arrival, rtcp::kTwccDeltaTickUs);
      p.delta_us = (ticks - previous) * rtcp::kTwccDeltaTickUs;
      previous = ticks;
    }
  }
  // The builder ends the feedback early where `out` is full or a delta exceeds 16 bits; what it
  // did not cover stays pending for the next call.
  std::size_t covered = 0;
  std::size_t n =
      rtcp::build_transport_cc(out, sender_ssrc, media_ssrc, static_cast<std::uint16_t>(begin_),
                               static_cast<std::int32_t>(reference & 0xFFFFFF), feedback_count_,
                               std::span<const rtcp::TwccPacket>(scratch_.data(), count), &covered);
  if (n == 0) {
    return 0;
  }
  begin_ += static_cast<std::int64_t>(covered);
  reported_ = true;
  ++feedback_count_;  // §3.1: incremented per feedback sent, wrapping at 8 bits
  ++counters_.feedbacks;
  return n;
}

}  // namespace ringlane::sfu
