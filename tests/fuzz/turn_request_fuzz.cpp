// TURN request handlers past authentication: the input's attributes are wrapped into a
// correctly signed request (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY, FINGERPRINT), so the
// fuzzer reaches Allocate/Refresh/CreatePermission/ChannelBind logic rather than the 401.
// Input: [1 byte method selector][1 byte client selector][attribute bytes...]
#include <cstddef>
#include <cstdint>

#include "unit/turn/harness.hpp"

namespace {
using namespace ringlane;
using namespace ringlane::turn;
using namespace ringlane::turn::testing;

constexpr stun::Method kMethods[] = {stun::Method::kAllocate,         stun::Method::kRefresh,
                                     stun::Method::kCreatePermission, stun::Method::kChannelBind,
                                     stun::Method::kBinding,          stun::Method::kSend};

struct World {
  Harness h{[](Policy& p) { p.allow_peers.push_back(*Cidr::parse("127.0.0.0/8")); }};
  std::vector<Client> clients;
  World() {
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back(h, "192.0.2.10:" + std::to_string(5000 + i), i == 3 ? "bob" : "alice",
                           i == 3 ? "bob-pass" : "alice-pass");
      clients.back().allocate();
    }
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* w = new World();
  if (size < 2) {
    return 0;
  }
  stun::Method method = kMethods[data[0] % std::size(kMethods)];
  Client& c = w->clients[data[1] % w->clients.size()];
  Bytes attrs(data + 2, std::min<std::size_t>((size - 2) & ~std::size_t{3}, 1200));
  auto request = c.build(
      method, stun::Class::kRequest, [&](stun::Builder& b) { b.add_raw_attributes(attrs); }, true);
  w->h.from_client(c.addr, request);
  w->h.now.mono_ms += 10;
  if ((data[0] & 0x80) != 0) {
    w->h.now.mono_ms += 400'000;
    w->h.server->on_timer(w->h.now);
    for (auto& cl : w->clients) {
      if (w->h.server->allocation_count() < 4) {
        cl.allocate();
      }
    }
  }
  return 0;
}
