#include "ringlane/dataplane/turn/nonce_issuer.hpp"

#include <charconv>
#include <cstdio>

#include "ringlane/common/bytes.hpp"
#include "ringlane/crypto/digest.hpp"

namespace ringlane::turn {
namespace {
constexpr std::string_view kNoncePrefix = "rl1";
constexpr std::size_t kMacHexLen = 24;
}  // namespace

std::string NonceIssuer::mac_hex(std::uint32_t expiry, const IpAddress& client) const {
  std::array<std::uint8_t, 4> e{};
  store_be32(e.data(), expiry);
  auto mac = crypto::hmac_sha1(secret_, {Bytes(e), Bytes(client.bytes.data(), client.size())});
  std::string out;
  out.reserve(kMacHexLen);
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < kMacHexLen / 2; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

std::string NonceIssuer::issue(const IpAddress& client, std::int64_t unix_now,
                               std::uint32_t lifetime_s) const {
  auto expiry = static_cast<std::uint32_t>(unix_now + lifetime_s);
  char head[16];
  std::snprintf(head, sizeof(head), "%08x", expiry);
  return std::string(kNoncePrefix) + head + mac_hex(expiry, client);
}

NonceIssuer::Check NonceIssuer::check(std::string_view nonce, const IpAddress& client,
                                      std::int64_t unix_now) const {
  if (nonce.size() != kNoncePrefix.size() + 8 + kMacHexLen || !nonce.starts_with(kNoncePrefix)) {
    return Check::kInvalid;
  }
  auto hex = nonce.substr(kNoncePrefix.size(), 8);
  std::uint32_t expiry = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), expiry, 16);
  if (ec != std::errc{} || end != hex.data() + hex.size()) {
    return Check::kInvalid;
  }
  auto expected = mac_hex(expiry, client);
  if (!crypto::equal_ct(as_bytes(expected), as_bytes(nonce.substr(kNoncePrefix.size() + 8)))) {
    return Check::kInvalid;
  }
  // An invalid nonce is also answered with 438 and a fresh nonce (RFC 8489 §9.2.4), but it
  // is told apart here so that forgeries can be counted.
  return static_cast<std::int64_t>(expiry) < unix_now ? Check::kStale : Check::kValid;
}

}  // namespace ringlane::turn
