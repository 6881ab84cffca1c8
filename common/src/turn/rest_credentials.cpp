#include "ringlane/turn/rest_credentials.hpp"

#include <charconv>

#include "ringlane/common/bytes.hpp"
#include "ringlane/crypto/digest.hpp"

namespace ringlane::turn {

std::optional<std::int64_t> rest_username_expiry(std::string_view username) {
  auto colon = username.find(':');
  auto digits = username.substr(0, colon);
  std::int64_t expiry = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), expiry);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return expiry;
}

std::string rest_password(std::string_view secret, std::string_view username) {
  auto mac = crypto::hmac_sha1(as_bytes(secret), {as_bytes(username)});
  return crypto::base64_encode(mac);
}

}  // namespace ringlane::turn
