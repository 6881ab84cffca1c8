// SPSC rings and the shared region: in one process, across threads, and across a real
// fork() with the region in a memfd and eventfd doorbells.
#include "ringlane/shm/ring.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>
#include <vector>

#include "ringlane/shm/region.hpp"

namespace ringlane::shm {
namespace {

struct Buffer {
  explicit Buffer(std::uint32_t capacity) : bytes(SpscRing::bytes_for(capacity) + kCacheLine) {}
  void* aligned() {
    auto p = reinterpret_cast<std::uintptr_t>(bytes.data());
    return reinterpret_cast<void*>((p + kCacheLine - 1) & ~(kCacheLine - 1));
  }
  std::vector<std::uint8_t> bytes;
};

std::vector<std::uint8_t> payload_of(std::uint64_t n) {
  std::vector<std::uint8_t> p(8);
  std::memcpy(p.data(), &n, 8);
  return p;
}

TEST(SpscRing, OrderBackpressureAndWrap) {
  Buffer mem(8);
  auto ring = SpscRing::create(mem.aligned(), 8);
  for (std::uint64_t i = 0; i < 8; ++i)
    ASSERT_TRUE(ring.push(1, 1, payload_of(i)));
  EXPECT_FALSE(ring.push(1, 1, payload_of(99)));  // full: refused and counted
  EXPECT_EQ(ring.full_count(), 1u);
  EXPECT_EQ(ring.depth(), 8u);
  std::uint64_t next = 0;
  for (int round = 0; round < 100; ++round) {  // wrap the indices many times
    auto m = ring.front();
    ASSERT_TRUE(m);
    std::uint64_t v;
    std::memcpy(&v, m->payload.data(), 8);
    EXPECT_EQ(v, next++);
    ring.pop();
    ASSERT_TRUE(ring.push(2, 3, payload_of(next + 7)));
  }
  std::vector<std::uint8_t> big(kMaxPayload + 1);
  EXPECT_FALSE(ring.push(1, 1, big));
  EXPECT_EQ(ring.full_count(), 2u);
  auto m = ring.front();
  EXPECT_EQ(m->type, 2);
  EXPECT_EQ(m->version, 3);
}

TEST(SpscRing, FreshViewsSeeOnlyWhatIsThere) {
  // The supervisor makes a new consumer view on every poll: each must start from the shared
  // indices, never from its own zeroed cache.
  Buffer mem(8);
  auto producer = SpscRing::create(mem.aligned(), 8);
  for (std::uint64_t round = 0; round < 20; ++round) {
    ASSERT_TRUE(producer.push(1, 1, payload_of(round)));
    auto view = SpscRing::attach(mem.aligned(), 8);
    auto m = view.front();
    ASSERT_TRUE(m);
    std::uint64_t v;
    std::memcpy(&v, m->payload.data(), 8);
    EXPECT_EQ(v, round);
    view.pop();
    EXPECT_FALSE(SpscRing::attach(mem.aligned(), 8).front()) << "round " << round;
  }
  // Head ahead of tail (a corrupt peer): empty, not garbage.
  static_cast<RingControl*>(mem.aligned())->head.store(1000);
  EXPECT_FALSE(SpscRing::attach(mem.aligned(), 8).front());
}

TEST(SpscRing, CorruptSlotIsReportedNotStalledOn) {
  Buffer mem(4);
  auto ring = SpscRing::create(mem.aligned(), 4);
  ASSERT_TRUE(ring.push(1, 1, payload_of(1)));
  ASSERT_TRUE(ring.push(1, 1, payload_of(2)));
  // Overwrite the first slot's length with nonsense, as a broken writer might.
  auto* slot0 = static_cast<std::uint8_t*>(mem.aligned()) + sizeof(RingControl);
  std::uint32_t huge = 100000;
  std::memcpy(slot0 + 4, &huge, 4);
  auto m = ring.front();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, kCorruptType);
  ring.pop();
  m = ring.front();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, 1);
  EXPECT_FALSE(decode_slot(std::span<const std::uint8_t>(slot0, 4)));
}

TEST(SpscRing, TwoThreadsManyMessagesInOrder) {
  Buffer mem(1024);
  auto ring = SpscRing::create(mem.aligned(), 1024);
  auto reader = SpscRing::attach(mem.aligned(), 1024);  // one view per side
  constexpr std::uint64_t kCount = 200'000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount;) {
      if (ring.push(7, 1, payload_of(i)))
        ++i;
    }
  });
  std::uint64_t expected = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (expected < kCount && std::chrono::steady_clock::now() < deadline) {
    auto m = reader.front();
    if (!m)
      continue;
    std::uint64_t v;
    std::memcpy(&v, m->payload.data(), 8);
    ASSERT_EQ(v, expected);
    ++expected;
    reader.pop();
  }
  producer.join();
  EXPECT_EQ(expected, kCount);
  EXPECT_EQ(ring.pushed_count(), kCount);
}

TEST(Region, CommandsAndEventsAcrossAFork) {
  std::string error;
  auto region = Region::create("ringlane-test", 2, 64, 4096, error);
  ASSERT_TRUE(region) << error;
  Doorbell to_child;
  Doorbell to_parent;
  constexpr std::uint64_t kCount = 10000;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: a data plane worker. Attach through the inherited fd, echo each command.
    std::string err;
    auto mine = Region::attach(region->fd(), err);
    if (!mine)
      _exit(10);
    auto commands = mine->commands(1);
    auto events = mine->events(1);
    std::uint64_t seen = 0;
    while (seen < kCount) {
      auto m = commands.front();
      if (!m) {
        if (!to_child.wait(5000))
          _exit(11);
        to_child.drain();
        continue;
      }
      std::uint64_t v;
      std::memcpy(&v, m->payload.data(), 8);
      if (v != seen || m->type != 42)
        _exit(12);
      for (int tries = 0; !events.push(43, 1, m->payload); ++tries) {
        if (tries > 5'000'000)
          _exit(13);  // the parent stopped reading
      }
      commands.pop();
      to_parent.ring();
      ++seen;
    }
    std::memcpy(mine->stats(1), &seen, 8);
    _exit(0);
  }
  auto commands = region->commands(1);
  auto events = region->events(1);
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (received < kCount && std::chrono::steady_clock::now() < deadline) {
    while (sent < kCount && commands.push(42, 1, payload_of(sent))) {
      ++sent;
      to_child.ring();
    }
    while (auto m = events.front()) {
      std::uint64_t v;
      std::memcpy(&v, m->payload.data(), 8);
      ASSERT_EQ(v, received);
      ++received;
      events.pop();
    }
    to_parent.wait(10);
    to_parent.drain();
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(received, kCount);
  std::uint64_t child_saw;
  std::memcpy(&child_saw, region->stats(1), 8);
  EXPECT_EQ(child_saw, kCount);                // the stats page is shared too
  EXPECT_EQ(region->commands(0).depth(), 0u);  // worker 0's rings untouched
}

TEST(Region, MismatchedBinaryRefusesToAttach) {
  std::string error;
  int fd = memfd_create("not-a-region", 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  EXPECT_FALSE(Region::attach(fd, error));
  EXPECT_NE(error.find("bad magic"), std::string::npos) << error;
  close(fd);

  auto region = Region::create("ringlane-test", 1, 8, 64, error);
  ASSERT_TRUE(region);
  // A region written by another layout version.
  void* p = mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED, region->fd(), 0);
  std::uint32_t other = kRegionVersion + 1;
  std::memcpy(static_cast<std::uint8_t*>(p) + 8, &other, 4);
  munmap(p, 64);
  EXPECT_FALSE(Region::attach(region->fd(), error));
  EXPECT_NE(error.find("refusing to attach"), std::string::npos) << error;
}

}  // namespace
}  // namespace ringlane::shm
