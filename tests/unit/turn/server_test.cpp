// The TURN core driven directly: every RFC 8656 error path the server answers, and the relay
// paths checked for bytes on the wire and for payloads that never moved.
#include "ringlane/dataplane/turn/server.hpp"
#include "ringlane/turn/rest_credentials.hpp"

#include <gtest/gtest.h>

#include "unit/turn/harness.hpp"

namespace ringlane::turn::testing {
namespace {
namespace attr = stun::attr;
using stun::Class;
using stun::Method;

const Endpoint kPeer = *Endpoint::parse("198.51.100.7:9000");

Client::Attrs peer_attr(const Endpoint& peer) {
  return [peer](stun::Builder& b) { b.add_xor_address(attr::kXorPeerAddress, peer); };
}
Client::Attrs channel_attrs(std::uint16_t number, const Endpoint& peer) {
  return [=](stun::Builder& b) {
    b.add_u32(attr::kChannelNumber, std::uint32_t{number} << 16);
    b.add_xor_address(attr::kXorPeerAddress, peer);
  };
}

TEST(TurnAuth, RequestWithoutCredentialsIsChallenged) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  Out out = h.from_client(c.addr, c.build(Method::kAllocate, Class::kRequest, {}, false));
  ASSERT_TRUE(out.decision.send);
  EXPECT_EQ(out.decision.socket, Harness::kListener);
  EXPECT_EQ(out.decision.to, c.addr);
  EXPECT_EQ(out.error_code(), 401);
  auto m = out.message();
  EXPECT_EQ(m->find_string(attr::kRealm), "ringlane.test");
  EXPECT_TRUE(m->has(attr::kNonce));
  EXPECT_FALSE(m->has_integrity());
  EXPECT_TRUE(m->check_fingerprint());
  EXPECT_EQ(h.server->counters().auth_challenges, 1u);
}

TEST(TurnAllocate, SucceedsWithLongTermCredentials) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  Out out = c.allocate();
  ASSERT_EQ(out.error_code(), 0);
  auto m = out.message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message_class(), Class::kSuccess);
  EXPECT_TRUE(m->check_integrity(stun::long_term_key("alice", "ringlane.test", "alice-pass")));
  auto relayed = m->find_xor_address(attr::kXorRelayedAddress);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->to_string(), "203.0.113.5:50000");
  EXPECT_EQ(m->find_u32(attr::kLifetime), 600u);
  EXPECT_EQ(m->find_xor_address(attr::kXorMappedAddress), c.addr);
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(TurnAllocate, LifetimeIsClampedToMaximum) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  Out out = c.allocate([](stun::Builder& b) { b.add_u32(attr::kLifetime, 100000); });
  EXPECT_EQ(out.message()->find_u32(attr::kLifetime), 3600u);
}

TEST(TurnAuth, WrongPasswordUnknownUserAndStaleNonce) {
  Harness h;
  Client wrong(h, "192.0.2.10:5000", "alice", "not-her-password");
  EXPECT_EQ(wrong.allocate().error_code(), 401);
  Client nobody(h, "192.0.2.11:5000", "mallory", "x");
  EXPECT_EQ(nobody.allocate().error_code(), 401);
  EXPECT_EQ(h.server->counters().auth_failures, 2u);

  Client c(h, "192.0.2.12:5000", "alice", "alice-pass");
  c.allocate();  // learns a nonce
  h.now.unix_s += 601;
  Out stale = c.request(Method::kRefresh, {});
  EXPECT_EQ(stale.error_code(), 438);
  auto fresh = std::string(stale.message()->find_string(attr::kNonce).value());
  EXPECT_NE(fresh, c.nonce);
  c.nonce = fresh;
  EXPECT_EQ(c.request(Method::kRefresh, {}).error_code(), 0);
}

TEST(TurnAuth, NonceIsBoundToTheClientAddress) {
  Harness h;
  Client a(h, "192.0.2.10:5000", "alice", "alice-pass");
  a.allocate();
  Client b(h, "192.0.2.99:5000", "bob", "bob-pass");
  b.realm = a.realm;
  b.nonce = a.nonce;  // replayed from another address
  EXPECT_EQ(b.allocate().error_code(), 438);
}

TEST(TurnAuth, MissingUsernameIsBadRequest) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  auto req = c.build(
      Method::kAllocate, Class::kRequest,
      [](stun::Builder& b) {
        b.add_u32(attr::kRequestedTransport, 17u << 24);
        b.add_integrity(as_bytes("k"));
      },
      false);
  EXPECT_EQ(h.from_client(c.addr, req).error_code(), 400);
}

TEST(TurnAuth, RestCredentialsLikeCoturnUseAuthSecret) {
  Harness h;
  std::string user = std::to_string(h.now.unix_s + 3600) + ":carol";
  Client ok(h, "192.0.2.10:5000", user, rest_password("rest-secret", user));
  EXPECT_EQ(ok.allocate().error_code(), 0);

  std::string expired = std::to_string(h.now.unix_s - 1) + ":carol";
  Client late(h, "192.0.2.11:5000", expired, rest_password("rest-secret", expired));
  EXPECT_EQ(late.allocate().error_code(), 401);

  Client forged(h, "192.0.2.12:5000", user, rest_password("other-secret", user));
  EXPECT_EQ(forged.allocate().error_code(), 401);
}

TEST(TurnAuth, UnauthorizedRepliesAreRateLimitedPerSource) {
  Harness h([](Policy& p) {
    p.unauthorized_per_s = 1;
    p.unauthorized_burst = 3;
  });
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  int answered = 0;
  for (int i = 0; i < 10; ++i) {
    answered +=
        h.from_client(c.addr, c.build(Method::kAllocate, Class::kRequest, {}, false)).decision.send
            ? 1
            : 0;
  }
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(h.server->counters().dropped(Drop::kRateLimited), 7u);
  Client other(h, "192.0.2.77:5000", "alice", "alice-pass");
  EXPECT_TRUE(h.from_client(other.addr, other.build(Method::kAllocate, Class::kRequest, {}, false))
                  .decision.send);
  h.now.mono_ms += 1000;
  EXPECT_TRUE(
      h.from_client(c.addr, c.build(Method::kAllocate, Class::kRequest, {}, false)).decision.send);
}

TEST(TurnAllocate, ErrorCodes) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  // 400: no REQUESTED-TRANSPORT.
  EXPECT_EQ(c.request(Method::kAllocate, {}).error_code(), 400);
  // 442: TCP.
  EXPECT_EQ(c.request(Method::kAllocate,
                      [](stun::Builder& b) { b.add_u32(attr::kRequestedTransport, 6u << 24); })
                .error_code(),
            442);
  // 440: unknown address family.
  EXPECT_EQ(c.allocate([](stun::Builder& b) {
               b.add_u32(attr::kRequestedAddressFamily, 0x03u << 24);
             }).error_code(),
            440);
  // 420: an unknown comprehension-required attribute, listed back.
  Out unknown = c.allocate([](stun::Builder& b) { b.add_u32(0x7777, 1); });
  EXPECT_EQ(unknown.error_code(), 420);
  auto list = unknown.message()->find(attr::kUnknownAttributes);
  ASSERT_TRUE(list);
  EXPECT_EQ(load_be16(list->data()), 0x7777);
  // 508: no relay port.
  h.ports.exhausted = true;
  EXPECT_EQ(c.allocate().error_code(), 508);
  h.ports.exhausted = false;
  // Success, then 437 for a second Allocate on the same 5-tuple.
  Out first = c.allocate();
  ASSERT_EQ(first.error_code(), 0);
  EXPECT_EQ(c.allocate().error_code(), 437);
}

TEST(TurnAllocate, RetransmissionGetsTheSameRelay) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  Out first = c.allocate();
  c.keep_tid = true;
  Out again = c.allocate();
  ASSERT_EQ(again.error_code(), 0);
  EXPECT_EQ(again.message()->find_xor_address(attr::kXorRelayedAddress),
            first.message()->find_xor_address(attr::kXorRelayedAddress));
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(TurnAllocate, UserQuotaGives486) {
  Harness h([](Policy& p) { p.user_quota = 2; });
  Client a(h, "192.0.2.10:5000", "alice", "alice-pass");
  Client b(h, "192.0.2.10:5001", "alice", "alice-pass");
  Client c(h, "192.0.2.10:5002", "alice", "alice-pass");
  Client bob(h, "192.0.2.10:5003", "bob", "bob-pass");
  EXPECT_EQ(a.allocate().error_code(), 0);
  EXPECT_EQ(b.allocate().error_code(), 0);
  EXPECT_EQ(c.allocate().error_code(), 486);
  EXPECT_EQ(bob.allocate().error_code(), 0);
  EXPECT_EQ(h.server->counters().quota_rejections, 1u);
  // Freeing one gives the slot back.
  EXPECT_EQ(a.request(Method::kRefresh, [](stun::Builder& bb) { bb.add_u32(attr::kLifetime, 0); })
                .error_code(),
            0);
  EXPECT_EQ(c.allocate().error_code(), 0);
}

TEST(TurnAllocate, EvenPortReservationToken) {
  Harness h;
  Client a(h, "192.0.2.10:5000", "alice", "alice-pass");
  h.ports.next_port = 50001;
  Out first = a.allocate([](stun::Builder& b) {
    std::uint8_t r = 0x80;
    b.add_bytes(attr::kEvenPort, Bytes(&r, 1));
  });
  ASSERT_EQ(first.error_code(), 0);
  auto m = first.message();
  EXPECT_EQ(m->find_xor_address(attr::kXorRelayedAddress)->port, 50002);
  auto token = m->find(attr::kReservationToken);
  ASSERT_TRUE(token);
  std::vector<std::uint8_t> token_bytes(token->begin(), token->end());

  Client b(h, "192.0.2.10:5001", "alice", "alice-pass");
  Out second =
      b.allocate([&](stun::Builder& bb) { bb.add_bytes(attr::kReservationToken, token_bytes); });
  ASSERT_EQ(second.error_code(), 0);
  EXPECT_EQ(second.message()->find_xor_address(attr::kXorRelayedAddress)->port, 50003);
  // A token is good once.
  Client c(h, "192.0.2.10:5002", "alice", "alice-pass");
  EXPECT_EQ(c.allocate([&](stun::Builder& bb) {
               bb.add_bytes(attr::kReservationToken, token_bytes);
             }).error_code(),
            508);
}

TEST(TurnAllocate, DontFragmentReachesTheRelaySocket) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate([](stun::Builder& b) { b.add_bytes(attr::kDontFragment, {}); }).error_code(),
            0);
  EXPECT_TRUE(h.ports.last_dont_fragment);
}

TEST(TurnPermission, PrivateAndLoopbackPeersAreForbidden) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  for (const char* peer : {"127.0.0.1:80", "10.1.2.3:80", "192.168.1.1:80", "172.16.0.1:80",
                           "169.254.169.254:80", "0.1.2.3:80", "224.0.0.1:80", "100.64.0.1:80"}) {
    EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse(peer))).error_code(),
              403)
        << peer;
    EXPECT_EQ(
        c.request(Method::kChannelBind, channel_attrs(0x4000, *Endpoint::parse(peer))).error_code(),
        403)
        << peer;
  }
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(kPeer)).error_code(), 0);
  EXPECT_EQ(h.server->counters().forbidden_peers, 16u);
}

TEST(TurnPermission, Ipv6DenyListIncludingMappedForms) {
  Harness h;
  Client c(h, "[2001:db8::10]:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate([](stun::Builder& b) {
               b.add_u32(attr::kRequestedAddressFamily, 0x02u << 24);
             }).error_code(),
            0);
  for (const char* peer : {"[::1]:80", "[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:80",
                           "[fe80::1]:80", "[fd00::1]:80", "[ff02::1]:80", "[64:ff9b::a00:1]:80"}) {
    EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse(peer))).error_code(),
              403)
        << peer;
  }
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse("[2001:db8:1::9]:80")))
                .error_code(),
            0);
  // 443: an IPv4 peer on an IPv6 relay.
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(kPeer)).error_code(), 443);
}

TEST(TurnPermission, AllowListAdmitsLoopback) {
  Harness h([](Policy& p) { p.allow_peers.push_back(*Cidr::parse("127.0.0.0/8")); });
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse("127.0.0.1:80")))
                .error_code(),
            0);
  EXPECT_EQ(
      c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse("10.0.0.1:80"))).error_code(),
      403);
}

// The node's own SFU media ports are peers the deny list would refuse (here loopback): those
// ports of that IP and nothing else there.
TEST(TurnPermission, OwnMediaPortsOnlyOfADeniedIp) {
  Harness h({}, [](ServerConfig& cfg) {
    cfg.own_media_ips = {*IpAddress::parse("127.0.0.1")};
    cfg.own_media_port_min = 7882;
    cfg.own_media_port_max = 7883;
  });
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  auto media = *Endpoint::parse("127.0.0.1:7883");
  auto other = *Endpoint::parse("127.0.0.1:6379");
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(media)).error_code(), 0);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4000, other)).error_code(), 403);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4001, media)).error_code(), 0);
  EXPECT_EQ(
      c.request(Method::kChannelBind, channel_attrs(0x4002, *Endpoint::parse("127.0.0.1:7884")))
          .error_code(),
      403);
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse("10.0.0.1:7882")))
                .error_code(),
            403);
  auto send_to = [&](const Endpoint& to) {
    return c.build(
        Method::kSend, Class::kIndication,
        [&](stun::Builder& b) {
          b.add_xor_address(attr::kXorPeerAddress, to);
          b.add_string(attr::kData, "abc");
        },
        false, false);
  };
  // The IP's permission exists, yet only the media ports get data.
  EXPECT_FALSE(h.from_client(c.addr, send_to(other)).decision.send);
  Out to_media = h.from_client(c.addr, send_to(media));
  ASSERT_TRUE(to_media.decision.send);
  EXPECT_EQ(to_media.decision.to, media);
  EXPECT_EQ(h.server->counters().dropped(Drop::kNoPermission), 1u);
}

// Without an SFU (no media ports) nothing changes: loopback stays forbidden.
TEST(TurnPermission, NoOwnMediaPortsNoException) {
  Harness h({}, [](ServerConfig& cfg) { cfg.own_media_ips = {*IpAddress::parse("127.0.0.1")}; });
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(*Endpoint::parse("127.0.0.1:7882")))
                .error_code(),
            403);
}

TEST(TurnRequests, WithoutAllocationIs437AndOtherUserIs441) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  EXPECT_EQ(c.request(Method::kRefresh, {}).error_code(), 437);
  EXPECT_EQ(c.request(Method::kCreatePermission, peer_attr(kPeer)).error_code(), 437);
  ASSERT_EQ(c.allocate().error_code(), 0);
  Client intruder(h, "192.0.2.10:5000", "bob", "bob-pass");  // same 5-tuple, other user
  EXPECT_EQ(intruder.request(Method::kRefresh, {}).error_code(), 441);
}

TEST(TurnRelay, ChannelDataBothWaysWithoutCopying) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  Out alloc = c.allocate();
  ASSERT_EQ(alloc.error_code(), 0);
  ASSERT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4001, kPeer)).error_code(), 0);
  SocketId relay{100};

  std::vector<std::uint8_t> cd = {0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
  Out to_peer = h.from_client(c.addr, cd);
  ASSERT_TRUE(to_peer.decision.send);
  EXPECT_EQ(to_peer.decision.socket, relay);
  EXPECT_EQ(to_peer.decision.to, kPeer);
  EXPECT_EQ(std::string(to_peer.bytes.begin(), to_peer.bytes.end()), "hello");
  EXPECT_EQ(to_peer.data, h.slot_payload() + 4);  // the payload was not moved

  std::vector<std::uint8_t> reply = {'w', 'o', 'r', 'l', 'd', '!'};
  Out to_client = h.from_peer(relay, kPeer, reply);
  ASSERT_TRUE(to_client.decision.send);
  EXPECT_EQ(to_client.decision.socket, Harness::kListener);
  EXPECT_EQ(to_client.decision.to, c.addr);
  std::vector<std::uint8_t> expected = {0x40, 0x01, 0x00, 0x06, 'w', 'o', 'r', 'l', 'd', '!'};
  EXPECT_EQ(to_client.bytes, expected);
  EXPECT_EQ(to_client.data, h.slot_payload() - 4);  // header prepended in the headroom
  EXPECT_EQ(h.server->counters().relayed_to_peer, 1u);
  EXPECT_EQ(h.server->counters().relayed_to_client, 1u);
}

TEST(TurnRelay, SendAndDataIndications) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  auto send = c.build(
      Method::kSend, Class::kIndication,
      [](stun::Builder& b) {
        b.add_xor_address(attr::kXorPeerAddress, kPeer);
        b.add_string(attr::kData, "abc");
      },
      false, false);
  // No permission yet: dropped and counted, no reply.
  EXPECT_FALSE(h.from_client(c.addr, send).decision.send);
  EXPECT_EQ(h.server->counters().dropped(Drop::kNoPermission), 1u);

  ASSERT_EQ(c.request(Method::kCreatePermission, peer_attr(kPeer)).error_code(), 0);
  Out to_peer = h.from_client(c.addr, send);
  ASSERT_TRUE(to_peer.decision.send);
  EXPECT_EQ(std::string(to_peer.bytes.begin(), to_peer.bytes.end()), "abc");

  std::vector<std::uint8_t> payload = {1, 2, 3, 4, 5};
  Out data = h.from_peer(SocketId{100}, kPeer, payload);
  ASSERT_TRUE(data.decision.send);
  auto m = data.message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::kData);
  EXPECT_EQ(m->message_class(), Class::kIndication);
  EXPECT_EQ(m->find_xor_address(attr::kXorPeerAddress), kPeer);
  auto d = m->find(attr::kData);
  ASSERT_TRUE(d);
  EXPECT_EQ(std::vector<std::uint8_t>(d->begin(), d->end()), payload);
  EXPECT_EQ(d->data() - data.bytes.data() + data.data, h.slot_payload());  // payload stayed put

  // A peer without permission is dropped.
  EXPECT_FALSE(
      h.from_peer(SocketId{100}, *Endpoint::parse("198.51.100.8:9000"), payload).decision.send);
}

TEST(TurnRelay, ChannelRules) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x3FFF, kPeer)).error_code(), 400);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x7FFF, kPeer)).error_code(), 400);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x8000, kPeer)).error_code(), 400);
  ASSERT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4000, kPeer)).error_code(), 0);
  // Rebinding the same pair refreshes; a different peer on the channel, or a second channel
  // for the peer, is refused.
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4000, kPeer)).error_code(), 0);
  EXPECT_EQ(
      c.request(Method::kChannelBind, channel_attrs(0x4000, *Endpoint::parse("198.51.100.8:1")))
          .error_code(),
      400);
  EXPECT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4002, kPeer)).error_code(), 400);
  // ChannelData on an unbound channel, and one whose length lies, are dropped.
  EXPECT_FALSE(h.from_client(c.addr, {0x40, 0x07, 0, 1, 'x', 0, 0, 0}).decision.send);
  EXPECT_FALSE(h.from_client(c.addr, {0x40, 0x00, 0, 9, 'x'}).decision.send);
  EXPECT_EQ(h.server->counters().dropped(Drop::kNoChannel), 1u);
  EXPECT_EQ(h.server->counters().dropped(Drop::kChannelMalformed), 1u);
}

TEST(TurnRelay, LegacyChannelRangeUnlessStrict) {
  const Endpoint peer2 = *Endpoint::parse("198.51.100.9:9000");
  Harness lax;
  Client a(lax, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(a.allocate().error_code(), 0);
  EXPECT_EQ(a.request(Method::kChannelBind, channel_attrs(0x7FFE, peer2)).error_code(), 0);
  EXPECT_TRUE(lax.from_client(a.addr, {0x7F, 0xFE, 0, 1, 'x'}).decision.send);

  Harness strict([](Policy& p) { p.strict_channel_numbers = true; });
  Client b(strict, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(b.allocate().error_code(), 0);
  EXPECT_EQ(b.request(Method::kChannelBind, channel_attrs(0x5000, peer2)).error_code(), 400);
  EXPECT_EQ(b.request(Method::kChannelBind, channel_attrs(0x4FFF, peer2)).error_code(), 0);
}

TEST(TurnLifetimes, PermissionsChannelsAndAllocationsExpire) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  ASSERT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4000, kPeer)).error_code(), 0);
  std::vector<std::uint8_t> cd = {0x40, 0x00, 0x00, 0x01, 'x'};
  EXPECT_TRUE(h.from_client(c.addr, cd).decision.send);
  // Permission lasts 300 s: after that the channel's data stops.
  h.now.mono_ms += 301'000;
  h.server->on_timer(h.now);
  EXPECT_FALSE(h.from_client(c.addr, cd).decision.send);
  EXPECT_EQ(h.server->counters().permissions, 0u);
  EXPECT_EQ(h.server->counters().channels, 1u);
  // The allocation (600 s) expires and its relay socket is closed.
  h.now.mono_ms += 300'000;
  h.server->on_timer(h.now);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_TRUE(h.ports.open_sockets.empty());
  EXPECT_EQ(h.server->counters().allocations_expired, 1u);
}

TEST(TurnLifetimes, RefreshZeroDeletes) {
  Harness h;
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  Out out = c.request(Method::kRefresh, [](stun::Builder& b) { b.add_u32(attr::kLifetime, 0); });
  ASSERT_EQ(out.error_code(), 0);
  EXPECT_EQ(out.message()->find_u32(attr::kLifetime), 0u);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_TRUE(h.ports.open_sockets.empty());
  EXPECT_EQ(c.request(Method::kRefresh, {}).error_code(), 437);
}

TEST(TurnBandwidth, CapDropsExcessAndRefills) {
  Harness h([](Policy& p) { p.allocation_bandwidth_bps = 1000; });
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  ASSERT_EQ(c.allocate().error_code(), 0);
  ASSERT_EQ(c.request(Method::kChannelBind, channel_attrs(0x4000, kPeer)).error_code(), 0);
  std::vector<std::uint8_t> cd(4 + 400, 0);
  cd[0] = 0x40;
  cd[2] = 0x01;
  cd[3] = 0x90;  // 400 bytes
  int sent = 0;
  for (int i = 0; i < 5; ++i)
    sent += h.from_client(c.addr, cd).decision.send ? 1 : 0;
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(h.server->counters().dropped(Drop::kBandwidthCap), 3u);
  h.now.mono_ms += 1000;
  EXPECT_TRUE(h.from_client(c.addr, cd).decision.send);
}

TEST(TurnBinding, AnsweredWithoutAuth) {
  Harness h;
  Client c(h, "[2001:db8::10]:6000", "alice", "alice-pass");
  Out out = h.from_client(c.addr, c.build(Method::kBinding, Class::kRequest, {}, false));
  ASSERT_TRUE(out.decision.send);
  auto m = out.message();
  EXPECT_EQ(m->message_class(), Class::kSuccess);
  EXPECT_EQ(m->find_xor_address(attr::kXorMappedAddress), c.addr);
  EXPECT_TRUE(m->check_fingerprint());
}

TEST(TurnMalformed, GarbageIsCountedNeverAnswered) {
  Harness h;
  Endpoint from = *Endpoint::parse("192.0.2.10:5000");
  EXPECT_FALSE(h.from_client(from, {}).decision.send);
  EXPECT_FALSE(h.from_client(from, {1, 2}).decision.send);
  EXPECT_FALSE(h.from_client(from, {0xff, 0xff, 0xff, 0xff, 0}).decision.send);
  EXPECT_FALSE(h.from_client(from, std::vector<std::uint8_t>(40, 0)).decision.send);
  // A valid header with a broken fingerprint.
  Client c(h, "192.0.2.10:5000", "alice", "alice-pass");
  auto req = c.build(Method::kBinding, Class::kRequest, {}, false);
  req.back() ^= 1;
  EXPECT_FALSE(h.from_client(from, req).decision.send);
  // An unsolicited response.
  auto resp = c.build(Method::kBinding, Class::kSuccess, {}, false);
  EXPECT_FALSE(h.from_client(from, resp).decision.send);
  const auto& k = h.server->counters();
  EXPECT_EQ(k.dropped(Drop::kTooShort), 2u);
  EXPECT_EQ(k.dropped(Drop::kNotTurn), 1u);
  EXPECT_EQ(k.dropped(Drop::kStunMalformed), 1u);
  EXPECT_EQ(k.dropped(Drop::kBadFingerprint), 1u);
  EXPECT_EQ(k.dropped(Drop::kUnexpectedClass), 1u);
  // Peer traffic to a relay with no allocation.
  EXPECT_FALSE(h.from_peer(SocketId{555}, kPeer, {1, 2, 3}).decision.send);
  EXPECT_EQ(k.dropped(Drop::kNoAllocation), 1u);
}

}  // namespace
}  // namespace ringlane::turn::testing
