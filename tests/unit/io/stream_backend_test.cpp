// Stream sockets through both io backends over real loopback TCP: a listener accepts, an echo
// handler sends every chunk back with send_stream(); a megabyte comes back whole and in order
// (short writes resumed), EOF is reported, a client that does not read leaves a backlog, and
// removing a stream with sends still queued gives every buffer back.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane::io {
namespace {

constexpr SocketId kListener{1};
constexpr SocketId kStream{2};

struct StreamEcho : Handler {
  Backend* backend = nullptr;
  int accepted_fd = -1;
  Endpoint peer;
  bool echo = true;
  std::size_t bytes = 0;
  int closed = 0;
  void on_datagram(SocketId, const Endpoint&, PacketBuffer&, BufferId id) override {
    backend->release(id);
  }
  bool on_accept(SocketId listener, int fd, const Endpoint& from) override {
    EXPECT_EQ(listener, kListener);
    // A fixed small send buffer (no autotuning): a client that does not read fills it soon.
    int sndbuf = 16384;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (accepted_fd >= 0 || !backend->add_stream(fd, kStream)) {
      return false;
    }
    accepted_fd = fd;
    peer = from;
    return true;
  }
  void on_stream_data(SocketId stream, PacketBuffer& chunk, BufferId id) override {
    EXPECT_EQ(stream, kStream);
    EXPECT_GE(chunk.headroom(), kPacketHeadroom);
    bytes += chunk.length;
    if (echo) {
      backend->send_stream(stream, chunk, id);
    } else {
      backend->release(id);
    }
  }
  void on_stream_closed(SocketId, int) override { ++closed; }
};

int tcp_listener(Endpoint& bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  Endpoint ep{IpAddress::v4(127, 0, 0, 1), 0};
  sockaddr_in6 sa{};
  socklen_t len = to_sockaddr(ep, sa);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
  EXPECT_EQ(listen(fd, 16), 0);
  len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  bound = from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
  return fd;
}

int tcp_client(const Endpoint& to, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  sockaddr_in6 sa{};
  socklen_t len = to_sockaddr(to, sa);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), len), 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

class StreamBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BackendOptions o;
    o.buffers = 256;
    o.tx_buffers = 1024;
    o.max_sockets = 16;
    std::string why;
    backend_ = GetParam() == "uring" ? make_uring_backend(o, why) : make_mmsg_backend(o, why);
    if (!backend_) {
      GTEST_SKIP() << GetParam() << " unavailable here: " << why;
    }
    echo_.backend = backend_.get();
    listener_ = tcp_listener(bound_);
    ASSERT_TRUE(backend_->add_listener(listener_, kListener));
  }
  void TearDown() override {
    if (backend_ && echo_.accepted_fd >= 0) {
      backend_->remove_socket(kStream);
      close(echo_.accepted_fd);
    }
    backend_.reset();
    if (listener_ >= 0) {
      close(listener_);
    }
  }
  template <typename Done>
  void run_until(Done&& done, int seconds = 5) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      backend_->poll(5, echo_);
    }
  }

  std::unique_ptr<Backend> backend_;
  StreamEcho echo_;
  Endpoint bound_;
  int listener_ = -1;
};

TEST_P(StreamBackendTest, AcceptsAndEchoesAMegabyteInOrder) {
  int c = tcp_client(bound_);
  run_until([&] { return echo_.accepted_fd >= 0; });
  ASSERT_GE(echo_.accepted_fd, 0);
  EXPECT_EQ(echo_.peer.ip, IpAddress::v4(127, 0, 0, 1));
  std::string out(1 << 20, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>((i * 7 + i / 4096) & 0xFF);
  }
  std::string back;
  std::size_t sent = 0;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (back.size() < out.size() && std::chrono::steady_clock::now() < deadline) {
    if (sent < out.size()) {
      ssize_t n =
          send(c, out.data() + sent, std::min<std::size_t>(32768, out.size() - sent), MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      }
    }
    backend_->poll(1, echo_);
    ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      back.append(buf, static_cast<std::size_t>(n));
    }
  }
  ASSERT_EQ(back.size(), out.size());
  EXPECT_TRUE(back == out) << "the echo came back reordered or corrupted";
  EXPECT_GT(backend_->stats().stream_chunks_in, 0u);
  EXPECT_GT(backend_->stats().stream_sends, 0u);
  close(c);
  run_until([&] { return echo_.closed > 0; });
  EXPECT_EQ(echo_.closed, 1) << "EOF is reported once";
}

TEST_P(StreamBackendTest, AClientThatDoesNotReadLeavesABacklogAndRemoveGivesBuffersBack) {
  int c = tcp_client(bound_, 4096);
  run_until([&] { return echo_.accepted_fd >= 0; });
  ASSERT_GE(echo_.accepted_fd, 0);
  // Push from the server side through transmit buffers until the kernel stops taking them.
  std::size_t queued = 0;
  // The kernel takes what the client's window and the server's send buffer hold first.
  for (int i = 0; i < 1000 && backend_->stream_backlog(kStream) < 65536; ++i) {
    PacketBuffer pkt;
    auto id = backend_->acquire(pkt);
    if (!id) {
      backend_->poll(5, echo_);
      continue;
    }
    std::memset(pkt.data(), 'x', 1400);
    pkt.length = 1400;
    backend_->send_stream(kStream, pkt, *id);
    queued += 1400;
    backend_->poll(1, echo_);
  }
  run_until([&] { return false; }, 0);
  EXPECT_GT(backend_->stream_backlog(kStream), 0u) << "a non-reading client leaves bytes queued";
  EXPECT_LE(backend_->stream_backlog(kStream), queued);
  // Removing the stream returns every buffer (in flight ones on their cancelled completion).
  backend_->remove_socket(kStream);
  close(echo_.accepted_fd);
  echo_.accepted_fd = -1;
  for (int i = 0; i < 20; ++i) {
    backend_->poll(5, echo_);
  }
  int free = 0;
  std::vector<BufferId> taken;
  PacketBuffer pkt;
  while (auto id = backend_->acquire(pkt)) {
    taken.push_back(*id);
    ++free;
  }
  EXPECT_EQ(free, 1024) << "every transmit buffer is back";
  for (auto id : taken) {
    backend_->release(id);
  }
  close(c);
}

INSTANTIATE_TEST_SUITE_P(All, StreamBackendTest, ::testing::Values("uring", "mmsg"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace ringlane::io
