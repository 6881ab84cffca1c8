// The policy decoder and the Begin/Chunk/Commit assembler, fed bytes as a broken control
// plane might send them: refused with a reason, never half-applied, never out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ringlane/turn/policy_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  std::string error;
  if (auto p = turn::decode_policy(Bytes(data, size), &error)) {
    // Whatever decodes must encode and decode to the same policy.
    auto again = turn::decode_policy(turn::encode_policy(*p), &error);
    if (!again || again->realm != p->realm || again->users != p->users)
      __builtin_trap();
    (void)p->peer_allowed(*IpAddress::parse("127.0.0.1"));
  }
  if (size < 2)
    return 0;
  turn::PolicyAssembler a;
  a.begin(1, static_cast<std::uint32_t>(data[0]) * 16, error);
  std::size_t step = data[1] % 64 + 1;
  for (std::size_t at = 2; at < size; at += step) {
    a.chunk(Bytes(data + at, std::min(step, size - at)), error);
  }
  (void)a.commit(1, error);
  return 0;
}
