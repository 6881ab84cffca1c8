#include "ringlane/controlplane/control_options.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>

#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/placement/memory_store.hpp"
#include "ringlane/controlplane/placement/redis_store.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/shm/stats.hpp"

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
  auto& s = o.signaling;
  // Each option once: its name and what its value sets (an error message if it is bad).
  using Setter = std::function<std::string(const std::string&)>;
  auto number = [](auto& out, auto min, auto max) -> Setter {
    return [&out, min, max](const std::string& v) {
      using T = std::remove_reference_t<decltype(out)>;
      return parse_number<T>(v, out, static_cast<T>(min), static_cast<T>(max))
                 ? std::string()
                 : "'" + v + "' is not a number in range";
    };
  };
  auto millis = [](std::chrono::milliseconds& out, long min, long max) -> Setter {
    return [&out, min, max](const std::string& v) {
      long ms = 0;
      if (!parse_number<long>(v, ms, min, max)) {
        return "'" + v + "' is not a number of milliseconds in range";
      }
      out = std::chrono::milliseconds(ms);
      return std::string();
    };
  };
  auto text = [](std::string& out) -> Setter {
    return [&out](const std::string& v) {
      out = v;
      return std::string();
    };
  };
  const std::pair<const char*, Setter> options[] = {
      {"--jwt-secret",
       [&s](const std::string& v) {
         s.jwt_secrets.push_back(v);
         return v.size() < 16 ? std::string(
                                    "must be at least 16 characters (RFC 7518 §3.2 "
                                    "wants 256 bits)")
                              : std::string();
       }},
      {"--node-id",
       [&s](const std::string& v) {
         s.node_id = v;
         return v.empty() || v.size() > 64 || v.find('|') != std::string::npos
                    ? std::string("1-64 characters, no '|'")
                    : std::string();
       }},
      {"--ws-url", text(s.ws_url)},
      {"--redis", text(o.redis_url)},
      {"--redis-prefix", text(o.redis_prefix)},
      {"--node-ttl-ms", millis(o.node_ttl, 500, 3600000)},
      {"--max-rooms", number(s.max_rooms, 1u, 10000000u)},
      {"--ws-max-frame", number(s.max_frame_bytes, std::size_t{256}, std::size_t{1} << 20)},
      {"--ws-max-conns", number(s.max_connections, 1u, 10000000u)},
      {"--ws-max-conns-per-ip", number(s.max_connections_per_ip, 1u, 10000000u)},
      {"--ws-joins-per-s", number(s.joins_per_s_per_ip, 0.1, 1e6)},
      {"--ws-messages-per-s", number(s.messages_per_s_per_conn, 0.1, 1e6)},
      {"--ws-max-room", number(s.max_room_participants, 1u, 1000000u)},
      {"--ws-idle-timeout-ms", millis(s.idle_timeout, 200, 3600000)},
      {"--ws-auth-timeout-ms", millis(s.auth_timeout, 100, 600000)},
      {"--placement-heartbeat-ms", millis(s.heartbeat, 100, 600000)},
      {"--http-tls",
       [&o](const std::string& v) {
         o.http_tls = v;
         return Endpoint::parse(v) ? std::string() : std::string("not an ADDR:PORT");
       }},
      {"--trusted-proxy",
       [&o](const std::string& v) {
         auto cidr = Cidr::parse(v);
         if (cidr) {
           o.trusted_proxies.push_back(*cidr);
         }
         return cidr ? std::string() : "'" + v + "' is not an address or CIDR";
       }},
  };
  for (const auto& [name, set] : options) {
    if (k != name) {
      continue;
    }
    if (i + 1 >= argc) {
      error = k + " needs a value";
    } else if (std::string why = set(argv[++i]); !why.empty()) {
      error = "bad " + k + ": " + why;  // no value echoed: it may be a secret
    }
    return true;
  }
  return false;
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
         "  --ws-max-frame BYTES        largest signaling message [65536]\n"
         "  --ws-max-conns N            WebSocket connections in total [200000]\n"
         "  --ws-max-conns-per-ip N     WebSocket connections per source address [200]\n"
         "  --ws-joins-per-s N          joins per second per source address, burst 2x [20]\n"
         "  --ws-messages-per-s N       messages per second per connection, burst 2x [50]\n"
         "  --ws-max-room N             participants per room [500]\n"
         "  --ws-idle-timeout-ms N      close a silent connection (ping at half) [30000]\n"
         "  --ws-auth-timeout-ms N      close a connection that sent no token [10000]\n"
         "HTTPS:\n"
         "  --http-tls ADDR:PORT        the same routes over TLS: demo page, /api/*, WHIP/WHEP,\n"
         "                              /ws as wss:// (certificate: --tls-cert/--tls-key,\n"
         "                              reloaded on SIGHUP) [off]\n"
         "  --trusted-proxy CIDR        believe X-Forwarded-For/-Proto from these peers (a\n"
         "                              TLS-terminating proxy), repeatable [none]\n";
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

namespace ringlane::control {

namespace {

boost::asio::ip::tcp::endpoint tcp_endpoint(const Endpoint& at) {
  return {boost::asio::ip::make_address(at.ip.to_string()), at.port};
}

// A Host header fit to go into a URL: a name or address and an optional port.
bool plain_host(std::string_view host) {
  return !host.empty() && host.size() <= 255 &&
         host.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
             std::string_view::npos;
}

}  // namespace

std::unique_ptr<ApiServer> ApiServer::start(boost::asio::io_context& io, const Endpoint& at,
                                            ApiConfig api, ControlOptions& options,
                                            std::function<std::string()> more_metrics,
                                            std::string& error) {
  std::unique_ptr<ApiServer> s(new ApiServer());
  ApiServer* self = s.get();
  auto handler = [self](bool tls_port) -> Handler {
    return [self, tls_port](const Request& r, const boost::asio::ip::address& peer) {
      return self->secure_ws_url(r, self->api_->handle(r, peer), tls_port);
    };
  };
  UpgradeHandler upgrade = [self](HttpStream stream, Request req,
                                  const boost::asio::ip::address& peer) {
    self->signaling_->upgrade(std::move(stream), std::move(req), peer);
  };
  DeferHandler defer = [self](const Request& r, const boost::asio::ip::address& peer,
                              const Respond& respond) {
    return self->whip_ && self->whip_->take(r, peer, respond);
  };
  HttpServer::Options plain;
  plain.trusted_proxies = options.trusted_proxies;
  s->http_ = std::make_unique<HttpServer>(io, tcp_endpoint(at), handler(false), upgrade, defer,
                                          std::move(plain));
  s->address_ = Endpoint{at.ip, s->http_->port()}.to_string();
  if (!options.http_tls.empty()) {
    auto tls_at = Endpoint::parse(options.http_tls);
    if (!tls_at) {
      error = "bad --http-tls " + options.http_tls;
      return nullptr;
    }
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      error = "--http-tls needs a certificate: --tls-cert FILE --tls-key FILE";
      return nullptr;
    }
    HttpServer::Options tls;
    tls.trusted_proxies = options.trusted_proxies;
    tls.tls = make_tls_context(options.tls_cert, options.tls_key, error);
    if (!tls.tls) {
      error = "HTTPS: " + error;
      return nullptr;
    }
    std::string fingerprint = tls_fingerprint(*tls.tls);
    try {
      s->https_ = std::make_unique<HttpServer>(io, tcp_endpoint(*tls_at), handler(true), upgrade,
                                               defer, std::move(tls));
    } catch (const boost::system::system_error& e) {
      error = "cannot listen for HTTPS on " + options.http_tls + ": " + e.what();
      return nullptr;
    }
    s->tls_address_ = Endpoint{tls_at->ip, s->https_->port()}.to_string();
    s->tls_cert_ = options.tls_cert;
    s->tls_key_ = options.tls_key;
    spdlog::info("HTTPS and WSS on {} (certificate {}, SHA-256 {})", s->tls_address_,
                 options.tls_cert, fingerprint);
  }
  s->ws_url_given_ = !options.signaling.ws_url.empty();
  s->signaling_ = start_signaling(io, options, s->address_, api.stats_name, error);
  if (!s->signaling_) {
    return nullptr;
  }
  api.join_token_secret = options.signaling.jwt_secrets.front();
  api.ws_url = options.signaling.ws_url;
  api.extra_metrics = [self, more = std::move(more_metrics)] {
    return self->signaling_->metrics() + self->tls_metrics() + (more ? more() : std::string());
  };
  s->api_ = std::make_unique<Api>(std::move(api));
  s->whip_ = std::make_unique<media::WhipEndpoint>(*s->signaling_, *s->api_);
  return s;
}

std::string ApiServer::tls_metrics() const {
  if (!https_) {
    return {};
  }
  const auto& c = https_->tls_counters();
  const std::pair<const char*, std::uint64_t> counters[] = {
      {"ringlane_https_handshakes_total", c.handshakes},
      {"ringlane_https_handshake_failures_total", c.handshake_failures},
      {"ringlane_https_plain_requests_total", c.plain_requests},
      {"ringlane_wss_upgrades_total", c.wss_upgrades},
  };
  std::string out;
  for (const auto& [name, value] : counters) {
    out += std::string("# TYPE ") + name + " counter\n" + name + " " + std::to_string(value) + "\n";
  }
  return out;
}

void ApiServer::reload_tls() {
  if (!https_) {
    return;
  }
  std::string error;
  auto context = make_tls_context(tls_cert_, tls_key_, error);
  if (!context) {
    spdlog::error("HTTPS: certificate not reloaded, the one in use stays: {}", error);
    return;
  }
  std::string fingerprint = tls_fingerprint(*context);
  https_->set_tls_context(std::move(context));
  spdlog::info(
      "HTTPS: certificate reloaded from {} (SHA-256 {}) for new connections; open ones keep "
      "theirs",
      tls_cert_, fingerprint);
}

Response ApiServer::secure_ws_url(const Request& req, Response r, bool tls_port) const {
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  if (ws_url_given_ || r.result() != boost::beast::http::status::ok ||
      req["X-Forwarded-Proto"] != "https" ||
      (path != "/api/join-token" && path != "/api/dev-token")) {
    return r;
  }
  // Our own TLS port, else the host the browser asked the proxy for.
  std::string_view host = req[boost::beast::http::field::host];
  std::string wss = tls_port           ? "wss://" + tls_address_ + "/ws"
                    : plain_host(host) ? "wss://" + std::string(host) + "/ws"
                                       : std::string();
  boost::system::error_code ec;
  auto body = boost::json::parse(r.body(), ec);
  if (wss.empty() || ec || !body.is_object() || !body.as_object().contains("ws_url")) {
    return r;
  }
  body.as_object()["ws_url"] = wss;
  r.body() = boost::json::serialize(body);
  return r;
}

}  // namespace ringlane::control
