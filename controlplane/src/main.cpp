// ringlane-control: the control plane (HTTP API, WebSocket signaling, placement) beside a data
// plane it does not supervise (`ringlane run` is the node that does both).
//   ringlane-control --listen 127.0.0.1:8080 --stats-name default --api-key K
//                    --rest-secret S --turn-uri turn:HOST:3478?transport=udp [--dev-tokens on]
//                    [--http-tls ADDR:PORT --tls-cert FILE --tls-key FILE] [signaling options]
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <cstdio>
#include <functional>
#include <string>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/api.hpp"
#include "ringlane/controlplane/control_options.hpp"

int main(int argc, char** argv) {
  using namespace ringlane;
  control::ApiConfig config;
  control::ControlOptions options;
  Endpoint listen = *Endpoint::parse("127.0.0.1:8080");
  for (int i = 1; i < argc; ++i) {
    std::string error;
    if (control::parse_control_option(argc, argv, i, options, error)) {
      if (!error.empty()) {
        std::fprintf(stderr, "ringlane-control: %s\n", error.c_str());
        return 2;
      }
      continue;
    }
    std::string k = argv[i];
    if (k == "--help") {
      std::fputs(
          "usage: ringlane-control [--listen ADDR:PORT] [--stats-name NAME] [--api-key K]...\n"
          "                        [--rest-secret S] [--turn-uri URI]... [--ttl S]\n"
          "                        [--dev-tokens on|off] [--tls-cert FILE --tls-key FILE]\n"
          "  --dev-tokens on|off         GET /api/dev-token: join tokens for anyone, no API key\n"
          "                              (the demo page at /) [off]\n"
          "  --tls-cert FILE, --tls-key FILE\n"
          "                              PEM certificate chain and key for --http-tls\n"
          "                              (reloaded on SIGHUP)\n",
          stdout);
      std::fputs(control::control_options_help(), stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "ringlane-control: %s needs a value (or is unknown)\n", k.c_str());
      return 2;
    }
    std::string v = argv[++i];
    if (k == "--listen") {
      auto ep = Endpoint::parse(v);
      if (!ep) {
        std::fprintf(stderr, "ringlane-control: bad --listen %s\n", v.c_str());
        return 2;
      }
      listen = *ep;
    } else if (k == "--tls-cert") {
      options.tls_cert = v;
    } else if (k == "--tls-key") {
      options.tls_key = v;
    } else if (k == "--stats-name") {
      config.stats_name = v;
    } else if (k == "--api-key") {
      config.api_keys.push_back(v);
    } else if (k == "--rest-secret") {
      config.rest_secret = v;
    } else if (k == "--dev-tokens") {
      if (v != "on" && v != "off") {
        std::fprintf(stderr, "ringlane-control: --dev-tokens takes on or off\n");
        return 2;
      }
      config.dev_tokens = v == "on";
    } else if (k == "--turn-uri") {
      config.turn_uris.push_back(v);
    } else if (k == "--ttl") {
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), config.credential_ttl_s);
      if (ec != std::errc() || end != v.data() + v.size()) {
        std::fprintf(stderr, "ringlane-control: bad --ttl %s (seconds)\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "ringlane-control: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  init_logging("info", false);
  control::raise_fd_limit();
  boost::asio::io_context io;
  std::string error;
  auto server = control::ApiServer::start(io, listen, config, options, {}, error);
  if (!server) {
    std::fprintf(stderr, "ringlane-control: %s\n", error.c_str());
    return 2;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io, &server](auto, int) {
    server->signaling().shutdown();
    io.stop();
  });
  // SIGHUP: a renewed certificate for new HTTPS connections.
  boost::asio::signal_set hangup(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) {
        return;
      }
      spdlog::info("SIGHUP: reloading the certificate");
      server->reload_tls();
      on_hangup();
    });
  };
  on_hangup();
  spdlog::info("ringlane-control up: http on {}{}{} | data plane stats '{}'", server->address(),
               server->tls_address().empty() ? "" : ", https on ", server->tls_address(),
               config.stats_name);
  if (config.dev_tokens) {
    spdlog::warn(
        "--dev-tokens on: anyone who reaches http://{}/api/dev-token gets join tokens "
        "without an API key",
        server->address());
  }
  std::fflush(stderr);
  io.run();
  return 0;
}
