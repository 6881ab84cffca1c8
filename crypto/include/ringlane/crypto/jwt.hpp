#pragma once
// JSON Web Signature with HS256 (RFC 7515 §3.1 compact form, RFC 7518 §3.2): the signing and
// MAC check of a JWT. Claims are JSON and are read by the control plane, which owns a JSON
// library; this layer only splits, decodes and verifies.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/crypto/digest.hpp"

namespace ringlane::crypto {

// RFC 4648 §5 base64url without padding, as JWS uses it (RFC 7515 §2).
std::string base64url_encode(Bytes data);
std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text);

struct JwsParts {
  std::string header_json;
  std::string payload_json;
};

enum class JwsError { kNone, kMalformed, kBadSignature };

// Splits a compact JWS, checks its HS256 MAC against each secret (constant time) and returns
// the decoded header and payload. The caller must still check that the header says HS256.
std::optional<JwsParts> jws_verify_hs256(std::string_view token,
                                         std::span<const std::string> secrets, JwsError& error);

// header {"alg":"HS256","typ":"JWT"} + the given payload, signed with `secret`.
std::string jws_sign_hs256(std::string_view payload_json, std::string_view secret);

}  // namespace ringlane::crypto
