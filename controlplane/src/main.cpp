// ringlane-control: the control plane's HTTP API over a running data plane.
//   ringlane-control --listen 127.0.0.1:8080 --stats-name default --api-key K
//                    --rest-secret S --turn-uri turn:HOST:3478?transport=udp
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <string>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/api.hpp"

int main(int argc, char** argv) {
  using namespace ringlane;
  control::ApiConfig config;
  Endpoint listen = *Endpoint::parse("127.0.0.1:8080");
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--listen") {
      auto ep = Endpoint::parse(v);
      if (!ep) {
        std::fprintf(stderr, "ringlane-control: bad --listen %s\n", v.c_str());
        return 2;
      }
      listen = *ep;
    } else if (k == "--stats-name") {
      config.stats_name = v;
    } else if (k == "--api-key") {
      config.api_keys.push_back(v);
    } else if (k == "--rest-secret") {
      config.rest_secret = v;
    } else if (k == "--turn-uri") {
      config.turn_uris.push_back(v);
    } else if (k == "--ttl") {
      config.credential_ttl_s = static_cast<std::uint32_t>(std::stoul(v));
    } else {
      std::fprintf(stderr, "ringlane-control: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  init_logging("info", false);
  boost::asio::io_context io;
  control::Api api(config);
  boost::asio::ip::tcp::endpoint at(boost::asio::ip::make_address(listen.ip.to_string()),
                                    listen.port);
  control::HttpServer server(
      io, at, [&api](const control::Request& r, const boost::asio::ip::address& peer) {
        return api.handle(r, peer);
      });
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](auto, int) { io.stop(); });
  spdlog::info("ringlane-control up: http on {}:{} | data plane stats '{}'", listen.ip.to_string(),
               server.port(), config.stats_name);
  std::fflush(stderr);
  io.run();
  return 0;
}
