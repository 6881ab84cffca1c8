#pragma once
// The control plane's side of the process split (DESIGN.md): it owns the shared region and the
// workers' doorbells, starts the data plane process with them, restarts it with backoff when
// it dies, and replays the state it owns (today: the TURN policy) through the command rings.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <functional>

#include "ringlane/controlplane/media/link.hpp"
#include "ringlane/shm/messages.hpp"
#include "ringlane/shm/region.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane::control {

struct SupervisorConfig {
  std::string executable;                   // this binary, re-executed as `ringlane dataplane`
  std::vector<std::string> dataplane_args;  // node options passed through
  unsigned workers = 1;
  turn::Policy policy;  // replayed after every start
};

class Supervisor final : public media::Link {
 public:
  static std::unique_ptr<Supervisor> create(SupervisorConfig config, std::string& error);
  ~Supervisor() override;

  // media::Link: session commands to a worker; the fingerprint and media port from the data
  // plane's stats page.
  bool push(unsigned worker, shm::Command type, std::span<const std::uint8_t> payload) override;
  std::optional<media::DataPlaneInfo> info() override;
  // Session events from the workers (state changes), delivered from poll().
  void on_session_event(std::function<void(unsigned worker, std::span<const std::uint8_t>)> f) {
    session_event_ = std::move(f);
  }
  // The workers' media reports (shm::RouteReport, AudioLevels, LayersActive), from poll().
  void on_media_report(
      std::function<void(unsigned worker, shm::Event type, std::span<const std::uint8_t>)> f) {
    media_report_ = std::move(f);
  }
  // A data plane was started again after one exited (a crash, not an adoption): the sessions and
  // keys the old one held are gone. Called from poll(), once the new one has published its
  // stats page (info() answers for it).
  void on_restarted(std::function<void()> f) { restarted_ = std::move(f); }

  // Adopts the data plane a previous control plane of this node left running (found through
  // its stats page; the region and doorbells are copied out of it with pidfd_getfd), or else
  // creates a region and starts a new one. Adoption replays the policy: that is the resync.
  bool launch(const std::string& stats_name, std::string& error);
  bool start();
  // Reaps a data plane that exited and restarts it once its backoff has passed; logs the
  // workers' events. Call every ~100 ms.
  void poll();
  // SIGTERM to the data plane, SIGKILL after 5 s.
  void stop();
  pid_t pid() const { return pid_; }
  // Prometheus text: per-worker ring depth, messages and backpressure (pushes refused because
  // a ring was full), data plane restarts, and whether the running data plane was adopted.
  std::string metrics() const;
  bool adopted() const { return pidfd_ >= 0; }
  unsigned restarts() const { return restarts_; }

 private:
  explicit Supervisor(SupervisorConfig config)
      : config_(std::move(config)), backlog_(config_.workers) {}
  void replay();
  std::string sfu_metrics() const;
  // 1: adopted; 0: nothing to adopt; -1: a data plane runs but cannot be adopted (error set).
  int adopt(const std::string& stats_name, std::string& error);
  bool exited(int& status);

  SupervisorConfig config_;
  std::unique_ptr<shm::Region> region_;
  std::vector<std::unique_ptr<shm::Doorbell>> doorbells_;
  // Per worker, in order: commands the ring had no room for (a burst of joins), moved into the
  // ring as the worker makes room (every push and poll). Bounded: past it push() fails.
  struct Backlogged {
    shm::Command type;
    std::vector<std::uint8_t> payload;
  };
  static constexpr std::size_t kMaxBacklog = 1 << 16;
  std::vector<std::deque<Backlogged>> backlog_;
  std::uint64_t backlogged_total_ = 0;
  void drain(unsigned worker);
  pid_t pid_ = -1;
  int pidfd_ = -1;  // an adopted data plane is not our child: its exit is seen through a pidfd
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point restart_at_;
  std::chrono::milliseconds backoff_{200};
  unsigned restarts_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
  std::string stats_name_;
  std::function<void(unsigned, std::span<const std::uint8_t>)> session_event_;
  std::function<void(unsigned, shm::Event, std::span<const std::uint8_t>)> media_report_;
  std::function<void()> restarted_;
  bool restart_pending_ = false;  // restarted_ is owed once the new data plane is up
};

}  // namespace ringlane::control
