// Control-plane <-> data-plane hand-off: the shared-memory SPSC ring against a mutex +
// condition-variable queue, in the same run. Producer on CPU 0, consumer on CPU 1.
// Throughput: a bounded count of 64-byte messages, nothing but the hand-off on the path.
// Latency: a fixed rate, a timestamp in each message, p50/p99 of the hand-off. Prints a table,
// writes JSON.
//   ring_bench [--out PATH] [--messages N]
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/shm/region.hpp"
#include "ringlane/shm/ring.hpp"

using namespace ringlane::shm;
using Clock = std::chrono::steady_clock;

namespace {

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

struct Result {
  double msgs_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// The abstract channel: push(msg) from one thread, pop() on the other.
class MutexQueue {
 public:
  void push(const std::array<std::uint8_t, 64>& m) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(m);
    }
    cv_.notify_one();
  }
  void flush() {}
  std::array<std::uint8_t, 64> pop() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    auto m = queue_.front();
    queue_.pop_front();
    return m;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::array<std::uint8_t, 64>> queue_;
};

// The ring as the data plane uses it: the consumer sleeps on its doorbell (eventfd) when the
// ring is empty and says so; the producer rings only then.
template <bool kBatched>
class RingChannel {
 public:
  RingChannel() {
    std::string error;
    region_ = Region::create("ring-bench", 1, 4096, 64, error);
    // One view per side, as the two processes have.
    ring_ = std::make_unique<SpscRing>(region_->commands(0));
    reader_ = std::make_unique<SpscRing>(region_->commands(0));
  }
  void push(const std::array<std::uint8_t, 64>& m) {
    while (!ring_->stage(1, 1, m)) {
      ring_->publish();
      std::this_thread::yield();  // backpressure: the bench never drops
    }
    if (kBatched && ++staged_ < 32) {
      return;  // the caller's flush() or the 32nd message publishes
    }
    flush();
  }
  void flush() {
    staged_ = 0;
    ring_->publish();
    // Publishing the tail, then reading the flag, must not be reordered (StoreLoad), or a
    // consumer that just decided to sleep would miss this message's wakeup.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) {
      doorbell_.ring();
    }
  }
  std::array<std::uint8_t, 64> pop() {
    for (int spins = 0;; ++spins) {
      if (auto m = reader_->front()) {
        std::array<std::uint8_t, 64> out;
        std::memcpy(out.data(), m->payload.data(), 64);
        reader_->pop();
        return out;
      }
      if (spins > 4000) {  // about 10-20 us of spinning before the eventfd
        sleeping_.store(true, std::memory_order_seq_cst);
        if (!reader_->front()) {
          doorbell_.wait(100);
          doorbell_.drain();
        }
        sleeping_.store(false, std::memory_order_relaxed);
        spins = 0;
      }
    }
  }

 private:
  std::unique_ptr<Region> region_;
  std::unique_ptr<SpscRing> ring_;
  std::unique_ptr<SpscRing> reader_;
  Doorbell doorbell_;
  // Each on its own cache line: the producer writes staged_ every message, the consumer
  // writes sleeping_ when it goes idle; neither may drag the other side's line along.
  alignas(kCacheLine) std::atomic<bool> sleeping_{false};
  alignas(kCacheLine) int staged_ = 0;
};

// rate 0: throughput, no clocks on the path. rate > 0: paced, every message timestamped.
template <typename Channel>
Result run(std::size_t messages, long rate) {
  Channel ch;
  const bool timed = rate > 0;
  std::vector<std::uint32_t> latency;
  latency.reserve(timed ? messages : 1);
  auto t0 = Clock::now();
  std::thread consumer([&] {
    pin(1);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < messages; ++i) {
      auto m = ch.pop();
      std::uint64_t stamp;
      std::memcpy(&stamp, m.data(), 8);
      if (timed) {
        latency.push_back(
            static_cast<std::uint32_t>(std::min<std::uint64_t>(now_ns() - stamp, UINT32_MAX)));
      } else {
        sum += stamp;  // use the bytes, so the copy is not optimised away
      }
    }
    if (sum == 1)
      std::fputs("", stderr);
  });
  pin(0);
  std::array<std::uint8_t, 64> msg{};
  std::uint64_t start = now_ns();
  for (std::size_t i = 0; i < messages; ++i) {
    if (rate > 0) {
      std::uint64_t due = start + i * 1'000'000'000ull / static_cast<std::uint64_t>(rate);
      while (now_ns() < due) {
      }
    }
    std::uint64_t stamp = timed ? now_ns() : i;
    std::memcpy(msg.data(), &stamp, 8);
    ch.push(msg);
    if (rate > 0)
      ch.flush();  // paced: every message leaves at once
  }
  ch.flush();
  consumer.join();
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!timed) {
    return {static_cast<double>(messages) / seconds, 0, 0};
  }
  std::sort(latency.begin(), latency.end());
  return {static_cast<double>(messages) / seconds, latency[latency.size() / 2] / 1000.0,
          latency[latency.size() * 99 / 100] / 1000.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "bench/out/ring.json";
  std::size_t messages = 2'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--out")
      out = argv[i + 1];
    if (std::string(argv[i]) == "--messages")
      messages = std::stoul(argv[i + 1]);
  }
  // Best of three for throughput; latency at a fixed 100,000 messages/s for one second.
  Result batched{}, single{}, queue{};
  for (int rep = 0; rep < 3; ++rep) {
    batched.msgs_per_s =
        std::max(batched.msgs_per_s, run<RingChannel<true>>(messages, 0).msgs_per_s);
    single.msgs_per_s =
        std::max(single.msgs_per_s, run<RingChannel<false>>(messages / 2, 0).msgs_per_s);
    queue.msgs_per_s = std::max(queue.msgs_per_s, run<MutexQueue>(messages / 4, 0).msgs_per_s);
  }
  Result ring_lat = run<RingChannel<false>>(100'000, 100'000);
  Result queue_lat = run<MutexQueue>(100'000, 100'000);
  std::printf("%-34s %14s %10s %10s\n", "channel", "msgs/s", "p50 us", "p99 us");
  std::printf("%-34s %14.0f %10s %10s\n", "shm ring, bursts of 32 published", batched.msgs_per_s,
              "", "");
  std::printf("%-34s %14.0f %10.2f %10.2f\n", "shm ring, each message published", single.msgs_per_s,
              ring_lat.p50_us, ring_lat.p99_us);
  std::printf("%-34s %14.0f %10.2f %10.2f\n", "mutex + condvar queue", queue.msgs_per_s,
              queue_lat.p50_us, queue_lat.p99_us);
  double ratio = batched.msgs_per_s / queue.msgs_per_s;
  double ratio_single = single.msgs_per_s / queue.msgs_per_s;
  std::printf(
      "ring_vs_mutex_queue %.2f (bursts), %.2f (each message)   p99 at 100k/s: %.2f vs %.2f us\n",
      ratio, ratio_single, ring_lat.p99_us, queue_lat.p99_us);
  if (FILE* f = std::fopen(out.c_str(), "w")) {
    std::fprintf(
        f,
        "{\"ring_batched\":{\"msgs_per_s\":%.0f},\"ring\":{\"msgs_per_s\":%.0f,\"p50_us\":%.2f,"
        "\"p99_us\":%.2f},\"mutex_queue\":{\"msgs_per_s\":%.0f,\"p50_us\":%.2f,\"p99_us\":%.2f},"
        "\"ratios\":{\"ring_vs_mutex_queue\":%.3f,\"ring_unbatched_vs_mutex_queue\":%.3f}}\n",
        batched.msgs_per_s, single.msgs_per_s, ring_lat.p50_us, ring_lat.p99_us, queue.msgs_per_s,
        queue_lat.p50_us, queue_lat.p99_us, ratio, ratio_single);
    std::fclose(f);
    std::printf("wrote %s\n", out.c_str());
  }
  return 0;
}
