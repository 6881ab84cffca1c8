#pragma once
// Per-worker statistics in shared memory (/dev/shm/ringlane-NAME.stats): each worker writes
// its own block with relaxed atomic stores, anyone reads without locks (`ringlane stats`,
// later the control plane's /metrics).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/turn/counters.hpp"

namespace ringlane {

inline constexpr std::uint64_t kStatsMagic = 0x52474C4E53544154ull;  // "RGLNSTAT"
inline constexpr std::uint32_t kStatsVersion = 2;

struct WorkerStats {
  std::uint64_t heartbeat_ms = 0;  // monotonic time of the last publish
  std::uint64_t loop_turns = 0;
  std::uint64_t cpu = 0;
  std::uint64_t numa_node = 0;
  turn::Counters turn;
  io::BackendStats io;
};

struct StatsHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t workers;
  std::uint64_t pid;
  char backend[16];
};

// Calls f(name, value) for every field, in a fixed order (for JSON and Prometheus output).
template <typename F>
void for_each_stat(const WorkerStats& s, F&& f) {
  f("heartbeat_ms", s.heartbeat_ms);
  f("loop_turns", s.loop_turns);
  f("cpu", s.cpu);
  f("numa_node", s.numa_node);
  const turn::Counters& t = s.turn;
  f("client_packets_in", t.client_packets_in);
  f("client_bytes_in", t.client_bytes_in);
  f("peer_packets_in", t.peer_packets_in);
  f("peer_bytes_in", t.peer_bytes_in);
  f("relayed_to_peer", t.relayed_to_peer);
  f("relayed_to_client", t.relayed_to_client);
  f("relayed_bytes_to_peer", t.relayed_bytes_to_peer);
  f("relayed_bytes_to_client", t.relayed_bytes_to_client);
  f("responses", t.responses);
  f("error_responses", t.error_responses);
  f("auth_challenges", t.auth_challenges);
  f("auth_failures", t.auth_failures);
  f("stale_nonces", t.stale_nonces);
  f("forbidden_peers", t.forbidden_peers);
  f("quota_rejections", t.quota_rejections);
  f("allocations_created", t.allocations_created);
  f("allocations_expired", t.allocations_expired);
  f("allocations_deleted", t.allocations_deleted);
  f("allocations", t.allocations);
  f("permissions", t.permissions);
  f("channels", t.channels);
  for (std::size_t i = 0; i < t.drops.size(); ++i) {
    f(std::string("drop_") + turn::drop_reason_name(static_cast<turn::Drop>(i)), t.drops[i]);
  }
  f("io_receive_calls", s.io.receive_calls);
  f("io_send_calls", s.io.send_calls);
  f("io_datagrams_in", s.io.datagrams_in);
  f("io_datagrams_out", s.io.datagrams_out);
  f("io_send_errors", s.io.send_errors);
  f("io_truncated", s.io.truncated);
  f("io_no_buffers", s.io.no_buffers);
  f("io_gso_sends", s.io.gso_sends);
  f("io_gso_fallbacks", s.io.gso_fallbacks);
  f("io_zerocopy_copied", s.io.zerocopy_copied);
}

// The writer's side: creates the region and hands each worker its block.
class StatsPage {
 public:
  // Creates /dev/shm/ringlane-NAME.stats (replacing a stale one); empty name = anonymous.
  StatsPage(const std::string& name, std::uint32_t workers, const char* backend);
  ~StatsPage();
  StatsPage(const StatsPage&) = delete;
  StatsPage& operator=(const StatsPage&) = delete;
  bool ok() const { return base_ != nullptr; }
  // Copies `s` into worker i's block with relaxed atomic stores.
  void publish(std::uint32_t worker, const WorkerStats& s);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::uint8_t* base_ = nullptr;
  std::size_t bytes_ = 0;
};

// The reader's side: a snapshot of every worker, or an error.
struct StatsSnapshot {
  std::uint64_t pid = 0;
  std::string backend;
  std::vector<WorkerStats> workers;
};
bool read_stats(const std::string& name, StatsSnapshot& out, std::string& error);
std::string stats_path(const std::string& name);

}  // namespace ringlane
