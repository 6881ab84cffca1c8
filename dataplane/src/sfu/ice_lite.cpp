#include "ringlane/dataplane/sfu/ice_lite.hpp"

#include "ringlane/dataplane/stun/builder.hpp"

namespace ringlane::sfu {

std::optional<std::string_view> local_ufrag(const stun::Message& request) {
  auto username = request.find_string(stun::attr::kUsername);
  if (!username) {
    return std::nullopt;
  }
  auto colon = username->find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  return username->substr(0, colon);
}

Check check_request(const stun::Message& request, std::string_view local_pwd) {
  Check c;
  // RFC 8445 §7.2.2: checks carry MESSAGE-INTEGRITY with the short-term password as key
  // (RFC 8489 §9.1.2) and, in practice always, FINGERPRINT (§5.1.2 of RFC 8445 requires it).
  if (!request.has_integrity() || !request.check_integrity(as_bytes(local_pwd)) ||
      (request.has_fingerprint() && !request.check_fingerprint())) {
    return c;
  }
  c.use_candidate = request.has(stun::attr::kUseCandidate);
  // A lite agent is controlled; a peer that says it is controlled too has a conflict it must
  // resolve by switching to controlling (§7.3.1.1).
  c.result =
      request.has(stun::attr::kIceControlled) ? CheckResult::kRoleConflict : CheckResult::kValid;
  return c;
}

std::size_t write_response(const stun::Message& request, CheckResult result, const Endpoint& from,
                           std::string_view local_pwd, MutableBytes out) {
  bool ok = result == CheckResult::kValid;
  stun::Builder b(out, stun::Method::kBinding, ok ? stun::Class::kSuccess : stun::Class::kError,
                  request.transaction_id());
  if (ok) {
    b.add_xor_address(stun::attr::kXorMappedAddress, from);
  } else {
    b.add_error(487, "Role Conflict");
  }
  b.add_integrity(as_bytes(local_pwd));
  b.add_fingerprint();
  return b.ok() ? b.size() : 0;
}

}  // namespace ringlane::sfu
