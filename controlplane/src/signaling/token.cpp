#include "ringlane/controlplane/signaling/token.hpp"

#include <boost/json.hpp>

#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/crypto/jwt.hpp"

namespace ringlane::control::signaling {
namespace json = boost::json;

namespace {

std::optional<json::object> parse_object(const std::string& text) {
  json::parse_options options;
  options.max_depth = 8;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.get_object());
}

std::optional<std::int64_t> time_claim(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return v->get_int64();
  }
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  if (v->is_double() && v->get_double() > 0 && v->get_double() < 9e15) {
    return static_cast<std::int64_t>(v->get_double());
  }
  return std::nullopt;
}

std::optional<Grant> reject(TokenError& error, const char* code, std::string message) {
  error = TokenError{code, std::move(message)};
  return std::nullopt;
}

}  // namespace

std::optional<Grant> verify_token(std::string_view token, std::span<const std::string> secrets,
                                  std::int64_t now_unix, TokenError& error) {
  crypto::JwsError jws_error;
  auto parts = crypto::jws_verify_hs256(token, secrets, jws_error);
  if (!parts) {
    return reject(error, "bad_token",
                  jws_error == crypto::JwsError::kBadSignature ? "token signature does not verify"
                                                               : "token is not a compact JWS");
  }
  auto header = parse_object(parts->header_json);
  auto claims = parse_object(parts->payload_json);
  if (!header || !claims) {
    return reject(error, "bad_token", "token header or claims are not a JSON object");
  }
  // RFC 8725 §3.1: accept exactly the algorithm we verify with, never what the token names.
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
    return reject(error, "bad_token", "token alg must be HS256");
  }
  const json::value* sub = claims->if_contains("sub");
  const json::value* room = claims->if_contains("room");
  if (sub == nullptr || !sub->is_string() || !valid_identity(sub->get_string())) {
    return reject(error, "bad_token", "token needs \"sub\": the participant identity");
  }
  if (room == nullptr || !room->is_string() || !valid_room_name(room->get_string())) {
    return reject(error, "bad_token", "token needs \"room\": the room it grants");
  }
  auto exp = time_claim(*claims, "exp");
  if (!exp) {
    return reject(error, "bad_token", "token needs \"exp\"");
  }
  if (now_unix > *exp + kTokenLeewaySeconds) {
    return reject(error, "token_expired", "token expired");
  }
  if (auto nbf = time_claim(*claims, "nbf"); nbf && now_unix + kTokenLeewaySeconds < *nbf) {
    return reject(error, "bad_token", "token is not valid yet (nbf)");
  }
  return Grant{std::string(sub->get_string()), std::string(room->get_string()), *exp};
}

std::string issue_token(const Grant& grant, std::string_view secret, std::int64_t now_unix) {
  json::object claims;
  claims["sub"] = grant.identity;
  claims["room"] = grant.room;
  claims["iat"] = now_unix;
  claims["exp"] = grant.expires_at;
  return crypto::jws_sign_hs256(json::serialize(claims), secret);
}

}  // namespace ringlane::control::signaling
