#include "ringlane/node/options.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string_view>
#include <thread>

#include "ringlane/common/host_address.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/turn/rest_credentials.hpp"

namespace ringlane {
namespace {

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && end == s.data() + s.size();
}

}  // namespace

const char* node_options_help() {
  return R"(ringlane run [options]       (every option has a default; no config file needed)
  --name NAME               instance name (stats page /dev/shm/ringlane-NAME.stats) [default]
  --listen ADDR:PORT        TURN/STUN UDP listener, repeatable [0.0.0.0:3478 and [::]:3478]
  --listen-tcp ADDR:PORT|off  TURN over TCP listener, repeatable [the --listen addresses]
  --listen-tls ADDR:PORT|off  TURN over TLS (turns:) listener, repeatable [port 5349 on the
                            --listen addresses that use 3478; on when there is a certificate]
  --tls-cert FILE           PEM certificate (chain) for TURN over TLS and HTTPS; reloaded on
                            SIGHUP [ringlane run: a self-signed one, made once and kept]
  --tls-key FILE            PEM private key of --tls-cert
  --tcp-max-connections N   TCP (and TLS) connections per worker [4096]
  --tcp-max-per-ip N        TCP connections per source IP, 0 = unlimited [64]
  --tcp-accept-rate N       new TCP/TLS connections per source IP per second, bursts of 2N;
                            0 = unlimited [50]
  --tcp-handshake-timeout MS  first STUN message due, and longest wait inside a frame [10000]
  --tcp-idle-timeout MS     close a TCP connection without an allocation idle this long [60000]
  --tcp-send-cap BYTES      bytes queued to a TCP client that does not read before it is
                            disconnected [262144]
  --relay-ip IP             relay bind address, one per family [the listener's, else the host's]
  --external-ip IP          relay address to advertise (behind 1:1 NAT), one per family
  --relay-ports MIN-MAX     relay port range, split between workers [40000-65535]
  --media-port BASE         SFU media UDP port of worker 0; worker i uses BASE+i; 0 = no SFU [7882]
  --media-ip IP             SFU media bind address, one per family, repeatable [0.0.0.0 and ::]
  --workers N               worker threads, one per core [number of CPUs]
  --cpus LIST               CPUs to pin workers to, e.g. 0,1 [0..N-1]
  --io uring|mmsg           packet I/O backend; uring falls back to mmsg if unavailable [uring]
  --buffers N               packet buffers per worker, a power of two [4096]
  --gso on|off              UDP GSO for runs of equal-size datagrams to one peer [on]
  --zerocopy on|off         uring: IORING_OP_SENDMSG_ZC for sends [off]
  --socket-buffer BYTES     listener socket buffers; relay sockets get 1/8 [4194304]
  --realm REALM             long-term credential realm [ringlane]
  --user NAME:PASSWORD      static long-term user, repeatable
  --rest-secret SECRET      TURN REST shared secret (coturn use-auth-secret), repeatable
  --allow-peer CIDR         admit peers the default deny list refuses, repeatable
  --deny-peer CIDR          refuse more peers, repeatable
  --user-quota N            allocations per user, 0 = unlimited [10]
  --bandwidth BYTES_PER_S   per-allocation relay cap, 0 = none [0]
  --max-allocations N       per worker [65536]
  --default-lifetime S      [600]   --max-lifetime S [3600]   --nonce-lifetime S [600]
  --unauth-rate N           401/438 replies per source IP per second [20]
  --strict-channels         accept only RFC 8656 channel numbers 0x4000-0x4FFF
                            [RFC 5766's 0x4000-0x7FFE, as coturn's clients use]
  --software TEXT           SOFTWARE attribute, empty to omit [ringlane]
  --log-level LEVEL         trace|debug|info|warn|error [info]
  --log-json                one JSON object per log line
)";
}

unsigned worker_count(const NodeOptions& o) {
  if (o.workers != 0)
    return o.workers;
  if (!o.cpus.empty())
    return static_cast<unsigned>(o.cpus.size());
  return std::max(1u, std::thread::hardware_concurrency());
}

std::optional<NodeOptions> parse_node_options(int argc, char** argv, std::string& error) {
  NodeOptions o;
  for (int i = 0; i < argc; ++i) {
    std::string_view flag = argv[i];
    auto value = [&](std::string_view& out) {
      if (i + 1 >= argc) {
        error = std::string(flag) + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    auto bad = [&](std::string_view v) {
      error = "bad value for " + std::string(flag) + ": '" + std::string(v) + "'";
      return std::nullopt;
    };
    std::string_view v;
    if (flag == "--log-json") {
      o.log_json = true;
      continue;
    }
    if (flag == "--strict-channels") {
      o.policy.strict_channel_numbers = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") {
      error = "help";
      return std::nullopt;
    }
    if (!value(v)) {
      return std::nullopt;
    }
    if (flag == "--name") {
      o.name = v;
    } else if (flag == "--listen") {
      auto ep = Endpoint::parse(v);
      if (!ep)
        return bad(v);
      o.listen.push_back(*ep);
    } else if (flag == "--listen-tcp") {
      o.listen_tcp_given = true;
      if (v == "off") {
        o.listen_tcp.clear();
        continue;
      }
      auto ep = Endpoint::parse(v);
      if (!ep)
        return bad(v);
      o.listen_tcp.push_back(*ep);
    } else if (flag == "--listen-tls") {
      o.listen_tls_given = true;
      if (v == "off") {
        o.listen_tls.clear();
        continue;
      }
      auto ep = Endpoint::parse(v);
      if (!ep)
        return bad(v);
      o.listen_tls.push_back(*ep);
    } else if (flag == "--tls-cert") {
      if (v.empty())
        return bad(v);
      o.tls_cert = v;
    } else if (flag == "--tls-key") {
      if (v.empty())
        return bad(v);
      o.tls_key = v;
    } else if (flag == "--tcp-max-connections") {
      if (!parse_number(v, o.tcp_max_connections) || o.tcp_max_connections == 0)
        return bad(v);
    } else if (flag == "--tcp-max-per-ip") {
      if (!parse_number(v, o.tcp_max_per_ip))
        return bad(v);
    } else if (flag == "--tcp-accept-rate") {
      if (!parse_number(v, o.tcp_accept_rate))
        return bad(v);
    } else if (flag == "--tcp-handshake-timeout") {
      if (!parse_number(v, o.tcp_handshake_timeout_ms) || o.tcp_handshake_timeout_ms == 0)
        return bad(v);
    } else if (flag == "--tcp-idle-timeout") {
      if (!parse_number(v, o.tcp_idle_timeout_ms) || o.tcp_idle_timeout_ms == 0)
        return bad(v);
    } else if (flag == "--tcp-send-cap") {
      if (!parse_number(v, o.tcp_send_cap) || o.tcp_send_cap < 4096)
        return bad(v);
    } else if (flag == "--relay-ip" || flag == "--external-ip") {
      auto ip = IpAddress::parse(v);
      if (!ip)
        return bad(v);
      bool relay = flag == "--relay-ip";
      auto& slot = ip->family == Family::kV4 ? (relay ? o.relay_v4 : o.external_v4)
                                             : (relay ? o.relay_v6 : o.external_v6);
      slot = *ip;
    } else if (flag == "--relay-ports") {
      auto dash = v.find('-');
      unsigned lo = 0;
      unsigned hi = 0;
      if (dash == std::string_view::npos || !parse_number(v.substr(0, dash), lo) ||
          !parse_number(v.substr(dash + 1), hi) || lo == 0 || hi > 65535 || lo > hi) {
        return bad(v);
      }
      o.relay_port_min = static_cast<std::uint16_t>(lo);
      o.relay_port_max = static_cast<std::uint16_t>(hi);
    } else if (flag == "--workers") {
      if (!parse_number(v, o.workers) || o.workers == 0 || o.workers > 256)
        return bad(v);
    } else if (flag == "--cpus") {
      std::string_view rest = v;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        int cpu = 0;
        if (!parse_number(rest.substr(0, comma), cpu) || cpu < 0)
          return bad(v);
        o.cpus.push_back(cpu);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (flag == "--media-port") {
      if (!parse_number(v, o.media_port))
        return bad(v);
    } else if (flag == "--media-ip") {
      auto ip = IpAddress::parse(v);
      if (!ip)
        return bad(v);
      o.media_ips.push_back(*ip);
    } else if (flag == "--io") {
      if (v != "uring" && v != "mmsg")
        return bad(v);
      o.io = v;
    } else if (flag == "--buffers") {
      if (!parse_number(v, o.buffers) || o.buffers < 64 || o.buffers > 32768 ||
          (o.buffers & (o.buffers - 1)) != 0) {
        return bad(v);
      }
    } else if (flag == "--gso") {
      if (v != "on" && v != "off")
        return bad(v);
      o.gso = v == "on";
    } else if (flag == "--zerocopy") {
      if (v != "on" && v != "off")
        return bad(v);
      o.zerocopy = v == "on";
    } else if (flag == "--socket-buffer") {
      if (!parse_number(v, o.listener_buffer) || o.listener_buffer < 65536)
        return bad(v);
      o.relay_buffer = std::max(65536, o.listener_buffer / 8);
    } else if (flag == "--realm") {
      o.policy.realm = v;
    } else if (flag == "--user") {
      auto colon = v.find(':');
      if (colon == std::string_view::npos || colon == 0)
        return bad(v);
      o.users.emplace_back(std::string(v.substr(0, colon)), std::string(v.substr(colon + 1)));
    } else if (flag == "--rest-secret") {
      if (v.empty())
        return bad(v);
      o.policy.rest_secrets.emplace_back(v);
    } else if (flag == "--allow-peer" || flag == "--deny-peer") {
      auto c = Cidr::parse(v);
      if (!c)
        return bad(v);
      (flag == "--allow-peer" ? o.policy.allow_peers : o.policy.deny_peers).push_back(*c);
    } else if (flag == "--user-quota") {
      if (!parse_number(v, o.policy.user_quota))
        return bad(v);
    } else if (flag == "--bandwidth") {
      if (!parse_number(v, o.policy.allocation_bandwidth_bps))
        return bad(v);
    } else if (flag == "--max-allocations") {
      if (!parse_number(v, o.policy.max_allocations))
        return bad(v);
    } else if (flag == "--default-lifetime") {
      if (!parse_number(v, o.policy.default_lifetime_s) || o.policy.default_lifetime_s == 0)
        return bad(v);
    } else if (flag == "--max-lifetime") {
      if (!parse_number(v, o.policy.max_lifetime_s) || o.policy.max_lifetime_s == 0)
        return bad(v);
    } else if (flag == "--nonce-lifetime") {
      if (!parse_number(v, o.policy.nonce_lifetime_s) || o.policy.nonce_lifetime_s == 0)
        return bad(v);
    } else if (flag == "--unauth-rate") {
      if (!parse_number(v, o.policy.unauthorized_per_s))
        return bad(v);
      o.policy.unauthorized_burst = o.policy.unauthorized_per_s * 2;
    } else if (flag == "--software") {
      o.policy.software = v;
    } else if (flag == "--log-level") {
      o.log_level = v;
    } else {
      error = "unknown option " + std::string(flag) + " (see ringlane run --help)";
      return std::nullopt;
    }
  }
  if (o.listen.empty()) {
    o.listen = {*Endpoint::parse("0.0.0.0:3478"), *Endpoint::parse("[::]:3478")};
  }
  if (!o.listen_tcp_given) {
    o.listen_tcp = o.listen;
  }
  if (!o.listen_tls_given) {
    o.listen_tls.clear();
    // The standard pair (RFC 8656 §18): TLS on 5349 beside 3478. A listener on any other port
    // gets no TLS listener unless one is named, so two nodes on other ports never share 5349.
    for (auto ep : o.listen) {
      if (ep.port == 3478) {
        ep.port = 5349;
        o.listen_tls.push_back(ep);
      }
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    error = "--tls-cert and --tls-key go together";
    return std::nullopt;
  }
  if (o.media_ips.empty()) {
    o.media_ips = {*IpAddress::parse("0.0.0.0"), *IpAddress::parse("::")};
  }
  // Users are keyed with the realm, which may come after them on the command line.
  for (const auto& [name, password] : o.users) {
    o.policy.add_user(name, password);
  }
  return o;
}

std::optional<IpAddress> relay_for(Family family, const std::optional<IpAddress>& given,
                                   const std::vector<Endpoint>& listen) {
  if (given) {
    return given;
  }
  bool listening = false;
  for (const auto& ep : listen) {
    if (ep.family() == family) {
      listening = true;
      if (ep.ip != IpAddress{family, {}}) {
        return ep.ip;
      }
    }
  }
  if (!listening) {
    return std::nullopt;
  }
  auto all = host_addresses(family);
  return all.empty() ? std::nullopt : std::optional<IpAddress>(all.front());
}

std::string add_dev_secret_if_unconfigured(NodeOptions& o, std::string secret, bool announce) {
  if (!o.policy.users.empty() || !o.policy.rest_secrets.empty()) {
    return "";
  }
  if (secret.empty()) {
    secret = crypto::random_token(18);
  }
  o.policy.rest_secrets.push_back(secret);
  if (!announce) {
    return secret;
  }
  std::string user = std::to_string(std::time(nullptr) + 86400) + ":demo";
  spdlog::warn("no users or secrets given: generated a development TURN REST secret '{}'", secret);
  spdlog::warn("  e.g. username '{}' password '{}' (valid 24 h)", user,
               turn::rest_password(secret, user));
  return secret;
}

}  // namespace ringlane
