#pragma once
// Hashing helpers shared by STUN, TURN credentials and (later) JWT: the one place where
// OpenSSL's EVP interface is used for MACs and digests.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringlane::crypto {

using Bytes = std::span<const std::uint8_t>;
using Sha1Digest = std::array<std::uint8_t, 20>;
using Sha256Digest = std::array<std::uint8_t, 32>;
using Md5Digest = std::array<std::uint8_t, 16>;

// HMAC over the concatenation of `parts` (STUN MESSAGE-INTEGRITY covers a patched header
// plus the body, so callers pass the pieces instead of copying them together).
Sha1Digest hmac_sha1(Bytes key, std::initializer_list<Bytes> parts);
Sha256Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts);
Md5Digest md5(std::initializer_list<Bytes> parts);

// CRC-32 (ISO-HDLC, the zlib/Ethernet polynomial) as STUN FINGERPRINT needs it.
std::uint32_t crc32(Bytes data);

std::string base64_encode(Bytes data);
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// Constant-time comparison for MACs.
bool equal_ct(Bytes a, Bytes b);

// Cryptographically strong random bytes; aborts if the system RNG fails.
void random_bytes(std::span<std::uint8_t> out);
// `bytes` random bytes as base64 with '+' and '/' replaced: safe in URLs and shells.
std::string random_token(std::size_t bytes);
// `n` random letters and digits: ICE credentials (RFC 8839 §5.4 ice-char, without + and /).
std::string random_alnum(std::size_t n);

}  // namespace ringlane::crypto
