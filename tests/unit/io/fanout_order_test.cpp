// An SFU's fan-out through the io backends over real loopback sockets: every packet is copied
// to hundreds of destinations in turn (packet 1 to A, B, C..., then packet 2 to A, B, C...), so
// a backend that groups a destination's datagrams into GSO sends must look past the other
// destinations' sends, and must never let a datagram overtake an earlier one to the same
// destination. Each receiver checks it got exactly its datagrams, whole, in the order sent.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane::io {
namespace {

// More destinations than the uring backend has GSO groups (512), so that groups run out in a
// turn and sends to the same destination mix groups and single sends.
constexpr int kDestinations = 300;
constexpr int kTurns = 12;
// One turn's datagrams to every destination, like a video frame cut by a packetizer that
// makes its last packet shorter, an audio packet, then the next frame's first packets: runs
// with a shorter last segment, and runs cut by a size change.
constexpr std::uint32_t kTurnSizes[] = {1000, 1000, 999, 80, 1000, 1000, 1200, 40};
constexpr int kPerTurn = sizeof(kTurnSizes) / sizeof(kTurnSizes[0]);

struct NoInput : Handler {
  int received = 0;
  void on_datagram(SocketId, const Endpoint&, PacketBuffer&, BufferId) override { ++received; }
};

int udp_socket(Family family) {
  int fd = socket(family == Family::kV4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  Endpoint ep{family == Family::kV4 ? IpAddress::v4(127, 0, 0, 1) : *IpAddress::parse("::1"), 0};
  sockaddr_in6 sa{};
  socklen_t len = to_sockaddr(ep, sa);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
  int big = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  return fd;
}

Endpoint local(int fd) {
  sockaddr_in6 sa{};
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

// Datagram `seq` to destination `dest`: its own numbers in front, filler derived from them.
void fill(std::uint8_t* p, std::uint32_t length, int dest, int seq) {
  for (std::uint32_t i = 0; i < length; ++i) {
    p[i] = static_cast<std::uint8_t>(dest * 7 + seq * 13 + i);
  }
  if (length >= 8) {
    std::uint32_t d = static_cast<std::uint32_t>(dest);
    std::uint32_t s = static_cast<std::uint32_t>(seq);
    std::memcpy(p, &d, 4);
    std::memcpy(p + 4, &s, 4);
  }
}

class FanoutOrderTest
    : public ::testing::TestWithParam<std::tuple<std::string, bool, Family, bool>> {
 protected:
  // Enough for a whole turn's copies in flight at once.
  virtual std::uint32_t tx_buffers() const { return 8192; }

  void SetUp() override {
    auto [kind, gso, family, zerocopy] = GetParam();
    if (kind == "mmsg" && zerocopy) {
      GTEST_SKIP() << "zero-copy sends are a uring option only";
    }
    BackendOptions o;
    o.buffers = 256;
    o.tx_buffers = tx_buffers();
    o.max_sockets = 16;
    o.gso = gso;
    o.zerocopy = zerocopy;
    std::string why;
    backend_ = kind == "uring" ? make_uring_backend(o, why) : make_mmsg_backend(o, why);
    if (!backend_) {
      GTEST_SKIP() << kind << " unavailable here: " << why;
    }
    sender_ = udp_socket(family);
    int big = 4 << 20;
    setsockopt(sender_, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    ASSERT_TRUE(backend_->add_socket(sender_, SocketId{1}));
    for (int d = 0; d < kDestinations; ++d) {
      receivers_.push_back(udp_socket(family));
      destinations_.push_back(local(receivers_.back()));
    }
    got_.resize(kDestinations);
  }
  void TearDown() override {
    backend_.reset();
    if (sender_ >= 0)
      close(sender_);
    for (int fd : receivers_)
      close(fd);
  }

  // Reads what every receiver has; a datagram that is not the next one expected there (lost,
  // reordered, cut or merged at the wrong boundary, or damaged) is recorded as a mismatch.
  void drain() {
    std::uint8_t buf[4096];
    std::uint8_t want[4096];
    for (int d = 0; d < kDestinations; ++d) {
      for (;;) {
        ssize_t n = recv(receivers_[d], buf, sizeof(buf), 0);
        if (n < 0)
          break;
        int seq = got_[d];
        std::uint32_t length = kTurnSizes[seq % kPerTurn];
        fill(want, length, d, seq);
        if (static_cast<std::uint32_t>(n) != length || std::memcmp(buf, want, length) != 0) {
          if (mismatches_.size() < 10) {
            std::uint32_t dest = 0;
            std::uint32_t s = 0;
            std::memcpy(&dest, buf, 4);
            std::memcpy(&s, buf + 4, 4);
            mismatches_.push_back("destination " + std::to_string(d) + ": expected #" +
                                  std::to_string(seq) + " (" + std::to_string(length) +
                                  " bytes), got " + std::to_string(n) + " bytes saying #" +
                                  std::to_string(s) + " to " + std::to_string(dest));
          }
          ++mismatch_count_;
        }
        ++got_[d];
      }
    }
  }

  // Runs the backend until every send completed (its buffer back), draining the receivers.
  void settle() {
    NoInput none;
    for (int i = 0; i < 200 && in_flight() > 0; ++i) {
      backend_->poll(1, none);
      drain();
    }
    drain();
  }

  int in_flight() {
    // A transmit buffer is back once acquire() can hand out as many as it could before.
    std::vector<BufferId> taken;
    PacketBuffer pkt{nullptr, 0, 0, 0};
    while (taken.size() < tx_buffers()) {
      auto id = backend_->acquire(pkt);
      if (!id) {
        break;
      }
      taken.push_back(*id);
    }
    for (BufferId id : taken) {
      backend_->release(id);
    }
    return static_cast<int>(tx_buffers() - taken.size());
  }

  // Sends kTurns turns of copies and checks what every destination got. `whole_turns`: every
  // turn's runs stayed open until the turn ended (no early submit for want of buffers).
  void run(bool whole_turns) {
    const bool gso = std::get<1>(GetParam());
    int seq = 0;
    for (int turn = 0; turn < kTurns; ++turn) {
      for (int k = 0; k < kPerTurn; ++k, ++seq) {
        std::uint32_t length = kTurnSizes[k];
        for (int d = 0; d < kDestinations; ++d) {
          PacketBuffer pkt{nullptr, 0, 0, 0};
          auto id = backend_->acquire(pkt);
          ASSERT_TRUE(id.has_value()) << "transmit buffers ran out";
          pkt.length = length;
          fill(pkt.data(), length, d, seq);
          backend_->send(SocketId{1}, destinations_[d], pkt, *id);
        }
      }
      // The end of a loop turn: what was queued goes to the kernel; completions come back.
      backend_->flush();
      settle();
    }
    settle();
    for (const auto& m : mismatches_) {
      ADD_FAILURE() << m;
    }
    EXPECT_EQ(mismatch_count_, 0u);
    const auto total = static_cast<std::uint64_t>(kTurns) * kPerTurn * kDestinations;
    std::uint64_t received = 0;
    for (int n : got_) {
      received += static_cast<std::uint64_t>(n);
    }
    EXPECT_EQ(received, total);
    EXPECT_EQ(backend_->stats().datagrams_out, total);
    EXPECT_EQ(backend_->stats().send_errors, 0u);
    EXPECT_EQ(backend_->stats().gso_fallbacks, 0u);
    if (gso && whole_turns) {
      // Interleaved copies still leave as GSO sends: at least one per destination and turn.
      EXPECT_GE(backend_->stats().gso_sends, static_cast<std::uint64_t>(kTurns) * kDestinations)
          << "the per-destination runs were not grouped";
    } else if (gso) {
      EXPECT_GT(backend_->stats().gso_sends, 0u) << "the per-destination runs were not grouped";
    } else {
      EXPECT_EQ(backend_->stats().gso_sends, 0u);
    }
  }

  std::unique_ptr<Backend> backend_;
  int sender_ = -1;
  std::vector<int> receivers_;
  std::vector<Endpoint> destinations_;
  std::vector<int> got_;
  std::vector<std::string> mismatches_;
  std::uint64_t mismatch_count_ = 0;
};

TEST_P(FanoutOrderTest, EveryDestinationGetsItsDatagramsInOrder) {
  run(true);
}

// Fewer transmit buffers than one turn's copies (300 destinations x 8): acquire() must send
// what is queued to get buffers back, mid-turn, and the order must hold across that.
class ScarceTxBuffersTest : public FanoutOrderTest {
 protected:
  std::uint32_t tx_buffers() const override { return 512; }
};

TEST_P(ScarceTxBuffersTest, QueuedSendsGoOutWhenBuffersRunOut) {
  if (std::get<3>(GetParam())) {
    GTEST_SKIP() << "zero-copy buffers come back on the kernel's notification, after the turn";
  }
  run(false);
}

INSTANTIATE_TEST_SUITE_P(All, FanoutOrderTest,
                         ::testing::Combine(::testing::Values("uring", "mmsg"), ::testing::Bool(),
                                            ::testing::Values(Family::kV4, Family::kV6),
                                            ::testing::Bool()),
                         [](const auto& p) {
                           return std::get<0>(p.param) +
                                  (std::get<1>(p.param) ? "_gso" : "_plain") +
                                  (std::get<2>(p.param) == Family::kV4 ? "_v4" : "_v6") +
                                  (std::get<3>(p.param) ? "_zc" : "");
                         });
INSTANTIATE_TEST_SUITE_P(All, ScarceTxBuffersTest,
                         ::testing::Combine(::testing::Values("uring", "mmsg"), ::testing::Bool(),
                                            ::testing::Values(Family::kV4, Family::kV6),
                                            ::testing::Bool()),
                         [](const auto& p) {
                           return std::get<0>(p.param) +
                                  (std::get<1>(p.param) ? "_gso" : "_plain") +
                                  (std::get<2>(p.param) == Family::kV4 ? "_v4" : "_v6") +
                                  (std::get<3>(p.param) ? "_zc" : "");
                         });

}  // namespace
}  // namespace ringlane::io
