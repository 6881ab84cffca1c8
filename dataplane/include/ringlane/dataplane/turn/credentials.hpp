#pragma once
// Nonces and TURN REST credentials.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/turn/policy.hpp"

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

// TURN REST username "expiry[:user]" -> its Unix expiry, or nullopt when it is not of that form.
std::optional<std::int64_t> rest_username_expiry(std::string_view username);
// The password a REST user has: base64(HMAC-SHA1(secret, username)).
std::string rest_password(std::string_view secret, std::string_view username);

}  // namespace ringlane::turn
