// The ICE-lite check path on what any host can send to the media port: a STUN message is
// parsed, its USERNAME split, its integrity checked against a session password, and a response
// written. A response is only ever written for a check that passed, and it always parses back
// as a signed, fingerprinted Binding response for the same transaction.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlane/dataplane/sfu/ice_lite.hpp"
#include "ringlane/dataplane/stun/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  auto msg = stun::Message::parse(Bytes(data, size));
  if (!msg) {
    return 0;
  }
  if (auto ufrag = sfu::local_ufrag(*msg)) {
    if (ufrag->empty() || ufrag->find(':') != std::string_view::npos) {
      __builtin_trap();
    }
  }
  // The seeds are signed with this password; the fuzzer keeps them valid and mutates around.
  static constexpr std::string_view kPwd = "fuzz-password-0123456789";
  static const Endpoint kFrom[] = {*Endpoint::parse("192.0.2.1:40000"),
                                   *Endpoint::parse("[2001:db8::1]:40000")};
  for (std::string_view pwd : {kPwd, std::string_view("other")}) {
    sfu::Check check = sfu::check_request(*msg, pwd);
    if (check.result == sfu::CheckResult::kBadIntegrity) {
      if (check.use_candidate) {
        __builtin_trap();  // nothing of a refused check may be believed
      }
      continue;
    }
    if (!msg->check_integrity(as_bytes(pwd))) {
      __builtin_trap();
    }
    for (const Endpoint& from : kFrom) {
      std::uint8_t out[256];
      std::size_t n = sfu::write_response(*msg, check.result, from, pwd, out);
      if (n == 0 || n > sizeof(out)) {
        __builtin_trap();
      }
      auto r = stun::Message::parse(Bytes(out, n));
      if (!r || r->transaction_id() != msg->transaction_id() ||
          !r->check_integrity(as_bytes(pwd)) || !r->check_fingerprint()) {
        __builtin_trap();
      }
      bool ok = check.result == sfu::CheckResult::kValid;
      if (r->message_class() != (ok ? stun::Class::kSuccess : stun::Class::kError) ||
          (ok && r->find_xor_address(stun::attr::kXorMappedAddress) != from)) {
        __builtin_trap();
      }
      // Too small a buffer must write nothing sendable, never past its end.
      if (sfu::write_response(*msg, check.result, from, pwd, std::span(out, n - 1)) != 0) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
