#pragma once
// Nonces for the long-term credential mechanism (TURN REST credentials: turn/rest_credentials.hpp).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlane/common/endpoint.hpp"

namespace ringlane::turn {

// Stateless expiring nonces (RFC 8489 §9.2): the nonce carries its own expiry and a MAC over
// expiry and client address, so no table of issued nonces is kept and a nonce issued to one
// client is worthless to another.
class NonceIssuer {
 public:
  explicit NonceIssuer(std::array<std::uint8_t, 32> secret) : secret_(secret) {}
  std::string issue(const IpAddress& client, std::int64_t unix_now, std::uint32_t lifetime_s) const;
  enum class Check { kValid, kStale, kInvalid };
  Check check(std::string_view nonce, const IpAddress& client, std::int64_t unix_now) const;

 private:
  std::string mac_hex(std::uint32_t expiry, const IpAddress& client) const;
  std::array<std::uint8_t, 32> secret_;
};

}  // namespace ringlane::turn
