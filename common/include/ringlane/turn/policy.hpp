#pragma once
// What the TURN server enforces: who may authenticate, which peers may be reached, quotas.
// Immutable once built; a change at run time swaps in a new Policy. The control plane builds it
// from the node options and replays it to the data plane's workers (shm/commands.hpp).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringlane/common/cidr.hpp"
#include "ringlane/common/endpoint.hpp"

namespace ringlane::turn {

using CredentialKey = std::array<std::uint8_t, 16>;

struct Policy {
  std::string realm = "ringlane";
  std::string software = "ringlane";
  // Static long-term users: name -> MD5(name:realm:password), computed by add_user().
  std::unordered_map<std::string, CredentialKey> users;
  // TURN REST secrets (coturn's use-auth-secret); several allow rotation.
  std::vector<std::string> rest_secrets;
  // Peers that the default deny list would refuse but the operator allows.
  std::vector<Cidr> allow_peers;
  // Extra peers to refuse on top of the default deny list.
  std::vector<Cidr> deny_peers;

  std::uint32_t default_lifetime_s = 600;  // RFC 8656 §3.8
  std::uint32_t max_lifetime_s = 3600;
  std::uint32_t permission_lifetime_s = 300;  // RFC 8656 §9
  std::uint32_t channel_lifetime_s = 600;     // RFC 8656 §12
  std::uint32_t nonce_lifetime_s = 600;
  std::uint32_t user_quota = 10;               // allocations per user, 0 = no limit
  std::uint64_t allocation_bandwidth_bps = 0;  // bytes/s each allocation may relay, 0 = no cap
  std::uint32_t max_allocations = 65536;       // per worker (508 beyond)
  std::uint32_t max_permissions = 64;          // per allocation
  std::uint32_t max_channels = 64;             // per allocation
  // RFC 8656 §12 allows channels 0x4000-0x4FFF; RFC 5766 allowed up to 0x7FFE and deployed
  // clients (coturn's among them) still use that range, so it is accepted unless strict.
  bool strict_channel_numbers = false;
  std::uint32_t unauthorized_per_s = 20;  // 401/438 replies per source IP per second
  std::uint32_t unauthorized_burst = 40;

  void add_user(std::string_view name, std::string_view password);
  // RFC 8656 §21.1 and the TURN SSRF class of bugs: loopback, private, link-local, multicast,
  // 0.0.0.0/8 and their IPv4-mapped forms are refused unless allow_peers admits them.
  bool peer_allowed(const IpAddress& peer) const;
};

// The default deny list (exposed for tests and for printing at start-up).
const std::vector<Cidr>& default_denied_peers();

}  // namespace ringlane::turn
