// Load generator for the relay benchmark: many client flows send ChannelData to a relay,
// which forwards the payload to a peer socket owned by this program. Measures relayed
// packets/s, one-way latency (timestamp in the payload), the server's CPU (/proc/PID/stat)
// and the whole machine's (/proc/stat, where loopback softirq work lands), and prints one
// JSON object. Every loop is bounded in time; the program stops by itself.
//
//   relay_loadgen --server 127.0.0.1:3478 --mode turn|raw [--user U --pass P]
//                 --peer-port N --flows 64 --size 200 --rate PPS|0 --seconds 3
//                 --server-pid PID --cpu 1 [--peer HOST:PORT]
//                 [--transport udp|tcp|tls] [--direction c2p|p2c]
//                 [--on-start CMD --on-stop CMD]
// --peer names a peer elsewhere (another network namespace): the relay is told to send there
// and this program only sends; `received` is then 0 and the peer does the counting.
// mode turn: each flow allocates (long-term auth) and binds a channel to the peer.
// mode raw:  flows send the same ChannelData frames to a plain forwarder (the kernel floor).
// --transport tcp|tls: each flow is one TCP (or TLS 1.3, OpenSSL) connection to the server,
// STUN and ChannelData framed on the stream (RFC 8656 §12.5: ChannelData padded to 4 bytes);
// the relayed side stays UDP towards the peer socket. c2p only.
// --direction p2c: the peer socket sends to each flow's relayed address and the flows receive
// ChannelData (the relay prepends the 4-byte header); UDP only.
// --on-start/--on-stop: shell commands run after setup and after the last packet has landed
// (callgrind_control -i on/off); every packet sent then lies inside the window, and the
// counts cover all of them (no warm-up, no edges).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/dataplane/io/sockaddr.hpp"
#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/dataplane/stun/message.hpp"

namespace {
using namespace ringlane;
using Clock = std::chrono::steady_clock;

struct Args {
  Endpoint server;
  std::string mode = "turn";
  std::string user = "bench";
  std::string pass = "bench";
  std::uint16_t peer_port = 0;
  int flows = 64;
  int size = 200;
  long rate = 0;
  double seconds = 3.0;
  double warmup = 0.5;
  int server_pid = 0;
  int cpu = -1;
  std::optional<Endpoint> external_peer;
  std::string transport = "udp";
  std::string direction = "c2p";
  std::string on_start;
  std::string on_stop;
};

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

double proc_cpu_s(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto close = s.rfind(')');
  if (close == std::string::npos)
    return 0;
  // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
  std::vector<std::string> fields;
  std::size_t pos = close + 2;
  while (pos < s.size()) {
    auto sp = s.find(' ', pos);
    fields.push_back(s.substr(pos, sp - pos));
    if (sp == std::string::npos)
      break;
    pos = sp + 1;
  }
  if (fields.size() < 13)
    return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Busy seconds summed over all CPUs (user, nice, system, irq, softirq; not idle, iowait or
// steal, which is the hypervisor's), and the softirq part of them.
std::pair<double, double> machine_busy_s() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[10] = {};
  f >> cpu;
  for (double& x : v)
    f >> x;
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  double busy = v[0] + v[1] + v[2] + v[5] + v[6];
  return {busy / hz, v[6] / hz};
}

double self_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int udp_socket(const Endpoint& bind_to) {
  int fd =
      socket(bind_to.family() == Family::kV4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(bind_to, sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    std::perror("bind");
    std::exit(1);
  }
  timeval tv{0, 200'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// A client flow: its socket to the server (UDP, TCP or TLS over TCP), its credentials, the
// relayed address the server gave it, and for streams the bytes read but not yet framed.
struct Flow {
  int fd = -1;
  SSL* ssl = nullptr;
  bool stream = false;
  std::string realm;
  std::string nonce;
  std::array<std::uint8_t, 16> key{};
  Endpoint relayed;
  std::vector<std::uint8_t> pending;
};

// Writes all of `data` to a stream flow (blocking socket with a send timeout; false when the
// server stopped taking bytes for 5 s or closed).
bool stream_write(Flow& f, const std::uint8_t* data, std::size_t len) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (len > 0) {
    if (f.ssl) {
      int n = SSL_write(f.ssl, data, static_cast<int>(len));
      if (n > 0) {
        data += n;
        len -= static_cast<std::size_t>(n);
        continue;
      }
      int e = SSL_get_error(f.ssl, n);
      if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) || Clock::now() > deadline)
        return false;
    } else {
      ssize_t n = send(f.fd, data, len, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        len -= static_cast<std::size_t>(n);
        continue;
      }
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || n == 0 || Clock::now() > deadline)
        return false;
    }
  }
  return true;
}

// Reads once from a stream flow into `pending` (false on timeout, close or error).
bool stream_read(Flow& f) {
  std::uint8_t tmp[4096];
  int n = 0;
  if (f.ssl) {
    n = SSL_read(f.ssl, tmp, sizeof(tmp));
  } else {
    n = static_cast<int>(recv(f.fd, tmp, sizeof(tmp), 0));
  }
  if (n <= 0)
    return false;
  f.pending.insert(f.pending.end(), tmp, tmp + n);
  return true;
}

// The length of the whole frame at the front of a stream, 0 while incomplete. RFC 8656
// §12.5: over TCP and TLS a ChannelData message is padded to a multiple of 4 bytes.
std::size_t frame_length(const std::vector<std::uint8_t>& b) {
  if (b.size() < 4)
    return 0;
  std::size_t len = load_be16(b.data() + 2);
  std::size_t total = b[0] < 0x40 ? 20 + len : 4 + ((len + 3) & ~std::size_t{3});
  return b.size() >= total ? total : 0;
}

int tcp_connect(const Endpoint& to) {
  int fd = socket(to.family() == Family::kV4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(to, sa);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    std::perror("connect");
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{0, 200'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// One TLS 1.3 client context for all flows: no certificate check (the bench makes a
// self-signed one), SNI "localhost".
SSL_CTX* tls_context() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
  return ctx;
}

bool tls_handshake(Flow& f, SSL_CTX* ctx) {
  f.ssl = SSL_new(ctx);
  SSL_set_fd(f.ssl, f.fd);
  SSL_set_tlsext_host_name(f.ssl, "localhost");
  auto deadline = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    int r = SSL_connect(f.ssl);
    if (r == 1)
      return true;
    int e = SSL_get_error(f.ssl, r);
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || Clock::now() > deadline) {
      ERR_print_errors_fp(stderr);
      return false;
    }
  }
}

std::optional<stun::Message> exchange(Flow& f, const Endpoint& to, Bytes request,
                                      std::vector<std::uint8_t>& reply) {
  if (f.stream) {
    if (!stream_write(f, request.data(), request.size()))
      return std::nullopt;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      std::size_t n = frame_length(f.pending);
      if (n == 0) {
        stream_read(f);
        continue;
      }
      bool stun_frame = f.pending[0] < 0x40;
      reply.assign(f.pending.begin(), f.pending.begin() + static_cast<std::ptrdiff_t>(n));
      f.pending.erase(f.pending.begin(), f.pending.begin() + static_cast<std::ptrdiff_t>(n));
      if (stun_frame)
        return stun::Message::parse(reply);
    }
    return std::nullopt;
  }
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(to, sa);
  for (int attempt = 0; attempt < 5; ++attempt) {
    sendto(f.fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
    reply.resize(2048);
    ssize_t n = recv(f.fd, reply.data(), reply.size(), 0);
    if (n > 0) {
      reply.resize(static_cast<std::size_t>(n));
      return stun::Message::parse(reply);
    }
  }
  return std::nullopt;
}

enum class Setup { kOk, kMismatch, kFailed };

// Allocate (401 first, then signed) and ChannelBind to the peer.
Setup setup_turn_flow(Flow& flow, const Args& a, const Endpoint& peer, std::uint16_t channel) {
  std::vector<std::uint8_t> buf(1500);
  std::vector<std::uint8_t> reply;
  stun::TransactionId tid{};
  auto fresh_tid = [&] {
    for (auto& b : tid)
      b = static_cast<std::uint8_t>(std::rand());
  };
  fresh_tid();
  stun::Builder first(buf, stun::Method::kAllocate, stun::Class::kRequest, tid);
  first.add_u32(stun::attr::kRequestedTransport, 17u << 24);
  auto challenge = exchange(flow, a.server, first.bytes(), reply);
  if (!challenge)
    return Setup::kFailed;
  std::string realm(challenge->find_string(stun::attr::kRealm).value_or(""));
  std::string nonce(challenge->find_string(stun::attr::kNonce).value_or(""));
  auto key = stun::long_term_key(a.user, realm, a.pass);
  flow.realm = realm;
  flow.nonce = nonce;
  flow.key = key;
  auto signed_request = [&](stun::Method m, auto&& attrs) {
    fresh_tid();
    stun::Builder b(buf, m, stun::Class::kRequest, tid);
    attrs(b);
    b.add_string(stun::attr::kUsername, a.user);
    b.add_string(stun::attr::kRealm, realm);
    b.add_string(stun::attr::kNonce, nonce);
    b.add_integrity(key);
    b.add_fingerprint();
    return exchange(flow, a.server, b.bytes(), reply);
  };
  auto alloc = signed_request(stun::Method::kAllocate, [](stun::Builder& b) {
    b.add_u32(stun::attr::kRequestedTransport, 17u << 24);
  });
  if (!alloc)
    return Setup::kFailed;
  if (alloc->message_class() != stun::Class::kSuccess) {
    // 437: this source port still has an allocation (an earlier run's): take another port.
    auto code = alloc->find(stun::attr::kErrorCode);
    bool mismatch = code && code->size() >= 4 && (*code)[2] == 4 && (*code)[3] == 37;
    return mismatch ? Setup::kMismatch : Setup::kFailed;
  }
  auto relayed = alloc->find_xor_address(stun::attr::kXorRelayedAddress);
  if (!relayed)
    return Setup::kFailed;
  flow.relayed = *relayed;
  auto bind = signed_request(stun::Method::kChannelBind, [&](stun::Builder& b) {
    b.add_u32(stun::attr::kChannelNumber, std::uint32_t{channel} << 16);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer);
  });
  return bind && bind->message_class() == stun::Class::kSuccess ? Setup::kOk : Setup::kFailed;
}

// Deletes the flow's allocation (Refresh with LIFETIME 0), as a well-behaved client does.
void release_turn_flow(Flow& flow, const Args& a) {
  std::vector<std::uint8_t> buf(512);
  std::vector<std::uint8_t> reply;
  stun::TransactionId tid{};
  for (auto& b : tid)
    b = static_cast<std::uint8_t>(std::rand());
  stun::Builder b(buf, stun::Method::kRefresh, stun::Class::kRequest, tid);
  b.add_u32(stun::attr::kLifetime, 0);
  b.add_string(stun::attr::kUsername, a.user);
  b.add_string(stun::attr::kRealm, flow.realm);
  b.add_string(stun::attr::kNonce, flow.nonce);
  b.add_integrity(flow.key);
  b.add_fingerprint();
  exchange(flow, a.server, b.bytes(), reply);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--server")
      a.server = *Endpoint::parse(v);
    else if (k == "--mode")
      a.mode = v;
    else if (k == "--user")
      a.user = v;
    else if (k == "--pass")
      a.pass = v;
    else if (k == "--peer-port")
      a.peer_port = static_cast<std::uint16_t>(std::stoi(v));
    else if (k == "--flows")
      a.flows = std::stoi(v);
    else if (k == "--size")
      a.size = std::stoi(v);
    else if (k == "--rate")
      a.rate = std::stol(v);
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else if (k == "--warmup")
      a.warmup = std::stod(v);
    else if (k == "--server-pid")
      a.server_pid = std::stoi(v);
    else if (k == "--cpu")
      a.cpu = std::stoi(v);
    else if (k == "--peer")
      a.external_peer = Endpoint::parse(v);
    else if (k == "--transport")
      a.transport = v;
    else if (k == "--direction")
      a.direction = v;
    else if (k == "--on-start")
      a.on_start = v;
    else if (k == "--on-stop")
      a.on_stop = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

void pin(int cpu) {
  if (cpu < 0)
    return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  pin(a.cpu);
  const bool stream = a.transport == "tcp" || a.transport == "tls";
  const bool p2c = a.direction == "p2c";
  if ((!stream && a.transport != "udp") ||
      (p2c && (stream || a.mode != "turn" || a.external_peer)) || (a.direction != "c2p" && !p2c) ||
      (stream && a.mode != "turn")) {
    std::fprintf(stderr, "unsupported: --transport %s --direction %s --mode %s\n",
                 a.transport.c_str(), a.direction.c_str(), a.mode.c_str());
    return 2;
  }
  const bool hooked = !a.on_start.empty();
  Endpoint peer = a.external_peer.value_or(Endpoint{a.server.ip, a.peer_port});
  int peer_fd = a.external_peer ? -1 : udp_socket(peer);
  SSL_CTX* tls = a.transport == "tls" ? tls_context() : nullptr;

  std::vector<Flow> flows;
  std::vector<int> stale;  // ports that still hold an earlier allocation, kept until the end
  for (int i = 0; i < a.flows; ++i) {
    Flow f;
    Setup result = Setup::kOk;
    for (int attempt = 0; attempt < 8; ++attempt) {
      f = Flow{};
      f.stream = stream;
      f.fd = stream ? tcp_connect(a.server) : udp_socket(Endpoint{a.server.ip, 0});
      if (f.fd < 0 || (tls && !tls_handshake(f, tls))) {
        result = Setup::kFailed;
        break;
      }
      result = a.mode == "turn" ? setup_turn_flow(f, a, peer, 0x4000) : Setup::kOk;
      if (result != Setup::kMismatch)
        break;
      stale.push_back(f.fd);
    }
    if (result != Setup::kOk) {
      std::fprintf(stderr, "flow %d: TURN setup failed (%s)\n", i, a.transport.c_str());
      return 1;
    }
    flows.push_back(std::move(f));
  }
  std::string tls_version = tls ? SSL_get_version(flows[0].ssl) : "";
  std::string tls_cipher = tls ? SSL_CIPHER_get_name(SSL_get_current_cipher(flows[0].ssl)) : "";

  if (hooked && std::system(a.on_start.c_str()) != 0)
    std::fprintf(stderr, "--on-start failed: %s\n", a.on_start.c_str());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  const std::uint64_t t_start = now_ns();
  const std::uint64_t t_measure =
      t_start + (hooked ? 0 : static_cast<std::uint64_t>(a.warmup * 1e9));
  const std::uint64_t t_end = t_measure + static_cast<std::uint64_t>(a.seconds * 1e9);

  // Receiver: the peer socket (c2p), or every flow's socket (p2c: ChannelData from the relay,
  // the payload after its 4-byte header). With hooks every packet counts, however late.
  std::uint64_t received = 0;
  std::vector<std::uint32_t> latency_ns;
  latency_ns.reserve(8'000'000);
  std::thread receiver([&] {
    if (peer_fd < 0)
      return;
    pin(a.cpu);
    constexpr int kBatch = 64;
    std::vector<std::uint8_t> bufs(kBatch * 2048);
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    std::uint32_t sample = 0;
    const std::size_t ts_at = p2c ? 4 : 0;
    int ep = -1;
    if (p2c) {
      ep = epoll_create1(EPOLL_CLOEXEC);
      for (std::size_t i = 0; i < flows.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = flows[i].fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, flows[i].fd, &ev);
      }
    }
    auto take = [&](int fd, int flags) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs.data() + i * 2048, 2048};
        msgs[i].msg_hdr = msghdr{};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(fd, msgs, kBatch, flags, nullptr);
      std::uint64_t t = now_ns();
      if (n <= 0)
        return 0;
      if (!hooked && (t < t_measure || t > t_end))
        return n;
      received += static_cast<std::uint64_t>(n);
      for (int i = 0; i < n; ++i) {
        if (msgs[i].msg_len >= ts_at + 8 && (++sample & 3) == 0) {
          std::uint64_t ts;
          std::memcpy(&ts, bufs.data() + i * 2048 + ts_at, 8);
          if (t > ts)
            latency_ns.push_back(
                static_cast<std::uint32_t>(std::min<std::uint64_t>(t - ts, UINT32_MAX)));
        }
      }
      return n;
    };
    while (!stop.load(std::memory_order_relaxed)) {
      if (!p2c) {
        take(peer_fd, MSG_WAITFORONE);
        continue;
      }
      epoll_event ready[64];
      int n = epoll_wait(ep, ready, 64, 100);
      for (int i = 0; i < n; ++i)
        while (take(ready[i].data.fd, MSG_DONTWAIT) == kBatch) {
        }
    }
    if (ep >= 0)
      close(ep);
  });

  // Sender: bursts of kPerFlow packets, round robin over flows. UDP: one sendmmsg per burst,
  // c2p ChannelData to the server, p2c raw payload from the peer socket to the flow's relayed
  // address. TCP: the burst's frames, each padded to 4 bytes, in one write. TLS: one
  // SSL_write (one record) per frame, as a TURN client hands each packet to its TLS stack.
  constexpr int kPerFlow = 8;
  const std::size_t frame_len = (p2c ? 0 : 4) + static_cast<std::size_t>(a.size);
  const std::size_t stride = stream ? (frame_len + 3) & ~std::size_t{3} : 2048;
  const std::size_t ts_at = p2c ? 0 : 4;
  std::vector<std::uint8_t> frames(kPerFlow * stride, 0);
  mmsghdr out[kPerFlow];
  iovec oiov[kPerFlow];
  sockaddr_in6 server_sa{};
  socklen_t server_len = io::to_sockaddr(a.server, server_sa);
  std::vector<sockaddr_in6> relayed_sa(flows.size());
  std::vector<socklen_t> relayed_len(flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i)
    relayed_len[i] = io::to_sockaddr(flows[i].relayed, relayed_sa[i]);
  for (int i = 0; i < kPerFlow; ++i) {
    std::uint8_t* f = frames.data() + static_cast<std::size_t>(i) * stride;
    if (!p2c) {
      store_be16(f, 0x4000);
      store_be16(f + 2, static_cast<std::uint16_t>(a.size));
    }
    std::memset(f + ts_at, 0x5A, static_cast<std::size_t>(a.size));
    oiov[i] = {f, frame_len};
    out[i].msg_hdr = msghdr{};
    out[i].msg_hdr.msg_name = &server_sa;
    out[i].msg_hdr.msg_namelen = server_len;
    out[i].msg_hdr.msg_iov = &oiov[i];
    out[i].msg_hdr.msg_iovlen = 1;
  }
  double server_cpu0 = 0;
  double self_cpu0 = 0;
  std::pair<double, double> machine0{};
  bool measuring = false;
  std::uint64_t sent_in_window = 0;
  std::uint64_t write_errors = 0;
  std::size_t flow = 0;
  for (;;) {
    std::uint64_t t = now_ns();
    if (!measuring && t >= t_measure) {
      measuring = true;
      server_cpu0 = a.server_pid > 0 ? proc_cpu_s(a.server_pid) : 0;
      machine0 = machine_busy_s();
      self_cpu0 = self_cpu_s();
      sent_in_window = sent.load();
    }
    if (t >= t_end)
      break;
    if (a.rate > 0) {
      double allowed = static_cast<double>(a.rate) * static_cast<double>(t - t_start) / 1e9;
      if (static_cast<double>(sent.load()) + kPerFlow > allowed) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
    }
    std::uint64_t stamp = now_ns();
    for (int i = 0; i < kPerFlow; ++i)
      std::memcpy(frames.data() + static_cast<std::size_t>(i) * stride + ts_at, &stamp, 8);
    Flow& fl = flows[flow];
    if (!stream) {
      for (int i = 0; i < kPerFlow && p2c; ++i) {
        out[i].msg_hdr.msg_name = &relayed_sa[flow];
        out[i].msg_hdr.msg_namelen = relayed_len[flow];
      }
      int n = sendmmsg(p2c ? peer_fd : fl.fd, out, kPerFlow, 0);
      if (n > 0)
        sent += static_cast<std::uint64_t>(n);
    } else if (!fl.ssl) {
      if (stream_write(fl, frames.data(), frames.size()))
        sent += kPerFlow;
      else
        ++write_errors;
    } else {
      for (int i = 0; i < kPerFlow; ++i) {
        if (stream_write(fl, frames.data() + static_cast<std::size_t>(i) * stride, stride))
          sent += 1;
        else
          ++write_errors;
      }
    }
    flow = (flow + 1) % flows.size();
  }
  double server_cpu = a.server_pid > 0 ? proc_cpu_s(a.server_pid) - server_cpu0 : 0;
  auto machine1 = machine_busy_s();
  double self_cpu = self_cpu_s() - self_cpu0;
  std::uint64_t window_sent = sent.load() - sent_in_window;
  // Let the last packets land (a server under valgrind is ~50x slower).
  std::this_thread::sleep_for(std::chrono::milliseconds(hooked ? 3000 : 250));
  if (hooked && !a.on_stop.empty() && std::system(a.on_stop.c_str()) != 0)
    std::fprintf(stderr, "--on-stop failed: %s\n", a.on_stop.c_str());
  stop = true;
  receiver.join();
  for (auto& f : flows) {
    if (a.mode == "turn")
      release_turn_flow(f, a);
    if (f.ssl) {
      SSL_shutdown(f.ssl);
      SSL_free(f.ssl);
    }
    close(f.fd);
  }
  if (tls)
    SSL_CTX_free(tls);

  std::sort(latency_ns.begin(), latency_ns.end());
  auto pct = [&](double p) -> double {
    if (latency_ns.empty())
      return 0;
    return latency_ns[static_cast<std::size_t>(p * static_cast<double>(latency_ns.size() - 1))] /
           1000.0;
  };
  std::printf(
      "{\"sent\":%llu,\"received\":%llu,\"seconds\":%.3f,\"pps\":%.0f,\"server_cpu_s\":%.3f,"
      "\"machine_busy_s\":%.3f,\"machine_softirq_s\":%.3f,\"loadgen_cpu_s\":%.3f,"
      "\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"flows\":%d,\"size\":%d,\"rate\":%ld,"
      "\"write_errors\":%llu,\"transport\":\"%s\",\"direction\":\"%s\",\"tls_version\":\"%s\","
      "\"tls_cipher\":\"%s\"}\n",
      static_cast<unsigned long long>(window_sent), static_cast<unsigned long long>(received),
      a.seconds, static_cast<double>(received) / a.seconds, server_cpu,
      machine1.first - machine0.first, machine1.second - machine0.second, self_cpu, pct(0.5),
      pct(0.99), a.flows, a.size, a.rate, static_cast<unsigned long long>(write_errors),
      a.transport.c_str(), a.direction.c_str(), tls_version.c_str(), tls_cipher.c_str());
  return 0;
}
