#pragma once
// Options both control plane binaries share (`ringlane run` and `ringlane-control`): signaling
// limits, JWT secrets, node identity and the placement store; and the helpers that turn them
// into a running signaling server.
#include <memory>
#include <string>
#include <vector>

#include "ringlane/common/cidr.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/controlplane/api.hpp"
#include "ringlane/controlplane/http_server.hpp"
#include "ringlane/controlplane/media/whip.hpp"
#include "ringlane/controlplane/placement/store.hpp"
#include "ringlane/controlplane/signaling/server.hpp"

namespace ringlane::control {

struct ControlOptions {
  signaling::SignalingConfig signaling;
  std::string redis_url;  // empty: the embedded in-memory store
  std::string redis_prefix = "ringlane:";
  std::chrono::milliseconds node_ttl{6000};
  // HTTPS and WSS: a second listener with the same routes over TLS ("" = none), with the
  // certificate and key (PEM files) the binary fills in (`ringlane run`: --tls-cert/--tls-key of
  // the node; ringlane-control: its own flags).
  std::string http_tls;
  std::string tls_cert;
  std::string tls_key;
  // Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (none by default).
  std::vector<Cidr> trusted_proxies;
};

// If argv[i] is one of ours, consumes it (and its value) and returns true; `error` is set on a
// bad value. Unknown options return false and are left to the caller.
bool parse_control_option(int argc, char** argv, int& i, ControlOptions& o, std::string& error);
const char* control_options_help();

std::unique_ptr<placement::Store> make_store(const ControlOptions& o, std::string& error);

// Load of the data plane behind stats page `stats_name` (allocations, packets/s, CPU).
std::function<signaling::NodeLoad()> stats_load_probe(const std::string& stats_name);

// Raises the soft descriptor limit to the hard one: every signaling connection is a socket.
void raise_fd_limit();

}  // namespace ringlane::control

namespace ringlane::control {

// Fills the defaults that depend on where the API listens (node id = hostname, ws_url, a
// generated JWT secret, logged once), builds the store, and starts signaling on `io`.
std::unique_ptr<signaling::SignalingServer> start_signaling(boost::asio::io_context& io,
                                                            ControlOptions& o,
                                                            const std::string& http_address,
                                                            const std::string& stats_name,
                                                            std::string& error);

}  // namespace ringlane::control

namespace ringlane::control {

// The HTTP API, /ws signaling and WHIP/WHEP on one listener: what `ringlane run` and
// `ringlane-control` both serve. `api` is completed here (join-token secret, ws_url, metrics);
// `more_metrics` is appended to /metrics.
class ApiServer {
 public:
  static std::unique_ptr<ApiServer> start(boost::asio::io_context& io, const Endpoint& at,
                                          ApiConfig api, ControlOptions& options,
                                          std::function<std::string()> more_metrics,
                                          std::string& error);
  const std::string& address() const { return address_; }
  const std::string& tls_address() const { return tls_address_; }  // "" without --http-tls
  signaling::SignalingServer& signaling() { return *signaling_; }
  // SIGHUP: reads the certificate and key again for the HTTPS connections accepted from now on
  // (those open keep theirs). A file that does not load keeps the old certificate; logged
  // either way. Nothing to do without --http-tls.
  void reload_tls();

 private:
  ApiServer() = default;
  // A join token asked for over HTTPS (our TLS port, or a trusted proxy's X-Forwarded-Proto)
  // names a wss:// URL: a secure page may not open ws://. Only when --ws-url was not given.
  Response secure_ws_url(const Request& req, Response r, bool tls_port) const;
  // The TLS port's counters for /metrics ("" without --http-tls).
  std::string tls_metrics() const;
  std::string address_;
  std::string tls_address_;
  std::string tls_cert_;
  std::string tls_key_;
  bool ws_url_given_ = false;
  std::unique_ptr<signaling::SignalingServer> signaling_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<media::WhipEndpoint> whip_;
  std::unique_ptr<HttpServer> http_;  // last: they go first, before what their handlers use
  std::unique_ptr<HttpServer> https_;
};

}  // namespace ringlane::control
