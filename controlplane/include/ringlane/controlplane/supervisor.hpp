#pragma once
// The control plane's side of the process split (DESIGN.md): it owns the shared region and the
// workers' doorbells, starts the data plane process with them, restarts it with backoff when
// it dies, and replays the state it owns (today: the TURN policy) through the command rings.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ringlane/dataplane/turn/policy.hpp"
#include "ringlane/shm/region.hpp"

namespace ringlane::control {

struct SupervisorConfig {
  std::string executable;                   // this binary, re-executed as `ringlane dataplane`
  std::vector<std::string> dataplane_args;  // node options passed through
  unsigned workers = 1;
  turn::Policy policy;  // replayed after every start
};

class Supervisor {
 public:
  static std::unique_ptr<Supervisor> create(SupervisorConfig config, std::string& error);
  ~Supervisor();

  bool start();
  // Reaps a data plane that exited and restarts it once its backoff has passed; logs the
  // workers' events. Call every ~100 ms.
  void poll();
  // SIGTERM to the data plane, SIGKILL after 5 s.
  void stop();
  pid_t pid() const { return pid_; }
  unsigned restarts() const { return restarts_; }

 private:
  explicit Supervisor(SupervisorConfig config) : config_(std::move(config)) {}
  void replay();

  SupervisorConfig config_;
  std::unique_ptr<shm::Region> region_;
  std::vector<std::unique_ptr<shm::Doorbell>> doorbells_;
  pid_t pid_ = -1;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point restart_at_;
  std::chrono::milliseconds backoff_{200};
  unsigned restarts_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace ringlane::control
