// The data plane process (`ringlane dataplane`) and the stats reader (`ringlane stats`).
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/common/host_address.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/tls.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"
#include "ringlane/dataplane/worker.hpp"
#include "ringlane/node/dataplane_main.hpp"
#include "ringlane/node/handover.hpp"
#include "ringlane/node/options.hpp"
#include "ringlane/shm/region.hpp"
#include "ringlane/shm/stats.hpp"

namespace ringlane {
namespace {

bool is_any(const IpAddress& ip) {
  return ip == IpAddress{ip.family, {}};
}

}  // namespace

int run_dataplane(int argc, char** argv) {
  std::string error;
  // Handed over by a supervising control plane: the shared region and one doorbell per worker.
  Handover handover;
  std::vector<std::string> others =
      take_handover(std::vector<std::string>(argv, argv + argc), handover);
  std::vector<char*> rest;
  for (auto& a : others) {
    rest.push_back(a.data());
  }
  int region_fd = handover.region_fd;
  const std::vector<int>& doorbells = handover.doorbells;
  auto parsed = parse_node_options(static_cast<int>(rest.size()), rest.data(), error);
  if (!parsed) {
    if (error == "help") {
      std::fputs(node_options_help(), stdout);
      return 0;
    }
    std::fprintf(stderr, "ringlane dataplane: %s\n", error.c_str());
    return 2;
  }
  NodeOptions o = std::move(*parsed);
  init_logging(o.log_level, o.log_json);
  // Every allocation holds a socket: take all the file descriptors the hard limit allows.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  o.relay_v4 = relay_for(Family::kV4, o.relay_v4, o.listen);
  o.relay_v6 = relay_for(Family::kV6, o.relay_v6, o.listen);
  add_dev_secret_if_unconfigured(o);
  unsigned cpus = std::thread::hardware_concurrency();
  unsigned workers = worker_count(o);
  std::unique_ptr<shm::Region> region;
  if (region_fd >= 0) {
    region = shm::Region::attach(region_fd, error);
    if (!region || region->workers() != workers || doorbells.size() != workers) {
      spdlog::error("cannot use the region handed over: {}",
                    region ? "worker count mismatch" : error);
      return 1;
    }
  }

  auto policy = std::make_shared<const turn::Policy>(o.policy);
  turn::ServerConfig server_config;
  server_config.policy = policy;
  server_config.quota = std::make_shared<turn::UserQuota>();
  crypto::random_bytes(server_config.nonce_secret);
  if (o.media_port != 0) {
    // The relay may reach this node's own SFU media ports (and nothing else at those IPs).
    for (const auto& ip : o.media_ips) {
      if (is_any(ip)) {
        auto all = host_addresses(ip.family);
        server_config.own_media_ips.insert(server_config.own_media_ips.end(), all.begin(),
                                           all.end());
      } else {
        server_config.own_media_ips.push_back(ip);
      }
    }
    server_config.own_media_port_min = o.media_port;
    server_config.own_media_port_max =
        static_cast<std::uint16_t>(o.media_port + worker_count(o) - 1);
  }

  // SO_REUSEPORT would let a second node join our listeners and silently take part of the
  // traffic; a lock per listener makes the second one refuse to start instead.
  std::vector<int> locks;
  for (const auto& ep : o.listen) {
    std::string path =
        "/dev/shm/ringlane-listen-" + ep.ip.to_string() + "-" + std::to_string(ep.port) + ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
      spdlog::error("another ringlane already listens on {} (lock {})", ep.to_string(), path);
      return 1;
    }
    locks.push_back(fd);
  }
  for (const auto& ep : o.listen_tcp) {
    std::string path = "/dev/shm/ringlane-listen-tcp-" + ep.ip.to_string() + "-" +
                       std::to_string(ep.port) + ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
      spdlog::error("another ringlane already listens on TCP {} (lock {})", ep.to_string(), path);
      return 1;
    }
    locks.push_back(fd);
  }
  // TURN over TLS: the certificate is loaded once for the process and shared by the workers;
  // SIGHUP reloads it (below). Without one the TLS listeners stay off.
  std::shared_ptr<crypto::TlsServerContext> tls;
  if (!o.tls_cert.empty()) {
    std::string tls_error;
    tls = crypto::TlsServerContext::load(o.tls_cert, o.tls_key, tls_error);
    if (!tls) {
      spdlog::error("{}", tls_error);
      return 1;
    }
  } else if (o.listen_tls_given && !o.listen_tls.empty()) {
    spdlog::error("--listen-tls needs a certificate (--tls-cert FILE --tls-key FILE)");
    return 2;
  }
  for (const auto& ep : tls ? o.listen_tls : std::vector<Endpoint>{}) {
    std::string path = "/dev/shm/ringlane-listen-tls-" + ep.ip.to_string() + "-" +
                       std::to_string(ep.port) + ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
      spdlog::error("another ringlane already listens on TLS {} (lock {})", ep.to_string(), path);
      return 1;
    }
    locks.push_back(fd);
  }
  // One DTLS certificate for the process: the control plane reads its fingerprint from the
  // stats page; the key stays here.
  std::string cert_error;
  auto certificate = crypto::DtlsCertificate::generate(&cert_error);
  if (!certificate) {
    spdlog::error("cannot make the DTLS certificate: {}", cert_error);
    return 1;
  }
  if (o.media_port != 0 && o.media_port + workers - 1 > 65535) {
    spdlog::error("media ports {}+{} run past 65535", o.media_port, workers);
    return 2;
  }
  StatsPage stats(o.name, workers, o.io.c_str(), o.media_port, certificate->fingerprint());
  if (!stats.ok()) {
    spdlog::error("cannot create the stats page {}", stats_path(o.name));
    return 1;
  }
  // After the page is up (the control plane takes joins from then on; their commands wait in
  // the rings) and before the workers start, so no session pays libsrtp's and OpenSSL's
  // one-time costs (~50 ms) and none sees the data plane missing for them.
  if (!crypto::DtlsEndpoint::warm_up(certificate)) {
    spdlog::error(
        "a DTLS-SRTP handshake with our own certificate failed: OpenSSL or libsrtp2 "
        "is unusable");
    return 1;
  }
  // Block the stop signals before threads start so only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // reloads the TLS certificate
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::uint32_t range = o.relay_port_max - o.relay_port_min + 1u;
  if (range < workers * 2) {
    spdlog::error("relay port range {}-{} is too small for {} workers", o.relay_port_min,
                  o.relay_port_max, workers);
    return 2;
  }
  auto reservations = std::make_shared<ReservationRegistry>();
  auto tcp_per_ip = std::make_shared<turn::ConnectionsPerIp>();
  turn::ConnectionLimits tcp_limits;
  tcp_limits.max_connections = o.tcp_max_connections;
  tcp_limits.max_per_ip = o.tcp_max_per_ip;
  tcp_limits.accept_rate = o.tcp_accept_rate;
  tcp_limits.handshake_timeout_ms = o.tcp_handshake_timeout_ms;
  tcp_limits.idle_timeout_ms = o.tcp_idle_timeout_ms;
  tcp_limits.send_cap_bytes = o.tcp_send_cap;
  std::vector<std::unique_ptr<Worker>> pool;
  for (unsigned i = 0; i < workers; ++i) {
    WorkerConfig wc;
    wc.index = i;
    wc.cpu = !o.cpus.empty() ? o.cpus[i % o.cpus.size()] : static_cast<int>(i % std::max(1u, cpus));
    wc.io = o.io;
    wc.listen = o.listen;
    wc.listen_tcp = o.listen_tcp;
    wc.listen_tcp_optional = !o.listen_tcp_given;
    wc.listen_tls = o.listen_tls;
    wc.listen_tls_optional = !o.listen_tls_given;
    wc.tls = tls;
    wc.tcp_limits = tcp_limits;
    wc.tcp_per_ip = tcp_per_ip;
    wc.certificate = certificate;
    if (o.media_port != 0) {
      for (const auto& ip : o.media_ips) {
        wc.media.push_back(Endpoint{ip, static_cast<std::uint16_t>(o.media_port + i)});
      }
    }
    wc.relay_v4 = o.relay_v4;
    wc.relay_v6 = o.relay_v6;
    wc.external_v4 = o.external_v4;
    wc.external_v6 = o.external_v6;
    // Each worker gets its own slice of the relay range so their binds never collide.
    std::uint32_t slice = range / workers;
    wc.relay_port_min = static_cast<std::uint16_t>(o.relay_port_min + i * slice);
    wc.relay_port_max = static_cast<std::uint16_t>(
        i + 1 == workers ? o.relay_port_max : o.relay_port_min + (i + 1) * slice - 1);
    wc.backend.buffers = o.buffers;
    wc.backend.gso = o.gso;
    wc.backend.zerocopy = o.zerocopy;
    wc.listener_buffer = o.listener_buffer;
    wc.relay_buffer = o.relay_buffer;
    wc.reservations = reservations;
    if (region) {
      wc.commands = region->commands(i);
      wc.events = region->events(i);
      wc.doorbell_fd = doorbells[i];
    }
    auto w = std::make_unique<Worker>(wc, server_config, stats);
    if (!w->start(error)) {
      spdlog::error("{}", error);
      return 1;
    }
    pool.push_back(std::move(w));
  }
  std::string listen_list;
  for (const auto& ep : o.listen) {
    listen_list += (listen_list.empty() ? "" : ", ") + ep.to_string();
  }
  std::string tcp_list;
  for (const auto& ep : pool[0]->tcp_listeners()) {
    tcp_list += (tcp_list.empty() ? "" : ", ") + ep.to_string();
  }
  std::string tls_list;
  for (const auto& ep : pool[0]->tls_listeners()) {
    tls_list += (tls_list.empty() ? "" : ", ") + ep.to_string();
  }
  spdlog::info(
      "ringlane up: TURN/STUN on {} | TCP {} | TLS {} | relay {} {} | SFU media ports {} | {} "
      "worker(s), io {} | stats {}",
      listen_list, tcp_list.empty() ? std::string("off") : tcp_list,
      tls_list.empty() ? std::string("off") : tls_list, o.relay_v4 ? o.relay_v4->to_string() : "-",
      o.relay_v6 ? o.relay_v6->to_string() : "-",
      o.media_port == 0 ? std::string("off")
                        : fmt::format("{}-{}", o.media_port, o.media_port + workers - 1),
      workers, pool[0]->backend_name(), stats.path());
  if (tls) {
    spdlog::info("TLS certificate {} (sha-256 {})", tls->cert_file(), tls->fingerprint());
  }
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    // New connections get the new certificate; open ones keep the SSL_CTX they were made with.
    std::string reload_error;
    if (!tls) {
      spdlog::info("SIGHUP: no TLS certificate to reload");
    } else if (tls->reload(reload_error)) {
      spdlog::info("SIGHUP: TLS certificate reloaded (sha-256 {})", tls->fingerprint());
    } else {
      spdlog::error("SIGHUP: {}; keeping the certificate loaded before", reload_error);
    }
  }
  spdlog::info("signal {}: stopping", sig);
  for (auto& w : pool) {
    w->request_stop();
  }
  for (auto& w : pool) {
    w->join();
  }
  return 0;
}

int print_stats(int argc, char** argv) {
  std::string name = "default";
  bool prometheus = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--name" && i + 1 < argc) {
      name = argv[++i];
    } else if (a == "--prometheus") {
      prometheus = true;
    } else {
      std::fprintf(stderr, "usage: ringlane stats [--name NAME] [--prometheus]\n");
      return 2;
    }
  }
  StatsSnapshot snap;
  std::string error;
  if (!read_stats(name, snap, error)) {
    std::fprintf(stderr, "ringlane stats: %s\n", error.c_str());
    return 1;
  }
  if (prometheus) {
    for (std::size_t w = 0; w < snap.workers.size(); ++w) {
      for_each_stat(snap.workers[w], [&](const std::string& key, std::uint64_t v) {
        std::printf("ringlane_%s{worker=\"%zu\"} %llu\n", key.c_str(), w,
                    static_cast<unsigned long long>(v));
      });
    }
    return 0;
  }
  std::printf("{\"pid\":%llu,\"backend\":\"%s\",\"workers\":[",
              static_cast<unsigned long long>(snap.pid), snap.backend.c_str());
  for (std::size_t w = 0; w < snap.workers.size(); ++w) {
    std::printf("%s{", w == 0 ? "" : ",");
    bool first = true;
    for_each_stat(snap.workers[w], [&](const std::string& key, std::uint64_t v) {
      std::printf("%s\"%s\":%llu", first ? "" : ",", key.c_str(),
                  static_cast<unsigned long long>(v));
      first = false;
    });
    std::printf("}");
  }
  std::printf("]}\n");
  return 0;
}

}  // namespace ringlane
