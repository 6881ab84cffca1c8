#pragma once
// The ICE-lite side of a connectivity check (RFC 8445 §2.5, §7.3): a lite agent is always
// controlled, answers Binding requests signed with its short-term password and never sends
// checks itself. Sans-I/O: a parsed request in, a response written into a caller's buffer out.
#include <cstdint>
#include <optional>
#include <string_view>

#include "ringlane/common/bytes.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/stun/message.hpp"

namespace ringlane::sfu {

// The local half of USERNAME ("local:remote", RFC 8445 §7.2.2): the key that finds a session.
std::optional<std::string_view> local_ufrag(const stun::Message& request);

enum class CheckResult : std::uint8_t {
  kValid,         // answer with a success response
  kRoleConflict,  // answer 487: the peer claims to be controlled too (§7.3.1.1)
  kBadIntegrity,  // drop: no or wrong MESSAGE-INTEGRITY / FINGERPRINT
};

struct Check {
  CheckResult result = CheckResult::kBadIntegrity;
  bool use_candidate = false;  // the controlling peer nominates this pair (§7.3.1.5)
};

// Checks a Binding request addressed to a session whose password is `local_pwd`.
Check check_request(const stun::Message& request, std::string_view local_pwd);

// Writes the response (success with XOR-MAPPED-ADDRESS, or 487) into `out`, signed with
// `local_pwd` and FINGERPRINTed; returns its length, 0 when `out` is too small.
std::size_t write_response(const stun::Message& request, CheckResult result, const Endpoint& from,
                           std::string_view local_pwd, MutableBytes out);

}  // namespace ringlane::sfu
