#include "ringlane/crypto/jwt.hpp"

namespace ringlane::crypto {
namespace {

Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::optional<std::string> decode_text(std::string_view part) {
  auto raw = base64url_decode(part);
  if (!raw) {
    return std::nullopt;
  }
  return std::string(raw->begin(), raw->end());
}

}  // namespace

std::string base64url_encode(Bytes data) {
  std::string s = base64_encode(data);
  while (!s.empty() && s.back() == '=') {
    s.pop_back();
  }
  for (char& c : s) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return s;
}

std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string s;
  s.reserve(text.size() + 3);
  for (char c : text) {
    // Only the url-safe alphabet: '+', '/' and '=' are not part of base64url (RFC 7515 §2).
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) {
      return std::nullopt;
    }
    s.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  while (s.size() % 4 != 0) {
    s.push_back('=');
  }
  return base64_decode(s);
}

std::optional<JwsParts> jws_verify_hs256(std::string_view token,
                                         std::span<const std::string> secrets, JwsError& error) {
  error = JwsError::kMalformed;
  auto first = token.find('.');
  if (first == std::string_view::npos) {
    return std::nullopt;
  }
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view signing_input = token.substr(0, second);
  auto mac = base64url_decode(token.substr(second + 1));
  auto header = decode_text(token.substr(0, first));
  auto payload = decode_text(token.substr(first + 1, second - first - 1));
  if (!mac || !header || !payload || mac->size() != 32) {
    return std::nullopt;
  }
  error = JwsError::kBadSignature;
  for (const auto& secret : secrets) {
    auto expected = hmac_sha256(as_bytes(secret), {as_bytes(signing_input)});
    if (equal_ct(expected, *mac)) {
      error = JwsError::kNone;
      return JwsParts{std::move(*header), std::move(*payload)};
    }
  }
  return std::nullopt;
}

std::string jws_sign_hs256(std::string_view payload_json, std::string_view secret) {
  std::string input = base64url_encode(as_bytes(R"({"alg":"HS256","typ":"JWT"})")) + "." +
                      base64url_encode(as_bytes(payload_json));
  auto mac = hmac_sha256(as_bytes(secret), {as_bytes(input)});
  return input + "." + base64url_encode(mac);
}

}  // namespace ringlane::crypto
