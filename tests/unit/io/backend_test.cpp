// The io backends over real loopback sockets: an echo handler sends every datagram back
// through the backend; the client checks each one comes back whole, once, in order, as its
// own datagram (with GSO the kernel must cut the runs at the right boundaries).
#include "ringlane/dataplane/io/backend.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane::io {
namespace {

struct Echo : Handler {
  Backend* backend = nullptr;
  int received = 0;
  int wakeups = 0;
  void on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt, BufferId id) override {
    ++received;
    // The headroom promised to protocol code is really there.
    EXPECT_GE(pkt.headroom(), kPacketHeadroom);
    backend->send(socket, from, pkt, id);
  }
  void on_wakeup() override { ++wakeups; }
};

int bound_socket(Family family, bool nonblocking) {
  int fd = socket(family == Family::kV4 ? AF_INET : AF_INET6,
                  SOCK_DGRAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  Endpoint ep{family == Family::kV4 ? IpAddress::v4(127, 0, 0, 1) : *IpAddress::parse("::1"), 0};
  sockaddr_in6 sa{};
  socklen_t len = to_sockaddr(ep, sa);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  return fd;
}

Endpoint local(int fd) {
  sockaddr_in6 sa{};
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

class BackendTest : public ::testing::TestWithParam<std::tuple<std::string, bool, Family, bool>> {
 protected:
  void SetUp() override {
    auto [kind, gso, family, zerocopy] = GetParam();
    if (kind == "mmsg" && zerocopy) {
      GTEST_SKIP() << "zero-copy sends are a uring option only";
    }
    BackendOptions o;
    o.zerocopy = zerocopy;
    o.buffers = 256;
    o.max_sockets = 64;
    o.gso = gso;
    std::string why;
    backend_ = kind == "uring" ? make_uring_backend(o, why) : make_mmsg_backend(o, why);
    if (!backend_) {
      GTEST_SKIP() << kind << " unavailable here: " << why;
    }
    family_ = family;
    server_ = bound_socket(family, true);
    client_ = bound_socket(family, false);
    timeval tv{2, 0};
    setsockopt(client_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT_TRUE(backend_->add_socket(server_, SocketId{3}));
    echo_.backend = backend_.get();
  }
  void TearDown() override {
    backend_.reset();
    if (server_ >= 0)
      close(server_);
    if (client_ >= 0)
      close(client_);
  }

  // Sends the datagrams, runs the backend until all were echoed, returns what came back.
  std::vector<std::string> round_trip(const std::vector<std::string>& out) {
    Endpoint to = local(server_);
    sockaddr_in6 sa{};
    socklen_t len = to_sockaddr(to, sa);
    for (const auto& d : out) {
      EXPECT_EQ(sendto(client_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&sa), len),
                static_cast<ssize_t>(d.size()));
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (echo_.received < static_cast<int>(out.size()) &&
           std::chrono::steady_clock::now() < deadline) {
      backend_->poll(10, echo_);
    }
    backend_->flush();
    backend_->poll(0, echo_);  // reap send completions so buffers return
    std::vector<std::string> back;
    char buf[4096];
    for (std::size_t i = 0; i < out.size(); ++i) {
      ssize_t n = recv(client_, buf, sizeof(buf), 0);
      if (n < 0)
        break;
      back.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return back;
  }

  std::unique_ptr<Backend> backend_;
  Echo echo_;
  Family family_ = Family::kV4;
  int server_ = -1;
  int client_ = -1;
};

std::string datagram(int seq, std::size_t size) {
  std::string d(size, static_cast<char>('a' + seq % 26));
  std::snprintf(d.data(), d.size(), "%06d", seq);
  return d;
}

TEST_P(BackendTest, EchoesEqualSizeBurstIntact) {
  std::vector<std::string> out;
  for (int i = 0; i < 150; ++i)
    out.push_back(datagram(i, 300));
  auto back = round_trip(out);
  EXPECT_EQ(back, out);
  EXPECT_EQ(backend_->stats().datagrams_in, 150u);
  EXPECT_EQ(backend_->stats().datagrams_out, 150u);
  EXPECT_EQ(backend_->stats().send_errors, 0u);
  if (std::get<1>(GetParam())) {
    EXPECT_GT(backend_->stats().gso_sends, 0u) << "equal-size runs should have been grouped";
  } else {
    EXPECT_EQ(backend_->stats().gso_sends, 0u);
  }
}

TEST_P(BackendTest, MixedSizesKeepTheirBoundaries) {
  std::vector<std::string> out;
  const std::size_t sizes[] = {100, 100, 1200, 1200, 1200, 7, 7, 1400, 64, 64};
  for (int i = 0; i < 60; ++i)
    out.push_back(datagram(i, sizes[i % 10]));
  EXPECT_EQ(round_trip(out), out);
}

TEST_P(BackendTest, BuffersAreRecycled) {
  // More datagrams than the pool holds: only works if every buffer returns after its send.
  for (int round = 0; round < 4; ++round) {
    std::vector<std::string> out;
    for (int i = 0; i < 200; ++i)
      out.push_back(datagram(round * 1000 + i, 200));
    echo_.received = 0;
    ASSERT_EQ(round_trip(out), out) << "round " << round;
  }
  EXPECT_EQ(backend_->stats().datagrams_out, 800u);
}

TEST_P(BackendTest, TooLargeDatagramIsCountedNotDelivered) {
  std::string huge(3000, 'x');
  Endpoint to = local(server_);
  sockaddr_in6 sa{};
  socklen_t len = to_sockaddr(to, sa);
  sendto(client_, huge.data(), huge.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
  std::vector<std::string> out = {datagram(1, 50)};
  EXPECT_EQ(round_trip(out), out);
  EXPECT_EQ(backend_->stats().truncated, 1u);
}

TEST_P(BackendTest, WakeupFdIsWatched) {
  int efd = eventfd(0, EFD_NONBLOCK);
  backend_->set_wakeup_fd(efd);
  std::uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  for (int i = 0; i < 50 && echo_.wakeups == 0; ++i) {
    backend_->poll(10, echo_);
  }
  EXPECT_EQ(echo_.wakeups, 1);
  close(efd);
}

INSTANTIATE_TEST_SUITE_P(All, BackendTest,
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
