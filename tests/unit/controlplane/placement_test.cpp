#include <gtest/gtest.h>

#include <thread>

#include "ringlane/controlplane/placement/memory_store.hpp"
#include "ringlane/controlplane/placement/redis_store.hpp"

namespace ringlane::control::placement {
namespace {

NodeInfo node(std::string id, unsigned workers, std::uint64_t participants = 0) {
  NodeInfo n;
  n.id = std::move(id);
  n.ws_url = "ws://" + n.id + "/ws";
  n.workers = workers;
  n.participants = participants;
  return n;
}

TEST(MemoryStore, PlacesOnTheLeastLoadedNodeAndSpreadsWorkers) {
  MemoryStore store(std::chrono::milliseconds(60000));
  store.heartbeat(node("busy", 2, 100));
  store.heartbeat(node("idle", 2, 1));
  PlaceError e;
  auto a = store.place("a", e);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->node_id, "idle");
  EXPECT_TRUE(a->created);
  auto b = store.place("b", e);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->node_id, "idle");
  EXPECT_NE(a->worker, b->worker);  // the second room goes to the other worker
  auto again = store.place("a", e);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->worker, a->worker);
  EXPECT_FALSE(again->created);
}

TEST(MemoryStore, ExpiredNodeGetsNoRoomsAndItsRoomsMove) {
  MemoryStore store(std::chrono::milliseconds(50));
  store.heartbeat(node("a", 1));
  PlaceError e;
  ASSERT_EQ(store.place("r", e)->node_id, "a");
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  store.heartbeat(node("b", 1));
  auto moved = store.place("r", e);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->node_id, "b");
  EXPECT_TRUE(moved->created);
  EXPECT_EQ(store.keep("a", {{"r", 0}}), std::vector<std::string>{"r"});  // a lost r
  EXPECT_TRUE(store.keep("b", {{"r", 0}}).empty());
}

TEST(MemoryStore, CapacityAndRelease) {
  MemoryStore store(std::chrono::milliseconds(60000));
  NodeInfo n = node("a", 1);
  n.max_rooms = 1;
  store.heartbeat(n);
  PlaceError e;
  ASSERT_TRUE(store.place("r1", e));
  EXPECT_FALSE(store.place("r2", e));
  EXPECT_EQ(e, PlaceError::kNoCapacity);
  store.release("r1", "other-node");  // not the holder: ignored
  EXPECT_FALSE(store.place("r2", e));
  store.release("r1", "a");
  EXPECT_TRUE(store.place("r2", e));
}

TEST(RedisUrl, Parses) {
  std::string error;
  auto c = parse_redis_url("redis://:pw@10.0.0.1:6380/2", error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->host, "10.0.0.1");
  EXPECT_EQ(c->port, 6380);
  EXPECT_EQ(c->password, "pw");
  EXPECT_EQ(c->db, 2);
  auto v6 = parse_redis_url("redis://[::1]:7000", error);
  ASSERT_TRUE(v6) << error;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7000);
  auto plain = parse_redis_url("redis://cache", error);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->port, 6379);
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:99999", "redis://h/x",
                          "redis://[::1", "rediss://h"}) {
    EXPECT_FALSE(parse_redis_url(bad, error)) << bad;
  }
}

TEST(RedisStore, UnreachableFailsFastAsUnavailable) {
  RedisConfig c;
  c.port = 1;  // nothing listens on 127.0.0.1:1
  c.timeout = std::chrono::milliseconds(100);
  RedisStore store(c);
  EXPECT_FALSE(store.connected());
  EXPECT_FALSE(store.heartbeat(node("a", 1)));
  PlaceError e;
  EXPECT_FALSE(store.place("r", e));
  EXPECT_EQ(e, PlaceError::kUnavailable);
}

}  // namespace
}  // namespace ringlane::control::placement
