#include "ringlane/dataplane/worker.hpp"

#include <netinet/in.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <future>
#include <mutex>

#include "ringlane/common/log.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane {
namespace {

Now read_clock() {
  timespec mono{};
  timespec real{};
  // Not the _COARSE clock for monotonic time: its 4 ms steps would blur the arrival times
  // transport-wide congestion control feedback reports in 250 us units.
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME_COARSE, &real);
  std::int64_t us = static_cast<std::int64_t>(mono.tv_sec) * 1'000'000 + mono.tv_nsec / 1000;
  return Now{static_cast<std::uint64_t>(us / 1000), real.tv_sec, us};
}

int open_udp(const Endpoint& ep, bool reuse_port, int buffer_bytes) {
  int fd = socket(ep.family() == Family::kV4 ? AF_INET : AF_INET6,
                  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  int one = 1;
  if (reuse_port) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  if (ep.family() == Family::kV6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  // Bursts queue here while the worker is busy; the FORCE variants pass rmem_max when we
  // may (CAP_NET_ADMIN), otherwise the kernel caps the request at rmem_max/wmem_max.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
  }
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(ep, sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

Worker::Worker(WorkerConfig config, turn::ServerConfig server_config, StatsPage& stats)
    : config_(std::move(config)), server_config_(std::move(server_config)), stats_page_(stats) {}

Worker::~Worker() {
  request_stop();
  join();
}

bool Worker::start(std::string& error) {
  std::promise<std::string> ready;
  auto result = ready.get_future();
  thread_ = std::thread([this, &ready] {
    std::string err;
    bool ok = init(err);
    ready.set_value(ok ? std::string() : err);
    if (ok) {
      run();
    }
    // Everything the thread made is torn down on the thread (SINGLE_ISSUER rings).
    sfu_.reset();
    server_.reset();
    connections_.reset();
    for (auto& s : sockets_) {
      if (s.fd >= 0) {
        ::close(s.fd);
      }
    }
    backend_.reset();
  });
  error = result.get();
  if (!error.empty()) {
    thread_.join();
    return false;
  }
  return true;
}

void Worker::request_stop() {
  stop_.store(true, std::memory_order_release);
  if (wakeup_fd_ >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wakeup_fd_, &one, sizeof(one));
  }
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
  if (wakeup_fd_ >= 0) {
    ::close(wakeup_fd_);
    wakeup_fd_ = -1;
  }
}

bool Worker::init(std::string& error) {
  std::string tag = "worker " + std::to_string(config_.index);
  if (config_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(config_.cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      spdlog::warn("{}: cannot pin to CPU {}", tag, config_.cpu);
    }
    if (numa_available() >= 0) {
      numa_node_ = numa_node_of_cpu(config_.cpu);
    }
  }
  config_.backend.numa_node = numa_node_;
  // A socket table larger than the fd limit could never fill, and io_uring refuses to
  // register one.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < config_.backend.max_sockets) {
    config_.backend.max_sockets = static_cast<std::uint32_t>(nofile.rlim_cur);
  }
  if (!config_.reservations) {
    config_.reservations = std::make_shared<ReservationRegistry>();
  }
  std::string why;
  if (config_.io == "uring") {
    backend_ = io::make_uring_backend(config_.backend, why);
    if (!backend_) {
      // Every worker meets the same refusal: say it once per process.
      static std::once_flag once;
      std::call_once(once,
                     [&] { spdlog::warn("io_uring unavailable ({}); falling back to mmsg", why); });
    }
  }
  if (!backend_) {
    backend_ = io::make_mmsg_backend(config_.backend, why);
  }
  if (!backend_) {
    error = tag + ": no io backend: " + why;
    return false;
  }
  backend_name_ = backend_->name();
  backend_detail_ = why;
  wakeup_fd_ =
      config_.doorbell_fd >= 0 ? dup(config_.doorbell_fd) : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  backend_->set_wakeup_fd(wakeup_fd_);
  sockets_.resize(config_.backend.max_sockets);
  server_ = std::make_unique<turn::Server>(server_config_, *this);
  for (const auto& ep : config_.listen) {
    int fd = open_udp(ep, true, config_.listener_buffer);
    if (fd < 0) {
      error = tag + ": cannot bind " + ep.to_string() + ": " + std::strerror(errno);
      return false;
    }
    if (!adopt(fd, Role::kListener)) {
      ::close(fd);
      error = tag + ": cannot register listener " + ep.to_string();
      return false;
    }
  }
  if (!init_streams(error)) {
    return false;
  }
  sfu::EngineConfig sfu_config;
  sfu_config.certificate = config_.certificate;
  if (!sfu_config.certificate) {
    std::string cert_error;
    sfu_config.certificate = crypto::DtlsCertificate::generate(&cert_error);
    if (!sfu_config.certificate) {
      error = tag + ": cannot make a DTLS certificate: " + cert_error;
      return false;
    }
  }
  sfu_ = std::make_unique<sfu::Engine>(sfu_config, *this);
  for (const auto& ep : config_.media) {
    int fd = open_udp(ep, false, config_.listener_buffer);
    if (fd < 0) {
      error = tag + ": cannot bind media port " + ep.to_string() + ": " + std::strerror(errno);
      return false;
    }
    if (!adopt(fd, Role::kMedia)) {
      ::close(fd);
      error = tag + ": cannot register media port " + ep.to_string();
      return false;
    }
  }
  port_cursor_ = config_.relay_port_min;
  stats_.cpu = static_cast<std::uint64_t>(config_.cpu);
  stats_.numa_node = static_cast<std::uint64_t>(numa_node_);
  spdlog::info("{}: cpu {} numa node {} io {} ({}), relay ports {}-{}", tag, config_.cpu,
               numa_node_, backend_name_, backend_detail_, config_.relay_port_min,
               config_.relay_port_max);
  return true;
}

void Worker::run() {
  now_ = read_clock();
  next_timer_ms_ = now_.mono_ms + 1000;
  while (!stop_.load(std::memory_order_acquire)) {
    // Waits at most 100 ms so timers and stats keep their pace on an idle worker.
    backend_->poll(100, *this);
    ++stats_.loop_turns;
    now_ = read_clock();
    tick();
  }
  backend_->flush();
}

void Worker::tick() {
  if (config_.commands && config_.commands->depth() > 0) {
    run_commands();
  }
  if (!doomed_.empty() || now_.mono_ms >= next_stream_timer_ms_) {
    stream_timers();
  }
  if (now_.mono_ms >= next_sfu_timer_ms_) {
    sfu_->on_timer(now_);
    next_sfu_timer_ms_ = now_.mono_ms + 50;
  }
  if (now_.mono_ms >= next_timer_ms_) {
    server_->on_timer(now_);
    config_.reservations->expire(now_.mono_ms);
    log_drops();
    next_timer_ms_ = now_.mono_ms + 1000;
  }
  if (now_.mono_ms >= next_publish_ms_) {
    stats_.heartbeat_ms = now_.mono_ms;
    stats_.turn = server_->counters();
    stats_.sfu = sfu_->counters();
    stats_.io = backend_->stats();
    connections_->publish_framer_counts();
    stats_page_.publish(config_.index, stats_);
    next_publish_ms_ = now_.mono_ms + 100;
  }
}

// Drops are counted per packet and logged at most once a second per worker, as one line
// naming the reasons: bad input never turns into a log line per packet.
void Worker::log_drops() {
  const turn::Counters& now = server_->counters();
  std::string reasons;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < now.drops.size(); ++i) {
    std::uint64_t delta = now.drops[i] - logged_.drops[i];
    if (delta > 0) {
      total += delta;
      reasons += fmt::format("{}{}={}", reasons.empty() ? "" : " ",
                             turn::drop_reason_name(static_cast<turn::Drop>(i)), delta);
    }
  }
  const sfu::Counters& media = sfu_->counters();
  for (std::size_t i = 0; i < media.drops.size(); ++i) {
    std::uint64_t delta = media.drops[i] - sfu_logged_.drops[i];
    if (delta > 0) {
      total += delta;
      reasons += fmt::format("{}sfu_{}={}", reasons.empty() ? "" : " ",
                             sfu::drop_reason_name(static_cast<sfu::Drop>(i)), delta);
    }
  }
  if (total > 0) {
    spdlog::warn("worker {}: dropped {} datagram(s) in the last second: {}", config_.index, total,
                 reasons);
  }
  logged_ = now;
  sfu_logged_ = media;
}

// The backend has already drained the eventfd.
void Worker::on_wakeup() {
  run_commands();
}

void Worker::emit(shm::Event type, Bytes payload) {
  // A full event ring is backpressure the ring counts (full_count); the worker never blocks.
  if (config_.events) {
    config_.events->push(static_cast<std::uint16_t>(type), shm::kMessageVersion, payload);
  }
}

// Commands from the control plane: read on the doorbell and, as a fallback, every loop turn
// (an atomic load when the ring is empty).
void Worker::run_commands() {
  if (!config_.commands) {
    return;
  }
  while (auto m = config_.commands->front()) {
    auto type = static_cast<shm::Command>(m->type);
    std::string error;
    bool policy_part = type == shm::Command::kPolicyBegin || type == shm::Command::kPolicyChunk ||
                       type == shm::Command::kPolicyCommit;
    bool media = m->type >= static_cast<std::uint16_t>(shm::Command::kSessionCreate) &&
                 m->type <= static_cast<std::uint16_t>(shm::Command::kTrackPriority);
    if (m->version == shm::kMessageVersion && media) {
      if (!sfu_->on_command(type, m->payload, now_)) {
        std::uint8_t what[4];
        store_be16(what, m->type);
        store_be16(what + 2, m->version);
        emit(shm::Event::kCommandRefused, what);
      }
    } else if (m->version != shm::kMessageVersion || m->type == shm::kCorruptType || !policy_part) {
      std::uint8_t what[4];
      store_be16(what, m->type);
      store_be16(what + 2, m->version);
      emit(shm::Event::kCommandRefused, what);
      spdlog::warn("worker {}: refused command type {} version {}", config_.index, m->type,
                   m->version);
    } else if (type == shm::Command::kPolicyBegin) {
      if (m->payload.size() != 12 ||
          !policy_assembler_.begin(load_be64(m->payload.data()), load_be32(m->payload.data() + 8),
                                   error)) {
        spdlog::warn("worker {}: bad policy begin: {}", config_.index,
                     error.empty() ? "size" : error);
      }
    } else if (type == shm::Command::kPolicyChunk) {
      if (!policy_assembler_.chunk(m->payload, error)) {
        spdlog::warn("worker {}: bad policy chunk: {}", config_.index, error);
      }
    } else {
      std::uint64_t generation = m->payload.size() == 8 ? load_be64(m->payload.data()) : 0;
      std::uint8_t gen[8];
      store_be64(gen, generation);
      if (auto policy = policy_assembler_.commit(generation, error)) {
        server_->set_policy(std::make_shared<const turn::Policy>(std::move(*policy)));
        emit(shm::Event::kPolicyApplied, gen);
        spdlog::info("worker {}: policy generation {} applied", config_.index, generation);
      } else {
        std::vector<std::uint8_t> reply(gen, gen + 8);
        reply.insert(reply.end(), error.begin(), error.end());
        reply.resize(std::min(reply.size(), shm::kMaxPayload));
        emit(shm::Event::kPolicyRejected, reply);
        spdlog::warn("worker {}: policy generation {} rejected: {}", config_.index, generation,
                     error);
      }
    }
    config_.commands->pop();
  }
}

void Worker::on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt,
                         io::BufferId id) {
  Role role = sockets_[socket.value].role;
  if (role == Role::kMedia) {
    sfu_->on_datagram(socket, from, pkt, id, now_);
    return;
  }
  SendDecision d = role == Role::kListener ? server_->on_client_packet(socket, from, pkt, now_)
                                           : server_->on_peer_packet(socket, from, pkt, now_);
  if (d.send) {
    route(d, pkt, id);
  } else {
    backend_->release(id);
  }
}

void Worker::route(const SendDecision& d, PacketBuffer& pkt, io::BufferId id) {
  // A reply or relayed data for a TCP client goes on its connection (worker_streams.cpp).
  if (sockets_[d.socket.value].role == Role::kStream) {
    send_on_stream(d.socket, pkt, id);
  } else {
    backend_->send(d.socket, d.to, pkt, id);
  }
}

std::optional<io::BufferId> Worker::acquire(PacketBuffer& out) {
  return backend_->acquire(out);
}

void Worker::send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, io::BufferId id) {
  backend_->send(from, to, pkt, id);
}

void Worker::release(io::BufferId id) {
  backend_->release(id);
}

void Worker::event(shm::Event type, std::span<const std::uint8_t> payload) {
  emit(type, payload);
}

std::optional<SocketId> Worker::adopt(int fd, Role role) {
  // Freed ids are reused oldest-first; the backend refuses one still draining, then the
  // next is tried.
  for (std::size_t attempt = 0; attempt < 4; ++attempt) {
    std::uint32_t id;
    if (!free_ids_.empty() && (attempt > 0 || next_id_ >= sockets_.size())) {
      id = free_ids_.front();
      free_ids_.pop_front();
    } else if (next_id_ < sockets_.size()) {
      id = next_id_++;
    } else {
      return std::nullopt;
    }
    bool added = role == Role::kTcpListener || role == Role::kTlsListener
                     ? backend_->add_listener(fd, SocketId{id})
                 : role == Role::kStream ? backend_->add_stream(fd, SocketId{id})
                                         : backend_->add_socket(fd, SocketId{id});
    if (added) {
      sockets_[id] = SocketEntry{fd, role};
      return SocketId{id};
    }
    free_ids_.push_back(id);
  }
  return std::nullopt;
}

bool Worker::supports(Family family) const {
  return family == Family::kV4 ? config_.relay_v4.has_value() : config_.relay_v6.has_value();
}

int Worker::bind_relay_fd(Family family, std::uint16_t port, bool dont_fragment) {
  const auto& bind_ip = family == Family::kV4 ? config_.relay_v4 : config_.relay_v6;
  int fd = open_udp(Endpoint{*bind_ip, port}, false, config_.relay_buffer);
  if (fd >= 0 && dont_fragment) {
    int v = IP_PMTUDISC_DO;
    int one = 1;
    if (family == Family::kV4) {
      setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
    } else {
      setsockopt(fd, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof(one));
    }
  }
  return fd;
}

Endpoint Worker::advertised(Family family, std::uint16_t port) const {
  const auto& bind_ip = family == Family::kV4 ? config_.relay_v4 : config_.relay_v6;
  const auto& external = family == Family::kV4 ? config_.external_v4 : config_.external_v6;
  return Endpoint{external.value_or(*bind_ip), port};
}

std::optional<turn::RelayPorts::Opened> Worker::open(const Request& req) {
  if (!supports(req.family)) {
    return std::nullopt;
  }
  std::uint32_t lo = config_.relay_port_min;
  std::uint32_t hi = config_.relay_port_max;
  std::uint32_t span = hi - lo + 1;
  for (std::uint32_t attempt = 0; attempt < span; ++attempt) {
    std::uint32_t port = port_cursor_;
    port_cursor_ = port_cursor_ >= hi ? lo : port_cursor_ + 1;
    if ((req.even_port && port % 2 != 0) || (req.reserve_next && port + 1 > hi)) {
      continue;
    }
    auto p = static_cast<std::uint16_t>(port);
    int fd = bind_relay_fd(req.family, p, req.dont_fragment);
    if (fd < 0) {
      continue;  // in use: try the next port
    }
    int held = -1;
    if (req.reserve_next) {
      held = bind_relay_fd(req.family, static_cast<std::uint16_t>(p + 1), req.dont_fragment);
      if (held < 0) {
        ::close(fd);
        continue;
      }
    }
    auto id = adopt(fd, Role::kRelay);
    if (!id) {
      ::close(fd);
      if (held >= 0) {
        ::close(held);
      }
      return std::nullopt;
    }
    Opened o{turn::RelaySocket{*id, advertised(req.family, p)}, std::nullopt};
    if (held >= 0) {
      std::uint64_t token = 0;
      crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&token), sizeof(token)));
      config_.reservations->put(
          token,
          ReservationRegistry::Held{held,
                                    advertised(req.family, static_cast<std::uint16_t>(p + 1))},
          now_.mono_ms);
      o.token = token;
      port_cursor_ = port + 2 > hi ? lo : port + 2;
    }
    return o;
  }
  return std::nullopt;
}

std::optional<turn::RelaySocket> Worker::claim(std::uint64_t token) {
  auto held = config_.reservations->take(token, now_.mono_ms);
  if (!held) {
    return std::nullopt;
  }
  auto id = adopt(held->fd, Role::kRelay);
  if (!id) {
    ::close(held->fd);
    return std::nullopt;
  }
  return turn::RelaySocket{*id, held->address};
}

void Worker::close(SocketId id) {
  if (id.value >= sockets_.size() || sockets_[id.value].fd < 0) {
    return;
  }
  backend_->remove_socket(id);
  ::close(sockets_[id.value].fd);
  sockets_[id.value] = SocketEntry{};
  free_ids_.push_back(id.value);
}

}  // namespace ringlane
