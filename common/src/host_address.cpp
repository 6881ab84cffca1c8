#include "ringlane/common/host_address.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace ringlane {

std::vector<IpAddress> host_addresses(Family family) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return {};
  }
  std::vector<IpAddress> found;
  std::vector<IpAddress> loopback;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0) {
      continue;
    }
    IpAddress ip;
    if (family == Family::kV4 && i->ifa_addr->sa_family == AF_INET) {
      const auto* sa = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      ip.family = Family::kV4;
      std::memcpy(ip.bytes.data(), &sa->sin_addr, 4);
    } else if (family == Family::kV6 && i->ifa_addr->sa_family == AF_INET6) {
      const auto* sa = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      ip.family = Family::kV6;
      std::memcpy(ip.bytes.data(), &sa->sin6_addr, 16);
      if (ip.bytes[0] == 0xfe && (ip.bytes[1] & 0xc0) == 0x80) {
        continue;
      }
    } else {
      continue;
    }
    auto& into = (i->ifa_flags & IFF_LOOPBACK) != 0 ? loopback : found;
    if (std::find(into.begin(), into.end(), ip) == into.end()) {
      into.push_back(ip);
    }
  }
  freeifaddrs(list);
  found.insert(found.end(), loopback.begin(), loopback.end());
  return found;
}

}  // namespace ringlane
