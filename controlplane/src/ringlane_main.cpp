// ringlane: `run` is the node (control plane supervising the data plane, HTTP API);
// `dataplane` is the data plane process it starts; `stats` reads a node's counters.
#include <algorithm>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "ringlane/common/host_address.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/api.hpp"
#include "ringlane/controlplane/control_options.hpp"
#include "ringlane/controlplane/dev_secrets.hpp"
#include "ringlane/controlplane/supervisor.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/crypto/tls.hpp"
#include "ringlane/node/dataplane_main.hpp"
#include "ringlane/node/options.hpp"

namespace ringlane {
namespace {

// The development certificate is made anew this long before it expires.
constexpr std::int64_t kDevCertRenewSeconds = 30 * 86400;

// Where browsers reach the SFU's media ports: the --external-ip addresses, else the addresses
// the media ports are bound to when specific, else the host's own (non-loopback when it has
// any; Chromium ignores loopback candidates unless told otherwise).
std::vector<IpAddress> media_candidates(const NodeOptions& o) {
  std::vector<IpAddress> out;
  for (const auto& ip : {o.external_v4, o.external_v6}) {
    if (ip) {
      out.push_back(*ip);
    }
  }
  if (!out.empty()) {
    return out;
  }
  for (const auto& bound : o.media_ips) {
    if (bound != IpAddress{bound.family, {}}) {
      out.push_back(bound);
      continue;
    }
    auto all = host_addresses(bound.family);
    bool other = std::any_of(all.begin(), all.end(), [](const IpAddress& a) {
      return !(a.family == Family::kV4 ? a.bytes[0] == 127 : a == *IpAddress::parse("::1"));
    });
    for (const auto& a : all) {
      bool loopback = a.family == Family::kV4 ? a.bytes[0] == 127 : a == *IpAddress::parse("::1");
      if (!other || !loopback) {
        out.push_back(a);
      }
    }
  }
  return out;
}

int run_node(int argc, char** argv) {
  std::string http = "127.0.0.1:8080";
  std::vector<std::string> api_keys;
  std::vector<std::string> turn_uris;
  std::vector<std::string> node_args;
  std::string dev_tokens;  // "on" | "off" | "" (on when the JWT secret is our own)
  control::ControlOptions control_options;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string option_error;
    if (control::parse_control_option(argc, argv, i, control_options, option_error)) {
      if (!option_error.empty()) {
        std::fprintf(stderr, "ringlane run: %s\n", option_error.c_str());
        return 2;
      }
      continue;
    }
    if ((a == "--http" || a == "--api-key" || a == "--turn-uri" || a == "--dev-tokens") &&
        i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--http") {
        http = v;
      } else if (a == "--api-key") {
        api_keys.push_back(v);
      } else if (a == "--dev-tokens") {
        if (v != "on" && v != "off") {
          std::fprintf(stderr, "ringlane run: --dev-tokens takes on or off\n");
          return 2;
        }
        dev_tokens = v;
      } else {
        turn_uris.push_back(v);
      }
    } else {
      node_args.push_back(a);
    }
  }
  std::vector<char*> view;
  for (auto& a : node_args)
    view.push_back(a.data());
  std::string error;
  auto parsed = parse_node_options(static_cast<int>(view.size()), view.data(), error);
  if (!parsed) {
    if (error == "help") {
      std::fputs(node_options_help(), stdout);
      std::fputs(
          "control plane:\n"
          "  --http ADDR:PORT|off        HTTP API, signaling (/ws), demo page [127.0.0.1:8080]\n"
          "  --api-key KEY               Bearer key for /api/*, repeatable [generated]\n"
          "  --turn-uri URI              TURN URI handed out with credentials, repeatable\n"
          "  --dev-tokens on|off         GET /api/dev-token: join tokens for anyone, no API key\n"
          "                              (the demo page's) [on when no --jwt-secret is given]\n",
          stdout);
      std::fputs(control::control_options_help(), stdout);
      return 0;
    }
    std::fprintf(stderr, "ringlane run: %s\n", error.c_str());
    return 2;
  }
  NodeOptions o = std::move(*parsed);
  init_logging(o.log_level, o.log_json);
  // Secrets not given are made up once and kept (dev_secrets.hpp): a restarted control plane
  // must accept what its predecessor handed out, as the data plane it adopts still does.
  bool need_rest = o.policy.users.empty() && o.policy.rest_secrets.empty();
  bool need_key = http != "off" && api_keys.empty();
  bool need_jwt = http != "off" && control_options.signaling.jwt_secrets.empty();
  // A node on embedded defaults is a development node: its demo page works out of the box.
  bool dev_token_switch = dev_tokens.empty() ? need_jwt : dev_tokens == "on";
  if (need_rest || need_key || need_jwt) {
    control::DevSecrets dev = control::load_or_create_dev_secrets(o.name);
    if (need_rest) {
      add_dev_secret_if_unconfigured(o, dev.rest_secret, !dev.reused);
      node_args.push_back("--rest-secret");  // the data plane must accept what the API hands out
      node_args.push_back(dev.rest_secret);
    }
    if (need_key) {
      api_keys.push_back(dev.api_key);
    }
    if (need_jwt) {
      control_options.signaling.jwt_secrets.push_back(dev.jwt_secret);
    }
    if (dev.reused) {
      spdlog::info("using the development secrets kept in {}", dev.path);
    } else {
      if (need_key) {
        spdlog::warn("no --api-key given: generated '{}' for the HTTP API", dev.api_key);
      }
      if (need_jwt) {
        spdlog::warn("no --jwt-secret given: generated '{}' for signaling join tokens",
                     dev.jwt_secret);
      }
      if (!dev.path.empty()) {
        spdlog::warn("generated secrets kept in {} for restarts", dev.path);
      }
    }
  }
  // TURN over TLS and HTTPS need a certificate: without --tls-cert, a self-signed one made once
  // and kept beside the development secrets (so a restart serves the same one). No client
  // trusts it unless told to: for development only.
  if (o.tls_cert.empty()) {
    std::string cert = control::state_file_path(o.name, ".tls-cert.pem");
    std::string key = control::state_file_path(o.name, ".tls-key.pem");
    bool kept = !cert.empty() && access(cert.c_str(), R_OK) == 0 && access(key.c_str(), R_OK) == 0;
    // One that has expired, or will within a month, is made anew (it is valid a year).
    auto left = kept ? crypto::certificate_seconds_left(cert) : std::nullopt;
    if (kept && (!left || *left < kDevCertRenewSeconds)) {
      spdlog::warn("the self-signed certificate {} {}: making a new one", cert,
                   !left       ? "cannot be read"
                   : *left < 0 ? "has expired"
                               : "expires within 30 days");
      kept = false;
    }
    std::string tls_error = cert.empty() ? "no state directory to keep it in" : "";
    if (!cert.empty() && (kept || crypto::write_self_signed_certificate(cert, key, tls_error))) {
      spdlog::warn(
          "no --tls-cert given: TURN over TLS serves the self-signed certificate {} ({}); "
          "clients do not trust it, for development only",
          cert, kept ? "kept from before" : "made now");
      o.tls_cert = cert;
      o.tls_key = key;
      node_args.insert(node_args.end(), {"--tls-cert", cert, "--tls-key", key});
    } else {
      spdlog::warn("no --tls-cert given and no self-signed one: {}; TURN over TLS is off",
                   tls_error);
    }
  }
  if (turn_uris.empty()) {
    const std::vector<Endpoint>& listen = o.listen;
    for (const auto& ep : listen) {
      auto ip = ep.family() == Family::kV4
                    ? (o.external_v4 ? o.external_v4 : relay_for(Family::kV4, o.relay_v4, listen))
                    : (o.external_v6 ? o.external_v6 : relay_for(Family::kV6, o.relay_v6, listen));
      if (ip) {
        turn_uris.push_back("turn:" + Endpoint{*ip, ep.port}.to_string() + "?transport=udp");
      }
    }
    // TURN over TCP (RFC 7065 URI), for clients whose networks let no UDP out.
    for (const auto& ep : o.listen_tcp) {
      auto ip = ep.family() == Family::kV4
                    ? (o.external_v4 ? o.external_v4 : relay_for(Family::kV4, o.relay_v4, listen))
                    : (o.external_v6 ? o.external_v6 : relay_for(Family::kV6, o.relay_v6, listen));
      if (ip) {
        turn_uris.push_back("turn:" + Endpoint{*ip, ep.port}.to_string() + "?transport=tcp");
      }
    }
    // TURN over TLS (RFC 7065 `turns:`), on when there is a certificate.
    for (const auto& ep : o.tls_cert.empty() ? std::vector<Endpoint>{} : o.listen_tls) {
      auto ip = ep.family() == Family::kV4
                    ? (o.external_v4 ? o.external_v4 : relay_for(Family::kV4, o.relay_v4, listen))
                    : (o.external_v6 ? o.external_v6 : relay_for(Family::kV6, o.relay_v6, listen));
      if (ip) {
        turn_uris.push_back("turns:" + Endpoint{*ip, ep.port}.to_string() + "?transport=tcp");
      }
    }
  }

  control::SupervisorConfig sc;
  sc.executable = "/proc/self/exe";
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0)
    sc.executable.assign(self, static_cast<std::size_t>(n));
  sc.dataplane_args = node_args;
  sc.workers = worker_count(o);
  sc.policy = o.policy;
  auto supervisor = control::Supervisor::create(sc, error);
  if (!supervisor || !supervisor->launch(o.name, error)) {
    spdlog::error("cannot start the data plane: {}", error);
    return 1;
  }

  control::raise_fd_limit();
  boost::asio::io_context io;
  std::unique_ptr<control::ApiServer> server;
  if (http != "off") {
    auto ep = Endpoint::parse(http);
    if (!ep) {
      spdlog::error("bad --http {}", http);
      return 2;
    }
    control::ApiConfig ac;
    ac.stats_name = o.name;
    ac.api_keys = api_keys;
    ac.rest_secret = o.policy.rest_secrets.empty() ? "" : o.policy.rest_secrets.front();
    ac.turn_uris = turn_uris;
    ac.supervised_pid = [&supervisor] { return supervisor->pid(); };
    ac.dev_tokens = dev_token_switch;
    control_options.signaling.workers = worker_count(o);
    // The SFU: sessions go to the workers through the supervisor's rings; the ICE candidates
    // are the media ports' public addresses (--external-ip), else the host's own.
    control_options.signaling.media = supervisor.get();
    control_options.signaling.candidate_ips = media_candidates(o);
    // Rooms, sessions and tracks outlive this process: a successor that adopts the data plane
    // reads them back, and the clients that reconnect resume their media.
    control_options.signaling.media_state_file = control::state_file_path(o.name, ".media.json");
    control_options.signaling.media_restore = supervisor->adopted();
    // HTTPS/WSS (--http-tls) serves the node's certificate, the one TURN over TLS uses.
    control_options.tls_cert = o.tls_cert;
    control_options.tls_key = o.tls_key;
    server = control::ApiServer::start(
        io, *ep, ac, control_options, [&supervisor] { return supervisor->metrics(); }, error);
    if (!server) {
      spdlog::error("signaling: {}", error);
      return 2;
    }
    spdlog::info("control plane up: HTTP API and signaling (/ws) on {}{}{}", server->address(),
                 server->tls_address().empty() ? "" : ", HTTPS and WSS on ", server->tls_address());
    if (dev_token_switch) {
      spdlog::warn(
          "dev tokens on ({}): anyone who reaches http://{}/api/dev-token gets join tokens "
          "without an API key; demo page at http://{}/",
          dev_tokens.empty() ? "no --jwt-secret given; --dev-tokens off refuses them"
                             : "--dev-tokens on",
          server->address(), server->address());
    }
  }
  if (server) {
    supervisor->on_session_event([&server](unsigned worker, std::span<const std::uint8_t> p) {
      server->signaling().on_session_event(worker, p);
    });
    supervisor->on_media_report(
        [&server](unsigned worker, shm::Event type, std::span<const std::uint8_t> p) {
          server->signaling().on_media_report(worker, type, p);
        });
    supervisor->on_restarted([&server] { server->signaling().media_reset(); });
  }
  boost::asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    supervisor->poll();
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec)
        tick();
    });
  };
  tick();
  if (!server && !control_options.http_tls.empty()) {
    spdlog::warn("--http-tls {} is not served: --http off turns the HTTP API off",
                 control_options.http_tls);
  }
  // SIGHUP: a renewed certificate. HTTPS takes it for new connections here; the data plane
  // (TURN over TLS) gets the signal too and reloads its own.
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) {
        return;
      }
      pid_t child = supervisor->pid();
      spdlog::info("SIGHUP: reloading the certificate{}",
                   child > 0 ? " (passed on to the data plane, pid " + std::to_string(child) + ")"
                             : std::string());
      if (server) {
        server->reload_tls();
      }
      if (child > 0) {
        kill(child, SIGHUP);
      }
      on_hangup();
    });
  };
  on_hangup();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int sig) {
    if (server) {
      server->signaling().shutdown();
    }
    spdlog::info("signal {}: stopping the data plane", sig);
    supervisor->stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace
}  // namespace ringlane

int main(int argc, char** argv) {
  std::string_view cmd = argc > 1 ? argv[1] : "";
  if (cmd == "run")
    return ringlane::run_node(argc - 2, argv + 2);
  if (cmd == "dataplane")
    return ringlane::run_dataplane(argc - 2, argv + 2);
  if (cmd == "stats")
    return ringlane::print_stats(argc - 2, argv + 2);
  if (cmd == "version" || cmd == "--version") {
    std::puts("ringlane 0.1.0");
    return 0;
  }
  std::fputs(
      "usage: ringlane run [options]        the node: data plane + control plane + HTTP API\n"
      "       ringlane dataplane [options]  the data plane alone (what `run` starts)\n"
      "       ringlane stats [--name NAME] [--prometheus]\n"
      "       ringlane run --help           lists the options\n",
      stderr);
  return cmd.empty() || cmd == "help" || cmd == "--help" ? 0 : 2;
}
