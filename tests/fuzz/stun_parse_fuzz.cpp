// STUN parser: any bytes either parse into a view whose every accessor stays in bounds, or
// are refused with a reason.
#include <cstddef>
#include <cstdint>

#include "ringlane/dataplane/stun/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  stun::ParseError error{};
  auto m = stun::Message::parse(Bytes(data, size), &error);
  if (!m) {
    (void)stun::to_string(error);
    return 0;
  }
  (void)m->check_fingerprint();
  (void)m->check_integrity(as_bytes("key"));
  for (std::uint16_t type : {stun::attr::kXorMappedAddress, stun::attr::kXorPeerAddress,
                             stun::attr::kXorRelayedAddress}) {
    (void)m->find_xor_address(type);
  }
  (void)stun::decode_address(m->find(stun::attr::kMappedAddress).value_or(Bytes{}));
  (void)m->find_u32(stun::attr::kLifetime);
  (void)m->find_string(stun::attr::kUsername);
  std::uint16_t unknown[8];
  (void)m->unknown_required(unknown);
  std::size_t peers = 0;
  m->for_each(stun::attr::kXorPeerAddress, [&](Bytes v) { peers += v.size(); });
  return 0;
}
