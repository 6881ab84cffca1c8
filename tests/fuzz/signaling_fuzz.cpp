// The signaling parsers fed what a hostile WebSocket client can send: a client message (JSON of
// any shape, depth and encoding) and a join token. Every input is either parsed into a message
// whose fields respect the protocol's bounds, or refused with one of the documented codes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/controlplane/signaling/token.hpp"
#include "ringlane/crypto/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane::control::signaling;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_client_message(text);
  if (auto* m = std::get_if<ClientMessage>(&parsed)) {
    if (m->room.size() > kMaxNameBytes || m->id.size() > 64 || m->token.size() > 4096)
      __builtin_trap();
    if (m->type == ClientType::kJoin && !m->room.empty() && !valid_room_name(m->room))
      __builtin_trap();
  } else {
    auto& e = std::get<ParseError>(parsed);
    if (e.code != "bad_json" && e.code != "bad_message" && e.code != "unknown_type")
      __builtin_trap();
    (void)error_reply(e.code, e.message, false, e.id);
  }
  // The same bytes as a token, and as the claims of a token signed with the right key, so the
  // claim checks behind the signature are reached too.
  static const std::vector<std::string> secrets = {"fuzz-secret-0123456789abcdef"};
  TokenError error;
  (void)verify_token(text, secrets, 1'700'000'000, error);
  std::string token = ringlane::crypto::jws_sign_hs256(text, secrets[0]);
  if (auto grant = verify_token(token, secrets, 1'700'000'000, error)) {
    if (!valid_identity(grant->identity) || !valid_room_name(grant->room))
      __builtin_trap();
  } else if (error.code != "bad_token" && error.code != "token_expired") {
    __builtin_trap();
  }
  return 0;
}
