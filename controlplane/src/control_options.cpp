#include "ringlane/controlplane/control_options.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>

#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/placement/memory_store.hpp"
#include "ringlane/controlplane/placement/redis_store.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/dataplane/stats.hpp"

namespace ringlane::control {
namespace {

template <typename T>
bool parse_number(const std::string& s, T& out, T min, T max) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) {
    return false;
  }
  out = v;
  return true;
}

}  // namespace

bool parse_control_option(int argc, char** argv, int& i, ControlOptions& o, std::string& error) {
  std::string k = argv[i];
  static const char* const kKnown[] = {"--jwt-secret",
                                       "--node-id",
                                       "--ws-url",
                                       "--redis",
                                       "--redis-prefix",
                                       "--node-ttl-ms",
                                       "--max-rooms",
                                       "--ws-max-frame",
                                       "--ws-max-conns",
                                       "--ws-max-conns-per-ip",
                                       "--ws-joins-per-s",
                                       "--ws-messages-per-s",
                                       "--ws-max-room",
                                       "--ws-idle-timeout-ms",
                                       "--ws-auth-timeout-ms",
                                       "--placement-heartbeat-ms"};
  bool known = false;
  for (const char* name : kKnown) {
    known = known || k == name;
  }
  if (!known) {
    return false;
  }
  if (i + 1 >= argc) {
    error = k + " needs a value";
    return true;
  }
  std::string v = argv[++i];
  auto& s = o.signaling;
  auto number = [&](auto& out, auto min, auto max) {
    using T = std::remove_reference_t<decltype(out)>;
    if (!parse_number<T>(v, out, static_cast<T>(min), static_cast<T>(max))) {
      error = "bad " + k + " " + v;
    }
  };
  auto millis = [&](std::chrono::milliseconds& out, long min, long max) {
    long ms = 0;
    if (!parse_number<long>(v, ms, min, max)) {
      error = "bad " + k + " " + v;
      return;
    }
    out = std::chrono::milliseconds(ms);
  };
  if (k == "--jwt-secret") {
    if (v.size() < 16) {
      error = "--jwt-secret must be at least 16 characters (RFC 7518 §3.2 wants 256 bits)";
    }
    s.jwt_secrets.push_back(v);
  } else if (k == "--node-id") {
    if (v.empty() || v.size() > 64 || v.find('|') != std::string::npos) {
      error = "bad --node-id (1-64 characters, no '|')";
    }
    s.node_id = v;
  } else if (k == "--ws-url") {
    s.ws_url = v;
  } else if (k == "--redis") {
    o.redis_url = v;
  } else if (k == "--redis-prefix") {
    o.redis_prefix = v;
  } else if (k == "--node-ttl-ms") {
    millis(o.node_ttl, 500, 3600000);
  } else if (k == "--max-rooms") {
    number(s.max_rooms, 1u, 10000000u);
  } else if (k == "--ws-max-frame") {
    number(s.max_frame_bytes, std::size_t{256}, std::size_t{1} << 20);
  } else if (k == "--ws-max-conns") {
    number(s.max_connections, 1u, 10000000u);
  } else if (k == "--ws-max-conns-per-ip") {
    number(s.max_connections_per_ip, 1u, 10000000u);
  } else if (k == "--ws-joins-per-s") {
    number(s.joins_per_s_per_ip, 0.1, 1e6);
  } else if (k == "--ws-messages-per-s") {
    number(s.messages_per_s_per_conn, 0.1, 1e6);
  } else if (k == "--ws-max-room") {
    number(s.max_room_participants, 1u, 1000000u);
  } else if (k == "--ws-idle-timeout-ms") {
    millis(s.idle_timeout, 200, 3600000);
  } else if (k == "--ws-auth-timeout-ms") {
    millis(s.auth_timeout, 100, 600000);
  } else if (k == "--placement-heartbeat-ms") {
    millis(s.heartbeat, 100, 600000);
  }
  return true;
}

const char* control_options_help() {
  return "signaling and placement:\n"
         "  --jwt-secret S              HS256 secret for join tokens, repeatable [generated]\n"
         "  --node-id ID                this node in the placement registry [hostname]\n"
         "  --ws-url URL                where clients of rooms placed here connect\n"
         "                              [ws://HTTP-ADDR/ws]\n"
         "  --redis redis://[:pw@]host[:port][/db]\n"
         "                              share nodes and rooms with other control planes\n"
         "                              [embedded in-memory store]\n"
         "  --redis-prefix P            key prefix [ringlane:]\n"
         "  --node-ttl-ms N             registry entry lifetime without heartbeat [6000]\n"
         "  --placement-heartbeat-ms N  registry refresh / room lock renewal period [2000]\n"
         "  --max-rooms N               rooms this node accepts [10000]\n"
         "  --ws-max-frame BYTES        largest signaling message [16384]\n"
         "  --ws-max-conns N            WebSocket connections in total [200000]\n"
         "  --ws-max-conns-per-ip N     WebSocket connections per source address [200]\n"
         "  --ws-joins-per-s N          joins per second per source address, burst 2x [20]\n"
         "  --ws-messages-per-s N       messages per second per connection, burst 2x [50]\n"
         "  --ws-max-room N             participants per room [500]\n"
         "  --ws-idle-timeout-ms N      close a silent connection (ping at half) [30000]\n"
         "  --ws-auth-timeout-ms N      close a connection that sent no token [10000]\n";
}

std::unique_ptr<placement::Store> make_store(const ControlOptions& o, std::string& error) {
  if (o.redis_url.empty()) {
    return std::make_unique<placement::MemoryStore>(o.node_ttl);
  }
  auto config = placement::parse_redis_url(o.redis_url, error);
  if (!config) {
    return nullptr;
  }
  config->prefix = o.redis_prefix;
  config->node_ttl = o.node_ttl;
  config->room_ttl = std::max(std::chrono::milliseconds(5000), 5 * o.signaling.heartbeat);
  return std::make_unique<placement::RedisStore>(std::move(*config));
}

std::function<signaling::NodeLoad()> stats_load_probe(const std::string& stats_name) {
  struct State {
    std::chrono::steady_clock::time_point at{};
    std::uint64_t packets = 0;
    std::uint64_t cpu_ticks = 0;
  };
  auto state = std::make_shared<State>();
  return [stats_name, state] {
    signaling::NodeLoad load;
    StatsSnapshot snap;
    std::string error;
    if (!read_stats(stats_name, snap, error)) {
      return load;
    }
    std::uint64_t packets = 0;
    for (const auto& w : snap.workers) {
      load.allocations += w.turn.allocations;
      packets += w.turn.client_packets_in + w.turn.peer_packets_in;
    }
    // utime + stime of the data plane (fields 14 and 15 of /proc/PID/stat).
    std::uint64_t ticks = 0;
    std::ifstream stat("/proc/" + std::to_string(snap.pid) + "/stat");
    std::string line;
    if (std::getline(stat, line)) {
      auto close = line.rfind(')');
      std::size_t field = 2;
      std::size_t pos = close == std::string::npos ? line.size() : close + 1;
      while (pos < line.size() && field < 15) {
        pos = line.find(' ', pos + 1);
        if (pos == std::string::npos) {
          break;
        }
        ++field;
        if (field == 14 || field == 15) {
          ticks += std::strtoull(line.c_str() + pos + 1, nullptr, 10);
        }
      }
    }
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - state->at).count();
    if (state->at != std::chrono::steady_clock::time_point{} && dt > 0) {
      load.packets_per_s = static_cast<std::uint64_t>(
          static_cast<double>(packets - std::min(packets, state->packets)) / dt);
      double cpu_s = static_cast<double>(ticks - std::min(ticks, state->cpu_ticks)) /
                     static_cast<double>(sysconf(_SC_CLK_TCK));
      load.cpu = cpu_s / dt / static_cast<double>(std::max<std::size_t>(1, snap.workers.size()));
    }
    state->at = now;
    state->packets = packets;
    state->cpu_ticks = ticks;
    return load;
  };
}

void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace ringlane::control

namespace ringlane::control {

std::unique_ptr<signaling::SignalingServer> start_signaling(boost::asio::io_context& io,
                                                            ControlOptions& o,
                                                            const std::string& http_address,
                                                            const std::string& stats_name,
                                                            std::string& error) {
  auto& s = o.signaling;
  if (s.node_id.empty() || s.node_id == "local") {
    char host[256] = {};
    s.node_id = gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0' ? host : "local";
  }
  if (s.ws_url.empty()) {
    s.ws_url = "ws://" + http_address + "/ws";
  }
  if (s.jwt_secrets.empty()) {
    s.jwt_secrets.push_back(crypto::random_token(32));
    spdlog::warn("no --jwt-secret given: generated '{}' for signaling join tokens",
                 s.jwt_secrets.back());
  }
  if (!s.load) {
    s.load = stats_load_probe(stats_name);
  }
  auto store = make_store(o, error);
  if (!store) {
    return nullptr;
  }
  spdlog::info("signaling: node '{}' at {}, placement store {}", s.node_id, s.ws_url,
               o.redis_url.empty() ? std::string("in memory") : o.redis_url);
  return std::make_unique<signaling::SignalingServer>(io, s, std::move(store));
}

}  // namespace ringlane::control
