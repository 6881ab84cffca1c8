#pragma once
// Ids the orchestrator makes up (private to src/media/): ICE credentials, SSRCs, and the key of a
// worker's session.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringlane/crypto/digest.hpp"

namespace ringlane::control::media {

// ICE credentials: letters and digits (RFC 8839 §5.4).
inline std::string ice_token(std::size_t n) {
  return crypto::random_alnum(n);
}

inline std::uint32_t random_ssrc() {
  std::uint32_t v = 0;
  while (v == 0) {
    crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof(v)));
  }
  return v;
}

inline std::uint64_t session_key(unsigned worker, std::uint32_t session) {
  return (std::uint64_t{worker} << 32) | session;
}

}  // namespace ringlane::control::media
