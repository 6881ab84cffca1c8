#pragma once
// The host's own addresses, for what both planes advertise: the relay address (data plane) and
// the SFU's ICE host candidates (control plane).
#include <vector>

#include "ringlane/common/endpoint.hpp"

namespace ringlane {

// Addresses of the family on interfaces that are up, non-loopback first, then loopback ones;
// IPv6 link-local addresses are left out (useless without a scope).
std::vector<IpAddress> host_addresses(Family family);

}  // namespace ringlane
