#pragma once
// The STUN long-term credential key, computed where a user is configured (turn::Policy) and
// where a TURN REST user is checked (the data plane).
#include <array>
#include <cstdint>
#include <string_view>

namespace ringlane::stun {

// MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
std::array<std::uint8_t, 16> long_term_key(std::string_view username, std::string_view realm,
                                           std::string_view password);

}  // namespace ringlane::stun
