#pragma once
// Command-line options of the node. Every option has a safe default, so the node runs with no
// configuration file at all. `ringlane run` (the control plane) reads them for the policy it
// replays and the addresses it advertises, and passes them on to `ringlane dataplane`.
#include <optional>
#include <string>
#include <vector>

#include "ringlane/common/cidr.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane {

struct NodeOptions {
  std::string name = "default";
  std::vector<Endpoint> listen;  // 0.0.0.0:3478 and [::]:3478 unless given
  // TURN over TCP (RFC 8656 §3.1): the same addresses as `listen` unless given; `--listen-tcp
  // off` leaves it empty. listen_tcp_given: named explicitly (a bind failure is then fatal).
  std::vector<Endpoint> listen_tcp;
  bool listen_tcp_given = false;
  std::uint32_t tcp_max_connections = 4096;  // per worker
  std::uint32_t tcp_max_per_ip = 64;         // per source IP, all workers
  std::uint32_t tcp_accept_rate = 50;        // new connections per source IP per second
  std::uint32_t tcp_handshake_timeout_ms = 10'000;
  std::uint32_t tcp_idle_timeout_ms = 60'000;  // connections without an allocation
  std::uint32_t tcp_send_cap = 256 * 1024;     // bytes queued towards one client
  // TURN over TLS (RFC 8656 §3.1, `turns:`): port 5349 on the --listen addresses that use 3478
  // unless given; `--listen-tls off` leaves it empty. On only with a certificate (tls_cert and
  // tls_key, PEM files; `ringlane run` makes a self-signed one when none is given). The same
  // certificate serves the control plane's HTTPS (--http-tls). Both reload it on SIGHUP.
  std::vector<Endpoint> listen_tls;
  bool listen_tls_given = false;
  std::string tls_cert;
  std::string tls_key;
  std::optional<IpAddress> relay_v4;
  std::optional<IpAddress> relay_v6;
  std::optional<IpAddress> external_v4;
  std::optional<IpAddress> external_v6;
  std::uint16_t relay_port_min = 40000;
  std::uint16_t relay_port_max = 65535;
  std::uint16_t media_port = 7882;   // SFU: worker i on media_port + i; 0 = no SFU
  std::vector<IpAddress> media_ips;  // 0.0.0.0 and :: unless given
  unsigned workers = 0;              // 0: one per CPU
  std::vector<int> cpus;
  std::string io = "uring";
  std::uint32_t buffers = 4096;
  bool gso = true;                // bench/RESULTS.md: 16-35% less CPU per packet with bursts
  bool zerocopy = false;          // bench/RESULTS.md: no gain at RTP sizes
  int listener_buffer = 4 << 20;  // SO_RCVBUF/SO_SNDBUF of listeners
  int relay_buffer = 512 << 10;   // and of relay sockets
  std::string log_level = "info";
  bool log_json = false;
  std::vector<std::pair<std::string, std::string>> users;
  turn::Policy policy;  // realm, secrets, peers, quotas; users are added after parsing
};

// Parses argv after the subcommand; on error returns nullopt with a message in `error`.
std::optional<NodeOptions> parse_node_options(int argc, char** argv, std::string& error);
const char* node_options_help();
// Workers the node runs: --workers, else one per --cpus entry, else one per CPU.
unsigned worker_count(const NodeOptions& o);

// The relay address of a family: the given one, else the listener's, else the host's first
// (non-loopback preferred) address when listening on the any-address.
std::optional<IpAddress> relay_for(Family family, const std::optional<IpAddress>& given,
                                   const std::vector<Endpoint>& listen);

// With no users and no REST secret, adds a development secret (`secret`, or one generated here;
// printed with an example credential when `announce`) so the node is usable at once. Returns
// it, or "" when not needed.
std::string add_dev_secret_if_unconfigured(NodeOptions& o, std::string secret = {},
                                           bool announce = true);

}  // namespace ringlane
