#pragma once
// TURN REST credentials (coturn's use-auth-secret): the control plane hands them out, the data
// plane's TURN server checks them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringlane::turn {

// TURN REST username "expiry[:user]" -> its Unix expiry, or nullopt when it is not of that form.
std::optional<std::int64_t> rest_username_expiry(std::string_view username);
// The password a REST user has: base64(HMAC-SHA1(secret, username)).
std::string rest_password(std::string_view secret, std::string_view username);

}  // namespace ringlane::turn
