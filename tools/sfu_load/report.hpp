#pragma once
// Counting for sfu_load: a latency histogram (no per-packet allocation), percentiles of small
// samples, and per-stream sequence bookkeeping.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace sfu_load {

// Latencies in microseconds: 1 µs buckets to 100 ms, then one overflow bucket; the maximum is
// kept exactly.
class LatencyHistogram {
 public:
  static constexpr std::size_t kBuckets = 100000;
  LatencyHistogram() : buckets_(kBuckets + 1, 0) {}
  void add(std::uint64_t us) {
    ++buckets_[std::min<std::uint64_t>(us, kBuckets)];
    ++count_;
    max_ = std::max(max_, us);
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      buckets_[i] += other.buckets_[i];
    }
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // The bucket holding the p-quantile (0..1), in µs; 0 when empty.
  double quantile(double p) const {
    if (count_ == 0) {
      return 0;
    }
    auto rank = static_cast<std::uint64_t>(p * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) {
        return i == kBuckets ? static_cast<double>(max_) : static_cast<double>(i);
      }
    }
    return static_cast<double>(max_);
  }

 private:
  std::vector<std::uint32_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// What one subscriber received of one publisher's stream, by the publisher's packet counter.
struct ReceivedStream {
  static constexpr std::uint32_t kMaxTracked = 1u << 22;
  std::uint32_t publisher = 0;  // participant index
  bool video = false;
  std::uint8_t payload_type = 0;
  std::uint8_t audio_level_id = 1;  // the a=extmap id of ssrc-audio-level; 0: not negotiated
  // A server that writes its own sequence numbers (Janus): their distance to the payload's
  // counter, and how often it changed (each change is a jump the receiver would see).
  std::uint16_t seq_offset = 0;
  std::uint64_t seq_offset_changes = 0;
  std::uint64_t packets = 0;  // every valid packet, duplicates included
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t integrity_failures = 0;
  std::uint64_t marker_mismatches = 0;
  bool any = false;
  std::uint32_t highest = 0;
  std::vector<bool> seen;  // by sequence counter

  // Records packet `seq`; false for a duplicate.
  bool on_packet(std::uint32_t seq) {
    ++packets;
    if (seq >= kMaxTracked) {
      return true;
    }
    if (seen.size() <= seq) {
      seen.resize(std::max<std::size_t>(seq + 1, seen.size() * 2), false);
    }
    if (seen[seq]) {
      ++duplicates;
      return false;
    }
    seen[seq] = true;
    if (any && seq < highest) {
      ++out_of_order;
    }
    if (!any || seq > highest) {
      highest = seq;
    }
    any = true;
    return true;
  }
  // Distinct packets received among [from, to].
  std::uint64_t received_in(std::uint32_t from, std::uint32_t to) const {
    std::uint64_t n = 0;
    for (std::uint64_t s = from; s <= to && s < seen.size(); ++s) {
      n += seen[s] ? 1 : 0;
    }
    return n;
  }
};

}  // namespace sfu_load
