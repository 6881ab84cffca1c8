#include "ringlane/dataplane/io/sockaddr.hpp"

#include <cstring>

namespace ringlane::io {

socklen_t to_sockaddr(const Endpoint& ep, sockaddr_in6& storage) {
  std::memset(&storage, 0, sizeof(storage));
  if (ep.family() == Family::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    std::memcpy(&sin->sin_addr, ep.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  storage.sin6_family = AF_INET6;
  storage.sin6_port = htons(ep.port);
  std::memcpy(&storage.sin6_addr, ep.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

Endpoint from_sockaddr(const sockaddr* sa) {
  Endpoint ep;
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    ep.ip.family = Family::kV4;
    std::memcpy(ep.ip.bytes.data(), &sin->sin_addr, 4);
    ep.port = ntohs(sin->sin_port);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ep.ip.family = Family::kV6;
    std::memcpy(ep.ip.bytes.data(), &sin6->sin6_addr, 16);
    ep.port = ntohs(sin6->sin6_port);
  }
  return ep;
}

}  // namespace ringlane::io
