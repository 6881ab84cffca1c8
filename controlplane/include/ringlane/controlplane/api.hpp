#pragma once
// The control plane's HTTP API: health, readiness, Prometheus metrics from the data plane's
// stats page, TURN REST credentials (the shape coturn/eturnal deployments hand out), join
// tokens, and the demo page with its browser client (web/files.hpp).
#include <sys/types.h>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringlane/controlplane/http_server.hpp"

namespace ringlane::control {

struct ApiConfig {
  std::string stats_name = "default";  // the data plane's stats page
  std::vector<std::string> api_keys;   // Bearer keys for /api/*; none = /api/* refused
  std::string rest_secret;             // shared with the data plane (--rest-secret)
  std::uint32_t credential_ttl_s = 86400;
  std::vector<std::string> turn_uris;  // e.g. turn:203.0.113.7:3478?transport=udp
  std::uint32_t requests_per_s = 20;   // per source address, /api/* only
  std::uint32_t heartbeat_stale_ms = 1000;
  // The data plane's pid as its supervisor knows it (-1 while it is down or restarting). Without
  // a supervisor (ringlane-control beside a data plane), the stats page's writer must be alive.
  std::function<pid_t()> supervised_pid;
  // Signaling: the JWT secret /api/join-token signs with, and where clients connect.
  std::string join_token_secret;
  std::uint32_t join_token_ttl_s = 3600;
  std::string ws_url;
  // GET /api/dev-token: join tokens (with TURN credentials) for anyone who asks, no API key.
  // For the demo page on a development node only; off, the endpoint does not exist (404).
  bool dev_tokens = false;
  std::function<std::string()> extra_metrics;  // appended to /metrics (signaling, placement)
};

class Api {
 public:
  explicit Api(ApiConfig config) : config_(std::move(config)) {}
  Response handle(const Request& req, const boost::asio::ip::address& peer);
  // RTCIceServer dictionaries ({urls, username, credential}) with TURN REST credentials for the
  // --turn-uri URIs, the TURN user named after `identity` where TURN's username rules allow it;
  // empty without a REST secret or URIs. What /api/dev-token and WHIP/WHEP hand out.
  boost::json::array ice_servers(const std::string& identity) const;
  // The per-source request budget of /api/*, shared with the other endpoints on this port that
  // do work for a request (WHIP/WHEP): true when `peer` has used it up.
  bool rate_limited(const boost::asio::ip::address& peer);

 private:
  Response healthz(const Request& req);
  Response readyz(const Request& req);
  Response metrics(const Request& req);
  Response turn_credentials(const Request& req, const boost::asio::ip::address& peer);
  Response join_token(const Request& req, const boost::asio::ip::address& peer);
  Response dev_token(const Request& req, const boost::asio::ip::address& peer);
  Response issue_join_token(const Request& req, bool with_ice_servers);
  bool authorized(const Request& req) const;
  std::optional<Response> gate(const Request& req, const boost::asio::ip::address& peer,
                               bool key_required = true);

  ApiConfig config_;
  std::mutex mutex_;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<std::string, Bucket> buckets_;
};

Response json_error(const Request& req, boost::beast::http::status status, const std::string& code,
                    const std::string& message);

}  // namespace ringlane::control
