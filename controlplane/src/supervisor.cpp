#include "ringlane/controlplane/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "ringlane/common/log.hpp"
#include "ringlane/node/handover.hpp"
#include "ringlane/shm/commands.hpp"
#include "ringlane/shm/messages.hpp"
#include "ringlane/shm/stats.hpp"

namespace ringlane::control {
namespace {
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr std::chrono::seconds kHealthyRun{30};  // a run this long resets the backoff
}  // namespace

std::unique_ptr<Supervisor> Supervisor::create(SupervisorConfig config, std::string&) {
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(config)));
}

Supervisor::~Supervisor() {
  stop();
  if (pidfd_ >= 0) {
    close(pidfd_);
  }
}

bool Supervisor::launch(const std::string& stats_name, std::string& error) {
  stats_name_ = stats_name;
  int adopted = adopt(stats_name, error);
  if (adopted < 0) {
    return false;
  }
  if (adopted > 0) {
    return true;
  }
  // 4,096 slots (1 MiB) per ring: a room of a few hundred joining at once queues a few thousand
  // session commands; what does not fit waits in backlog_.
  region_ = shm::Region::create("ringlane-region", config_.workers, 4096, 64, error);
  if (!region_) {
    return false;
  }
  for (unsigned i = 0; i < config_.workers; ++i) {
    doorbells_.push_back(std::make_unique<shm::Doorbell>());
  }
  return start();
}

int Supervisor::adopt(const std::string& stats_name, std::string& error) {
  StatsSnapshot snap;
  std::string why;
  if (!read_stats(stats_name, snap, why)) {
    return 0;
  }
  auto pid = static_cast<pid_t>(snap.pid);
  std::vector<std::string> args;
  {
    std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
    std::string arg;
    while (std::getline(cmdline, arg, '\0')) {
      args.push_back(arg);
    }
  }
  if (pid <= 0 || kill(pid, 0) != 0 || args.size() < 2 || args[1] != "dataplane") {
    return 0;  // a page left behind by a data plane that is gone
  }
  Handover handover;
  take_handover(args, handover);
  int region_fd = handover.region_fd;
  const std::vector<int>& bell_fds = handover.doorbells;
  std::string who = "data plane pid " + std::to_string(pid) + " (stats '" + stats_name + "')";
  if (region_fd < 0) {
    error = who + " runs without a control plane region (started by hand?): stop it first";
    return -1;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    error = who + ": pidfd_open: " + std::strerror(errno);
    return -1;
  }
  // pidfd_getfd needs ptrace rights over the data plane: same user (and no Yama restriction)
  // or CAP_SYS_PTRACE.
  auto take = [&](int target) {
    return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, target, 0));
  };
  int region_copy = take(region_fd);
  if (region_copy < 0) {
    error = who + ": cannot take its region (pidfd_getfd: " + std::strerror(errno) + ")";
    close(pidfd);
    return -1;
  }
  region_ = shm::Region::attach(region_copy, error);
  close(region_copy);
  if (!region_ || region_->workers() != config_.workers || bell_fds.size() != config_.workers) {
    error = who + ": " +
            (region_ ? "runs " + std::to_string(region_->workers()) +
                           " worker(s), this node is "
                           "configured for " +
                           std::to_string(config_.workers) + ": stop it first"
                     : error);
    region_.reset();
    close(pidfd);
    return -1;
  }
  // The region fd must be handed to a data plane we may start later: attach() dup'ed it
  // without close-on-exec, and start() clears the flag on it anyway.
  for (int fd : bell_fds) {
    int copy = take(fd);
    if (copy < 0) {
      error = who + ": cannot take its doorbell (pidfd_getfd: " + std::strerror(errno) + ")";
      doorbells_.clear();
      region_.reset();
      close(pidfd);
      return -1;
    }
    fcntl(copy, F_SETFD, 0);  // pidfd_getfd sets close-on-exec; a later data plane inherits it
    doorbells_.push_back(std::make_unique<shm::Doorbell>(copy));
  }
  pid_ = pid;
  pidfd_ = pidfd;
  started_ = std::chrono::steady_clock::now();
  spdlog::info("adopted the running data plane, pid {} ({} worker(s)); resynchronising", pid_,
               config_.workers);
  replay();
  return 1;
}

// Did the data plane exit? A child is reaped; an adopted process is watched via its pidfd
// (init reaps it; its exit status is not ours to read).
bool Supervisor::exited(int& status) {
  status = -1;
  if (pidfd_ >= 0) {
    pollfd p{pidfd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      return false;
    }
    close(pidfd_);
    pidfd_ = -1;
    return true;
  }
  return waitpid(pid_, &status, WNOHANG) == pid_;
}

bool Supervisor::start() {
  Handover handover{region_->fd(), {}};
  for (const auto& bell : doorbells_) {
    handover.doorbells.push_back(bell->fd());
  }
  std::vector<std::string> args = {config_.executable, "dataplane"};
  std::vector<std::string> handed = handover_args(handover);
  args.insert(args.end(), handed.begin(), handed.end());
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

bool Supervisor::push(unsigned worker, shm::Command type, std::span<const std::uint8_t> payload) {
  if (worker >= config_.workers || !region_) {
    return false;
  }
  drain(worker);
  auto& waiting = backlog_[worker];
  bool ok = waiting.empty() && region_->commands(worker).push(static_cast<std::uint16_t>(type),
                                                              shm::kMessageVersion, payload);
  if (!ok && waiting.size() < kMaxBacklog) {
    waiting.push_back({type, {payload.begin(), payload.end()}});
    ++backlogged_total_;
    ok = true;
  }
  doorbells_[worker]->ring();
  return ok;
}

void Supervisor::drain(unsigned worker) {
  if (backlog_[worker].empty()) {
    return;
  }
  auto ring = region_->commands(worker);
  auto& waiting = backlog_[worker];
  while (!waiting.empty() && ring.push(static_cast<std::uint16_t>(waiting.front().type),
                                       shm::kMessageVersion, waiting.front().payload)) {
    waiting.pop_front();
  }
  doorbells_[worker]->ring();
}

std::optional<media::DataPlaneInfo> Supervisor::info() {
  StatsSnapshot snap;
  std::string error;
  // The page must be the running data plane's: one that died leaves its page (and its
  // certificate's fingerprint) behind until the next one writes its own.
  if (stats_name_.empty() || !read_stats(stats_name_, snap, error) || snap.media_port == 0 ||
      snap.fingerprint.empty() || pid_ <= 0 || snap.pid != static_cast<std::uint64_t>(pid_)) {
    return std::nullopt;
  }
  return media::DataPlaneInfo{snap.fingerprint, static_cast<std::uint16_t>(snap.media_port)};
}

void Supervisor::poll() {
  for (unsigned i = 0; i < config_.workers; ++i) {
    drain(i);
  }
  for (unsigned i = 0; i < config_.workers; ++i) {
    auto events = region_->events(i);
    while (auto m = events.front()) {
      if (m->type == static_cast<std::uint16_t>(shm::Event::kPolicyRejected)) {
        spdlog::warn("worker {} rejected a policy", i);
      } else if (m->type == static_cast<std::uint16_t>(shm::Event::kCommandRefused)) {
        spdlog::warn("worker {} refused a command", i);
      } else if (m->type == static_cast<std::uint16_t>(shm::Event::kSessionEvent) &&
                 session_event_) {
        session_event_(i, m->payload);
      } else if ((m->type == static_cast<std::uint16_t>(shm::Event::kRouteReport) ||
                  m->type == static_cast<std::uint16_t>(shm::Event::kAudioLevels) ||
                  m->type == static_cast<std::uint16_t>(shm::Event::kLayersActive)) &&
                 media_report_) {
        media_report_(i, static_cast<shm::Event>(m->type), m->payload);
      }
      events.pop();
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (pid_ > 0) {
    int status = 0;
    if (!exited(status)) {
      // A restarted data plane is announced once it has published its page (its certificate).
      if (restart_pending_ && info()) {
        restart_pending_ = false;
        if (restarted_) {
          restarted_();
        }
      }
      return;
    }
    pid_ = -1;
    for (auto& waiting : backlog_) {
      waiting.clear();  // for sessions the next data plane will not have
    }
    if (stopping_) {
      return;
    }
    if (now - started_ > kHealthyRun) {
      backoff_ = std::chrono::milliseconds(200);
    }
    restart_at_ = now + backoff_;
    if (status == -1) {
      spdlog::error("the adopted data plane exited; restarting in {} ms", backoff_.count());
    } else {
      spdlog::error("data plane exited ({} {}); restarting in {} ms",
                    WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), backoff_.count());
    }
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    return;
  }
  if (!stopping_ && now >= restart_at_ && start()) {
    ++restarts_;
    restart_pending_ = true;
  }
}

void Supervisor::stop() {
  stopping_ = true;
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (exited(status)) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  for (int i = 0; i < 100 && !exited(status); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

std::string Supervisor::metrics() const {
  std::string out;
  out += "# TYPE ringlane_dataplane_restarts_total counter\n";
  out += "ringlane_dataplane_restarts_total " + std::to_string(restarts_) + "\n";
  out += "# TYPE ringlane_ring_backlogged_total counter\n";
  out += "ringlane_ring_backlogged_total " + std::to_string(backlogged_total_) + "\n";
  out += "# TYPE ringlane_dataplane_adopted gauge\n";
  out += "ringlane_dataplane_adopted " + std::to_string(adopted() ? 1 : 0) + "\n";
  if (!region_) {
    return out;
  }
  std::string depth = "# TYPE ringlane_ring_depth gauge\n";
  std::string messages = "# TYPE ringlane_ring_messages_total counter\n";
  std::string full = "# TYPE ringlane_ring_backpressure_total counter\n";
  for (unsigned w = 0; w < config_.workers; ++w) {
    auto commands = region_->commands(w);
    auto events = region_->events(w);
    for (auto [name, ring] : {std::pair{"commands", &commands}, std::pair{"events", &events}}) {
      std::string labels = "{worker=\"" + std::to_string(w) + "\",ring=\"" + name + "\"} ";
      depth += "ringlane_ring_depth" + labels + std::to_string(ring->depth()) + "\n";
      messages +=
          "ringlane_ring_messages_total" + labels + std::to_string(ring->pushed_count()) + "\n";
      full +=
          "ringlane_ring_backpressure_total" + labels + std::to_string(ring->full_count()) + "\n";
    }
  }
  return out + depth + messages + full + sfu_metrics();
}

// The SFU's seed KPIs over all workers, from the stats page: peer connections with DTLS up, and
// the time from session creation to DTLS connected as a Prometheus histogram plus its p95 (the
// upper bound of the bucket that holds the 95th percentile).
std::string Supervisor::sfu_metrics() const {
  StatsSnapshot snap;
  std::string error;
  if (stats_name_.empty() || !read_stats(stats_name_, snap, error)) {
    return "";
  }
  std::uint64_t active = 0;
  std::uint64_t sum = 0;
  std::array<std::uint64_t, sfu::kConnectBuckets.size() + 1> buckets{};
  for (const auto& w : snap.workers) {
    active += w.sfu.sessions_connected;
    sum += w.sfu.connect_ms_sum;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      buckets[i] += w.sfu.connect_ms[i];
    }
  }
  std::string out = "# TYPE webrtc_peer_connections_active gauge\nwebrtc_peer_connections_active " +
                    std::to_string(active) + "\n";
  out += "# TYPE ringlane_sfu_connect_ms histogram\n";
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    total += buckets[i];
    std::string le =
        i < sfu::kConnectBuckets.size() ? std::to_string(sfu::kConnectBuckets[i]) : "+Inf";
    out += "ringlane_sfu_connect_ms_bucket{le=\"" + le + "\"} " + std::to_string(total) + "\n";
  }
  out += "ringlane_sfu_connect_ms_sum " + std::to_string(sum) + "\n";
  out += "ringlane_sfu_connect_ms_count " + std::to_string(total) + "\n";
  if (total > 0) {
    std::uint64_t seen = 0;
    std::string p95 = "+Inf";
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      seen += buckets[i];
      if (seen * 100 >= total * 95) {
        p95 = i < sfu::kConnectBuckets.size() ? std::to_string(sfu::kConnectBuckets[i]) : "+Inf";
        break;
      }
    }
    out += "# TYPE connection_establishment_time_p95 gauge\nconnection_establishment_time_p95 " +
           p95 + "\n";
  }
  return out;
}

}  // namespace ringlane::control
