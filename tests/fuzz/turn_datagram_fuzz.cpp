// The TURN server fed arbitrary datagrams from a client and from a peer, with an allocation,
// a permission and a channel already in place so the relay paths are reachable.
// Input: a sequence of [1 byte: direction/flags][2 bytes: length][bytes].
#include <cstddef>
#include <cstdint>

#include "unit/turn/harness.hpp"

namespace {
using namespace ringlane;
using namespace ringlane::turn;
using namespace ringlane::turn::testing;

struct World {
  Harness h;
  Client c{h, "192.0.2.10:5000", "alice", "alice-pass"};
  Endpoint peer = *Endpoint::parse("198.51.100.7:9000");
  World() {
    c.allocate();
    c.request(stun::Method::kChannelBind, [&](stun::Builder& b) {
      b.add_u32(stun::attr::kChannelNumber, 0x4000u << 16);
      b.add_xor_address(stun::attr::kXorPeerAddress, peer);
    });
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* w = new World();  // one world: state carried across inputs, as in a worker
  std::size_t pos = 0;
  while (size - pos >= 3) {
    std::uint8_t flags = data[pos];
    std::size_t len = std::min<std::size_t>(load_be16(data + pos + 1), size - pos - 3);
    std::vector<std::uint8_t> dgram(data + pos + 3, data + pos + 3 + len);
    pos += 3 + len;
    switch (flags % 4) {
      case 0:
        w->h.from_client(w->c.addr, dgram);
        break;
      case 1:
        w->h.from_client(*Endpoint::parse("192.0.2.11:1"), dgram);
        break;
      case 2:
        w->h.from_peer(SocketId{100}, w->peer, dgram);
        break;
      default:
        w->h.now.mono_ms += flags;
        w->h.server->on_timer(w->h.now);
        break;
    }
  }
  return 0;
}
