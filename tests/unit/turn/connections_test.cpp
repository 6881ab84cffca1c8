// The TURN-over-TCP connection table on its own: limits (total, per IP across tables), and the
// timers (first message, a frame left partial, idle without an allocation).
#include "ringlane/dataplane/turn/connections.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ringlane::turn {
namespace {

Endpoint ep(std::uint8_t last, std::uint16_t port) {
  return Endpoint{IpAddress::v4(10, 0, 0, last), port};
}

struct Fixture {
  StreamFramerCounters framer;
  StreamCounters counters;
  std::shared_ptr<ConnectionsPerIp> per_ip = std::make_shared<ConnectionsPerIp>();
  ConnectionLimits limits() {
    ConnectionLimits l;
    l.max_connections = 3;
    l.max_per_ip = 2;
    l.handshake_timeout_ms = 1000;
    l.idle_timeout_ms = 5000;
    return l;
  }
};

std::vector<SocketId> expired(ConnectionTable& t, std::uint64_t now, bool allocated = false) {
  std::vector<SocketId> out;
  t.expire(
      now, [&](const Connection&) { return allocated; },
      [&](Connection& c) { out.push_back(c.id); });
  return out;
}

TEST(ConnectionTable, LimitsPerIpAndTotalAreCountedAndFreedOnErase) {
  Fixture f;
  ConnectionTable t(f.limits(), f.per_ip, f.framer, f.counters);
  ASSERT_EQ(t.admit(ep(1, 1), 0), ConnectionTable::Admit::kOk);
  t.insert(SocketId{5}, ep(1, 1), 0);
  ASSERT_EQ(t.admit(ep(1, 2), 0), ConnectionTable::Admit::kOk);
  t.insert(SocketId{6}, ep(1, 2), 0);
  EXPECT_EQ(t.admit(ep(1, 3), 0), ConnectionTable::Admit::kPerIp);
  EXPECT_EQ(f.counters.refused_per_ip, 1u);
  ASSERT_EQ(t.admit(ep(2, 1), 0), ConnectionTable::Admit::kOk);
  t.insert(SocketId{7}, ep(2, 1), 0);
  EXPECT_EQ(t.admit(ep(3, 1), 0), ConnectionTable::Admit::kTotal);
  EXPECT_EQ(f.counters.refused_total, 1u);
  EXPECT_EQ(f.counters.active, 3u);
  t.erase(SocketId{5});
  EXPECT_EQ(f.per_ip->count(IpAddress::v4(10, 0, 0, 1)), 1u);
  EXPECT_EQ(t.admit(ep(1, 4), 0), ConnectionTable::Admit::kOk);
  t.refund(ep(1, 4));
  EXPECT_EQ(f.per_ip->count(IpAddress::v4(10, 0, 0, 1)), 1u);
}

TEST(ConnectionTable, NewConnectionsPerIpAreRateLimitedWithABurst) {
  Fixture f;
  ConnectionLimits l = f.limits();
  l.max_connections = 100;
  l.max_per_ip = 0;
  l.accept_rate = 10;  // bursts of 20
  ConnectionTable t(l, f.per_ip, f.framer, f.counters);
  std::uint16_t port = 1;
  auto open_close = [&](std::uint8_t ip, std::uint64_t now) {
    auto admit = t.admit(ep(ip, port), now);
    if (admit == ConnectionTable::Admit::kOk) {
      t.insert(SocketId{port}, ep(ip, port), now);
      t.erase(SocketId{port});
    }
    ++port;
    return admit;
  };
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(open_close(1, 1000), ConnectionTable::Admit::kOk) << i;
  }
  EXPECT_EQ(open_close(1, 1000), ConnectionTable::Admit::kRate);
  EXPECT_EQ(open_close(1, 1050), ConnectionTable::Admit::kRate);
  EXPECT_EQ(f.counters.refused_rate, 2u);
  EXPECT_EQ(open_close(2, 1050), ConnectionTable::Admit::kOk);  // another IP has its own
  // 10 a second: one more every 100 ms, and closing a connection gives nothing back.
  EXPECT_EQ(open_close(1, 1100), ConnectionTable::Admit::kOk);
  EXPECT_EQ(open_close(1, 1100), ConnectionTable::Admit::kRate);
  EXPECT_EQ(open_close(1, 1300), ConnectionTable::Admit::kOk);
  EXPECT_EQ(open_close(1, 1300), ConnectionTable::Admit::kOk);
  EXPECT_EQ(open_close(1, 1300), ConnectionTable::Admit::kRate);
  // After two seconds the whole burst is back.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(open_close(1, 3300), ConnectionTable::Admit::kOk) << i;
  }
  EXPECT_EQ(open_close(1, 3300), ConnectionTable::Admit::kRate);
  EXPECT_EQ(f.counters.refused_rate, 5u);
}

TEST(ConnectionTable, IpsWithNothingOpenAndAFullBucketAreForgotten) {
  ConnectionsPerIp per_ip;
  // 5000 addresses open and close one connection each at t=0: remembered, their buckets are
  // not full again yet.
  for (std::uint32_t i = 0; i < 5000; ++i) {
    auto ip = IpAddress::v4(10, 1, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i));
    ASSERT_EQ(per_ip.acquire(ip, 0, 10, 0), ConnectionsPerIp::Acquire::kOk);
    per_ip.release(ip);
  }
  EXPECT_GE(per_ip.tracked(), 4000u);
  // One that keeps its connection open stays remembered through a sweep.
  auto held = IpAddress::v4(10, 2, 0, 1);
  ASSERT_EQ(per_ip.acquire(held, 0, 10, 0), ConnectionsPerIp::Acquire::kOk);
  // Later, the next acquire that finds the table past its sweep size forgets the others.
  for (std::uint32_t i = 0; i < 5000; ++i) {
    auto ip = IpAddress::v4(10, 3, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i));
    ASSERT_EQ(per_ip.acquire(ip, 0, 10, 60'000), ConnectionsPerIp::Acquire::kOk);
    per_ip.release(ip);
  }
  EXPECT_LE(per_ip.tracked(), 5002u);
  EXPECT_EQ(per_ip.count(held), 1u);
}

TEST(ConnectionTable, PerIpLimitHoldsAcrossTablesOfOneProcess) {
  Fixture f;
  StreamCounters other_counters;
  ConnectionTable a(f.limits(), f.per_ip, f.framer, f.counters);
  ConnectionTable b(f.limits(), f.per_ip, f.framer, other_counters);
  ASSERT_EQ(a.admit(ep(1, 1), 0), ConnectionTable::Admit::kOk);
  a.insert(SocketId{1}, ep(1, 1), 0);
  ASSERT_EQ(b.admit(ep(1, 2), 0), ConnectionTable::Admit::kOk);
  b.insert(SocketId{1}, ep(1, 2), 0);
  EXPECT_EQ(b.admit(ep(1, 3), 0), ConnectionTable::Admit::kPerIp);
}

TEST(ConnectionTable, SilentConnectionTimesOutAfterTheHandshakeTimeout) {
  Fixture f;
  ConnectionTable t(f.limits(), f.per_ip, f.framer, f.counters);
  ASSERT_EQ(t.admit(ep(1, 1), 0), ConnectionTable::Admit::kOk);
  t.insert(SocketId{2}, ep(1, 1), 100);
  EXPECT_TRUE(expired(t, 1099).empty());
  auto out = expired(t, 1100);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(f.counters.handshake_timeouts, 1u);
  EXPECT_EQ(t.find(SocketId{2})->doomed, CloseReason::kHandshake);
  EXPECT_TRUE(expired(t, 2000).empty()) << "a doomed connection is named once";
}

TEST(ConnectionTable, FrameLeftPartialTimesOutAndIdleSparesAllocations) {
  Fixture f;
  ConnectionTable t(f.limits(), f.per_ip, f.framer, f.counters);
  ASSERT_EQ(t.admit(ep(1, 1), 0), ConnectionTable::Admit::kOk);
  Connection& c = t.insert(SocketId{2}, ep(1, 1), 0);
  // A whole Binding request, then 10 bytes of the next header at t = 500.
  std::uint8_t binding[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
  c.framer.push(Bytes(binding, sizeof(binding)), 0);
  ASSERT_TRUE(c.framer.next());
  c.got_stun = true;
  EXPECT_FALSE(c.framer.next());
  c.framer.push(Bytes(binding, 10), 500);
  EXPECT_FALSE(c.framer.next());
  EXPECT_TRUE(expired(t, 1499).empty());
  EXPECT_EQ(expired(t, 1500).size(), 1u);
  EXPECT_EQ(f.counters.handshake_timeouts, 1u);

  ASSERT_EQ(t.admit(ep(2, 1), 0), ConnectionTable::Admit::kOk);
  Connection& idle = t.insert(SocketId{3}, ep(2, 1), 0);
  idle.got_stun = true;
  EXPECT_TRUE(expired(t, 6000, true).empty()) << "an allocation keeps an idle connection";
  EXPECT_EQ(expired(t, 6000, false).size(), 1u);
  EXPECT_EQ(f.counters.idle_timeouts, 1u);
}

}  // namespace
}  // namespace ringlane::turn
