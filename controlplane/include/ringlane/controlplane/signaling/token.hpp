#pragma once
// Join tokens: JWTs signed HS256 by the application's backend (or by POST /api/join-token) that
// grant one identity one room until an expiry, as LiveKit's access tokens do.
//   {"sub": identity, "room": room, "exp": unix seconds[, "nbf": unix seconds][, "iat": ..]}
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ringlane::control::signaling {

struct Grant {
  std::string identity;
  std::string room;
  std::int64_t expires_at = 0;  // unix seconds
};

struct TokenError {
  std::string code;  // bad_token | token_expired
  std::string message;
};

// Clock skew tolerated on exp/nbf (RFC 7519 §4.1.4 allows "some small leeway").
inline constexpr std::int64_t kTokenLeewaySeconds = 10;

std::optional<Grant> verify_token(std::string_view token, std::span<const std::string> secrets,
                                  std::int64_t now_unix, TokenError& error);

std::string issue_token(const Grant& grant, std::string_view secret, std::int64_t now_unix);

}  // namespace ringlane::control::signaling
