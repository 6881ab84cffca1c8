#pragma once
// Ids the orchestrator makes up (private to src/media/): ICE credentials, SSRCs, and the key of a
// worker's session.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringlane/crypto/digest.hpp"

namespace ringlane::control::media {

// ICE credentials (RFC 8839 §5.4: ice-char is ALPHA / DIGIT / "+" / "/"; the ufrag has at least
// 4 characters and the password at least 22): letters and digits only.
inline std::string ice_token(std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::vector<std::uint8_t> bytes(n);
  crypto::random_bytes(bytes);
  std::string out;
  for (auto b : bytes) {
    out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  }
  return out;
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
