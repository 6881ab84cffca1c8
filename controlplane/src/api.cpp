#include "ringlane/controlplane/api.hpp"

#include <signal.h>
#include <boost/json.hpp>

#include <cerrno>
#include <ctime>

#include <charconv>

#include "ringlane/common/bytes.hpp"
#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/controlplane/signaling/token.hpp"
#include "ringlane/controlplane/web/files.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/shm/stats.hpp"
#include "ringlane/turn/rest_credentials.hpp"

namespace ringlane::control {
namespace http = boost::beast::http;

namespace {

std::uint64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

Response reply(const Request& req, http::status status, const std::string& type, std::string body) {
  Response r{status, req.version()};
  r.set(http::field::content_type, type);
  r.set(http::field::cache_control, "no-store");
  r.body() = std::move(body);
  return r;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// The page loads nothing but its own files (no inline script or style), media from its own
// getUserMedia and peer connections, and talks only to its origin and WebSockets.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

// A file of the demo page, revalidated on every load (no-cache) so a rebuilt node's client is
// the one that runs. HEAD gets the headers alone (the HTTP server drops the body).
Response web_page(const Request& req, const web::WebFile& file) {
  Response r = reply(req, http::status::ok, std::string(web::content_type(file.path)),
                     std::string(file.body));
  r.set(http::field::cache_control, "no-cache");
  r.set("Content-Security-Policy", kContentSecurityPolicy);
  r.set("X-Content-Type-Options", "nosniff");
  r.set("Referrer-Policy", "no-referrer");
  return r;
}

// draft-uberti-behave-turn-rest: the username is EXPIRY[:USER], the password its HMAC.
boost::json::object turn_credential(const ApiConfig& config, const std::string& user) {
  std::string username = std::to_string(std::time(nullptr) + config.credential_ttl_s) +
                         (user.empty() ? "" : ":" + user);
  std::string password = turn::rest_password(config.rest_secret, username);
  return {{"username", username}, {"password", password}};
}

// What /api/turn-credentials accepts as USER: printable ASCII without ':', 128 at most.
bool valid_turn_user(std::string_view user) {
  for (char c : user) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return false;
    }
  }
  return user.size() <= 128;
}

}  // namespace

Response json_error(const Request& req, http::status status, const std::string& code,
                    const std::string& message) {
  boost::json::object e{{"code", code}, {"message", message}};
  return reply(req, status, "application/json",
               boost::json::serialize(boost::json::object{{"error", e}}));
}

Response Api::handle(const Request& req, const boost::asio::ip::address& peer) {
  std::string_view path = path_of(req.target());
  const web::WebFile* page = web::find_file(path);
  if (page != nullptr && (req.method() == http::verb::get || req.method() == http::verb::head)) {
    return web_page(req, *page);
  }
  if (req.method() != http::verb::get) {
    return json_error(req, http::status::method_not_allowed, "method_not_allowed",
                      "only GET is served (and HEAD for the demo page)");
  }
  if (path == "/healthz")
    return healthz(req);
  if (path == "/readyz")
    return readyz(req);
  if (path == "/metrics")
    return metrics(req);
  if (path == "/api/turn-credentials")
    return turn_credentials(req, peer);
  if (path == "/api/join-token")
    return join_token(req, peer);
  if (path == "/api/dev-token")
    return dev_token(req, peer);
  return json_error(req, http::status::not_found, "not_found", "no such endpoint");
}

Response Api::healthz(const Request& req) {
  return reply(req, http::status::ok, "text/plain", "ok\n");
}

// Ready when the data plane's stats page exists and every worker published recently.
Response Api::readyz(const Request& req) {
  StatsSnapshot snap;
  std::string error;
  if (!read_stats(config_.stats_name, snap, error)) {
    return reply(req, http::status::service_unavailable, "text/plain",
                 "not ready: " + error + "\n");
  }
  // A killed data plane leaves its page behind with heartbeats that still look fresh: the
  // page must belong to the data plane that runs now.
  bool writer_running = config_.supervised_pid
                            ? config_.supervised_pid() == static_cast<pid_t>(snap.pid)
                            : (kill(static_cast<pid_t>(snap.pid), 0) == 0 || errno == EPERM);
  if (!writer_running) {
    return reply(req, http::status::service_unavailable, "text/plain",
                 "not ready: data plane pid " + std::to_string(snap.pid) + " is not running\n");
  }
  std::uint64_t now = mono_ms();
  for (std::size_t i = 0; i < snap.workers.size(); ++i) {
    std::uint64_t beat = snap.workers[i].heartbeat_ms;
    if (beat == 0 || now > beat + config_.heartbeat_stale_ms) {
      return reply(req, http::status::service_unavailable, "text/plain",
                   "not ready: worker " + std::to_string(i) + " has not reported for " +
                       std::to_string(beat == 0 ? 0 : now - beat) + " ms\n");
    }
  }
  return reply(
      req, http::status::ok, "text/plain",
      "ready: " + std::to_string(snap.workers.size()) + " worker(s), io " + snap.backend + "\n");
}

Response Api::metrics(const Request& req) {
  StatsSnapshot snap;
  std::string error;
  std::string out;
  bool attached = read_stats(config_.stats_name, snap, error);
  out += "# HELP ringlane_dataplane_attached 1 when the data plane's stats page is readable\n";
  out += "# TYPE ringlane_dataplane_attached gauge\n";
  out += "ringlane_dataplane_attached " + std::to_string(attached ? 1 : 0) + "\n";
  for (std::size_t w = 0; attached && w < snap.workers.size(); ++w) {
    for_each_stat(snap.workers[w], [&](const std::string& key, std::uint64_t v) {
      out +=
          "ringlane_" + key + "{worker=\"" + std::to_string(w) + "\"} " + std::to_string(v) + "\n";
    });
  }
  if (config_.extra_metrics) {
    out += config_.extra_metrics();
  }
  return reply(req, http::status::ok, "text/plain; version=0.0.4", std::move(out));
}

bool Api::rate_limited(const boost::asio::ip::address& peer) {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (buckets_.size() > 100000)
    buckets_.clear();
  auto [it, fresh] =
      buckets_.try_emplace(peer.to_string(), Bucket{2.0 * config_.requests_per_s, now});
  Bucket& b = it->second;
  if (!fresh) {
    double dt = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(2.0 * config_.requests_per_s, b.tokens + dt * config_.requests_per_s);
    b.at = now;
  }
  if (b.tokens < 1)
    return true;
  b.tokens -= 1;
  return false;
}

bool Api::authorized(const Request& req) const {
  std::string key;
  auto auth = req[http::field::authorization];
  if (auth.starts_with("Bearer ")) {
    key = std::string(auth.substr(7));
  } else {
    key = query_param(req.target(), "key");
  }
  bool known = false;
  for (const auto& k : config_.api_keys) {
    known = known || (k.size() == key.size() && crypto::equal_ct(as_bytes(k), as_bytes(key)));
  }
  return known;
}

// What every /api/* endpoint checks first: the per-source rate limit, then the API key.
std::optional<Response> Api::gate(const Request& req, const boost::asio::ip::address& peer,
                                  bool key_required) {
  if (rate_limited(peer)) {
    return json_error(req, http::status::too_many_requests, "rate_limited",
                      "too many requests; retry later");
  }
  if (key_required && !authorized(req)) {
    return json_error(req, http::status::unauthorized, "unauthorized",
                      "missing or unknown API key");
  }
  return std::nullopt;
}

// A join token for the signaling WebSocket, for apps without a backend of their own and for the
// demo page: GET ?room=R&identity=I[&ttl=S] -> {token, ws_url, room, identity, expires_at}.
Response Api::join_token(const Request& req, const boost::asio::ip::address& peer) {
  if (auto refused = gate(req, peer)) {
    return std::move(*refused);
  }
  return issue_join_token(req, false);
}

// The demo page's token, without an API key: what /api/join-token answers plus `ice_servers`
// (RTCIceServer dictionaries with TURN REST credentials). Absent unless --dev-tokens is on.
Response Api::dev_token(const Request& req, const boost::asio::ip::address& peer) {
  if (!config_.dev_tokens) {
    return json_error(req, http::status::not_found, "not_found", "no such endpoint");
  }
  if (auto refused = gate(req, peer, false)) {
    return std::move(*refused);
  }
  return issue_join_token(req, true);
}

Response Api::issue_join_token(const Request& req, bool with_ice_servers) {
  if (config_.join_token_secret.empty()) {
    return json_error(req, http::status::service_unavailable, "no_secret",
                      "no signaling JWT secret configured");
  }
  signaling::Grant grant;
  grant.room = query_param(req.target(), "room");
  grant.identity = query_param(req.target(), "identity");
  if (!signaling::valid_room_name(grant.room)) {
    return json_error(req, http::status::bad_request, "bad_room",
                      "room: 1-128 of A-Z a-z 0-9 _ . : -");
  }
  if (!signaling::valid_identity(grant.identity)) {
    return json_error(req, http::status::bad_request, "bad_identity",
                      "identity: 1-128 bytes, no control characters");
  }
  std::uint32_t ttl = config_.join_token_ttl_s;
  if (std::string t = query_param(req.target(), "ttl"); !t.empty()) {
    unsigned long v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v == 0 || v > 7 * 86400) {
      return json_error(req, http::status::bad_request, "bad_ttl", "ttl: 1..604800 seconds");
    }
    ttl = static_cast<std::uint32_t>(v);
  }
  std::int64_t now = std::time(nullptr);
  grant.expires_at = now + ttl;
  boost::json::object o{{"token", signaling::issue_token(grant, config_.join_token_secret, now)},
                        {"ws_url", config_.ws_url},
                        {"room", grant.room},
                        {"identity", grant.identity},
                        {"expires_at", grant.expires_at}};
  if (with_ice_servers) {
    o["ice_servers"] = ice_servers(grant.identity);
  }
  return reply(req, http::status::ok, "application/json", boost::json::serialize(o));
}

boost::json::array Api::ice_servers(const std::string& identity) const {
  boost::json::array servers;
  if (!config_.rest_secret.empty() && !config_.turn_uris.empty()) {
    // The identity names the TURN user (quotas, logs) where TURN's username rules allow it.
    std::string user = valid_turn_user(identity) ? identity : "";
    boost::json::object credential = turn_credential(config_, user);
    boost::json::array urls;
    for (const auto& u : config_.turn_uris)
      urls.emplace_back(u);
    servers.push_back(boost::json::object{{"urls", urls},
                                          {"username", credential["username"]},
                                          {"credential", credential["password"]}});
  }
  return servers;
}

// draft-uberti-behave-turn-rest: GET ?service=turn&username=U -> {username, password, ttl, uris},
// the credential coturn's use-auth-secret (and ringlane's --rest-secret) accepts.
Response Api::turn_credentials(const Request& req, const boost::asio::ip::address& peer) {
  if (auto refused = gate(req, peer)) {
    return std::move(*refused);
  }
  if (config_.rest_secret.empty()) {
    return json_error(req, http::status::service_unavailable, "no_secret",
                      "no TURN REST secret configured");
  }
  std::string service = query_param(req.target(), "service");
  if (!service.empty() && service != "turn") {
    return json_error(req, http::status::bad_request, "bad_service", "service must be turn");
  }
  std::string user = query_param(req.target(), "username");
  if (!valid_turn_user(user)) {
    return json_error(req, http::status::bad_request, "bad_username",
                      "username: printable, no ':', 128 at most");
  }
  boost::json::array uris;
  for (const auto& u : config_.turn_uris)
    uris.emplace_back(u);
  boost::json::object o = turn_credential(config_, user);
  o["ttl"] = config_.credential_ttl_s;
  o["uris"] = std::move(uris);
  return reply(req, http::status::ok, "application/json", boost::json::serialize(o));
}

}  // namespace ringlane::control
