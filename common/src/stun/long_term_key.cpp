#include "ringlane/stun/long_term_key.hpp"

#include "ringlane/common/bytes.hpp"
#include "ringlane/crypto/digest.hpp"

namespace ringlane::stun {

std::array<std::uint8_t, 16> long_term_key(std::string_view username, std::string_view realm,
                                           std::string_view password) {
  static constexpr std::uint8_t kColon = ':';
  Bytes colon(&kColon, 1);
  return crypto::md5({as_bytes(username), colon, as_bytes(realm), colon, as_bytes(password)});
}

}  // namespace ringlane::stun
