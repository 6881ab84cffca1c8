#include "ringlane/controlplane/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "ringlane/common/log.hpp"
#include "ringlane/dataplane/commands.hpp"
#include "ringlane/shm/messages.hpp"

namespace ringlane::control {
namespace {
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr std::chrono::seconds kHealthyRun{30};  // a run this long resets the backoff
}  // namespace

std::unique_ptr<Supervisor> Supervisor::create(SupervisorConfig config, std::string& error) {
  std::unique_ptr<Supervisor> s(new Supervisor(std::move(config)));
  s->region_ = shm::Region::create("ringlane-region", s->config_.workers, 256, 64, error);
  if (!s->region_) {
    return nullptr;
  }
  for (unsigned i = 0; i < s->config_.workers; ++i) {
    s->doorbells_.push_back(std::make_unique<shm::Doorbell>());
  }
  return s;
}

Supervisor::~Supervisor() {
  stop();
}

bool Supervisor::start() {
  std::vector<std::string> args = {config_.executable, "dataplane",
                                   "--region-fd",      std::to_string(region_->fd()),
                                   "--doorbells",      ""};
  for (std::size_t i = 0; i < doorbells_.size(); ++i) {
    args.back() += (i == 0 ? "" : ",") + std::to_string(doorbells_[i]->fd());
  }
  args.insert(args.end(), config_.dataplane_args.begin(), config_.dataplane_args.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  int region_fd = region_->fd();
  pid_t pid = fork();
  if (pid < 0) {
    spdlog::error("cannot start the data plane: fork failed");
    return false;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec: hand the region over (it is close-on-exec).
    fcntl(region_fd, F_SETFD, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  started_ = std::chrono::steady_clock::now();
  spdlog::info("data plane started, pid {} ({} worker(s))", pid_, config_.workers);
  replay();
  return true;
}

// What the control plane owns goes to the new data plane through the rings; workers pick it up
// as soon as they run.
void Supervisor::replay() {
  ++generation_;
  for (unsigned i = 0; i < config_.workers; ++i) {
    auto ring = region_->commands(i);
    if (!push_policy(ring, config_.policy, generation_)) {
      spdlog::warn("worker {}: command ring full, policy generation {} not sent", i, generation_);
    }
    doorbells_[i]->ring();
  }
}

void Supervisor::poll() {
  for (unsigned i = 0; i < config_.workers; ++i) {
    auto events = region_->events(i);
    while (auto m = events.front()) {
      if (m->type == static_cast<std::uint16_t>(shm::Event::kPolicyRejected)) {
        spdlog::warn("worker {} rejected a policy", i);
      } else if (m->type == static_cast<std::uint16_t>(shm::Event::kCommandRefused)) {
        spdlog::warn("worker {} refused a command", i);
      }
      events.pop();
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) {
      return;
    }
    pid_ = -1;
    if (stopping_) {
      return;
    }
    if (now - started_ > kHealthyRun) {
      backoff_ = std::chrono::milliseconds(200);
    }
    restart_at_ = now + backoff_;
    spdlog::error("data plane exited ({} {}); restarting in {} ms",
                  WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), backoff_.count());
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    return;
  }
  if (!stopping_ && now >= restart_at_ && start()) {
    ++restarts_;
  }
}

void Supervisor::stop() {
  stopping_ = true;
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace ringlane::control
