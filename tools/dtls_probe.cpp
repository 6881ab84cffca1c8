// Runs ringlane's DTLS endpoint over a real UDP socket, for interop tests against other
// implementations (openssl s_server / s_client). Prints one JSON line with the outcome.
//   dtls_probe --role client --remote 127.0.0.1:PORT --peer-fingerprint FP [--timeout-ms N]
//   dtls_probe --role server --listen 127.0.0.1:0   --peer-fingerprint FP [--timeout-ms N]
// The server prints "listening PORT" first. Every wait is bounded by --timeout-ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

using namespace ringlane;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string role = "client";
  std::string fingerprint;
  std::optional<Endpoint> remote;
  Endpoint listen = *Endpoint::parse("127.0.0.1:0");
  int timeout_ms = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--role")
      role = v;
    else if (k == "--peer-fingerprint")
      fingerprint = v;
    else if (k == "--remote")
      remote = Endpoint::parse(v);
    else if (k == "--listen")
      listen = *Endpoint::parse(v);
    else if (k == "--timeout-ms")
      timeout_ms = std::stoi(v);
  }
  auto cert = crypto::DtlsCertificate::generate();
  crypto::DtlsEndpoint ep(
      cert, role == "client" ? crypto::DtlsRole::kClient : crypto::DtlsRole::kServer, fingerprint);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(listen, sa);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), len);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (role == "server") {
    std::printf("listening %u\n", io::from_sockaddr(reinterpret_cast<sockaddr*>(&sa)).port);
    std::fflush(stdout);
  } else {
    ep.start();
  }
  sockaddr_in6 peer{};
  socklen_t peer_len = 0;
  if (remote)
    peer_len = io::to_sockaddr(*remote, peer);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto flush = [&] {
    std::vector<std::uint8_t> d;
    while (peer_len > 0 && ep.pop(d)) {
      sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_len);
    }
  };
  while (Clock::now() < deadline &&
         (ep.state() == crypto::DtlsState::kNew || ep.state() == crypto::DtlsState::kConnecting)) {
    flush();
    int wait = 50;
    if (auto t = ep.timeout())
      wait = static_cast<int>(std::min<long>(t->count(), 50));
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait) > 0) {
      std::uint8_t buf[4096];
      sockaddr_in6 from{};
      socklen_t from_len = sizeof(from);
      ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n > 0) {
        if (peer_len == 0) {
          peer = from;
          peer_len = from_len;
        }
        ep.on_datagram(std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n)));
      }
    } else if (auto t = ep.timeout(); t && t->count() == 0) {
      ep.on_timeout();
    }
  }
  flush();
  std::string material;
  if (auto km = ep.srtp_keying_material()) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (auto b : *km) {
      material.push_back(kHex[b >> 4]);
      material.push_back(kHex[b & 15]);
    }
  }
  std::string error = ep.error();
  for (auto& c : error) {
    if (c == '"' || c == '\\')
      c = '\'';
  }
  std::printf("{\"state\":\"%s\",\"profile\":\"%s\",\"keying_material\":\"%s\",\"error\":\"%s\"}\n",
              crypto::to_string(ep.state()), ep.srtp_profile_name(), material.c_str(),
              error.c_str());
  std::fflush(stdout);
  if (ep.state() == crypto::DtlsState::kConnected) {
    ep.close();
    flush();
  }
  close(fd);
  return ep.state() == crypto::DtlsState::kClosed ? 0 : 1;
}
