// Load generator for the relay benchmark: many client flows send ChannelData to a relay,
// which forwards the payload to a peer socket owned by this program. Measures relayed
// packets/s, one-way latency (timestamp in the payload), the server's CPU (/proc/PID/stat)
// and the whole machine's (/proc/stat, where loopback softirq work lands), and prints one
// JSON object. Every loop is bounded in time; the program stops by itself.
//
//   relay_loadgen --server 127.0.0.1:3478 --mode turn|raw [--user U --pass P]
//                 --peer-port N --flows 64 --size 200 --rate PPS|0 --seconds 3
//                 --server-pid PID --cpu 1 [--peer HOST:PORT]
// --peer names a peer elsewhere (another network namespace): the relay is told to send there
// and this program only sends; `received` is then 0 and the peer does the counting.
// mode turn: each flow allocates (long-term auth) and binds a channel to the peer.
// mode raw:  flows send the same ChannelData frames to a plain forwarder (the kernel floor).
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
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

std::optional<stun::Message> exchange(int fd, const Endpoint& to, Bytes request,
                                      std::vector<std::uint8_t>& reply) {
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(to, sa);
  for (int attempt = 0; attempt < 5; ++attempt) {
    sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
    reply.resize(2048);
    ssize_t n = recv(fd, reply.data(), reply.size(), 0);
    if (n > 0) {
      reply.resize(static_cast<std::size_t>(n));
      return stun::Message::parse(reply);
    }
  }
  return std::nullopt;
}

struct Flow {
  int fd = -1;
  std::string realm;
  std::string nonce;
  std::array<std::uint8_t, 16> key{};
};

enum class Setup { kOk, kMismatch, kFailed };

// Allocate (401 first, then signed) and ChannelBind to the peer.
Setup setup_turn_flow(Flow& flow, const Args& a, const Endpoint& peer, std::uint16_t channel) {
  int fd = flow.fd;
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
  auto challenge = exchange(fd, a.server, first.bytes(), reply);
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
    return exchange(fd, a.server, b.bytes(), reply);
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
  auto bind = signed_request(stun::Method::kChannelBind, [&](stun::Builder& b) {
    b.add_u32(stun::attr::kChannelNumber, std::uint32_t{channel} << 16);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer);
  });
  return bind && bind->message_class() == stun::Class::kSuccess ? Setup::kOk : Setup::kFailed;
}

// Deletes the flow's allocation (Refresh with LIFETIME 0), as a well-behaved client does.
void release_turn_flow(const Flow& flow, const Args& a) {
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
  exchange(flow.fd, a.server, b.bytes(), reply);
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
  Endpoint peer = a.external_peer.value_or(Endpoint{a.server.ip, a.peer_port});
  int peer_fd = a.external_peer ? -1 : udp_socket(peer);

  std::vector<Flow> flows;
  std::vector<int> stale;  // ports that still hold an earlier allocation, kept until the end
  for (int i = 0; i < a.flows; ++i) {
    Flow f;
    Setup result = Setup::kOk;
    for (int attempt = 0; attempt < 8; ++attempt) {
      f.fd = udp_socket(Endpoint{a.server.ip, 0});
      result = a.mode == "turn" ? setup_turn_flow(f, a, peer, 0x4000) : Setup::kOk;
      if (result != Setup::kMismatch)
        break;
      stale.push_back(f.fd);
    }
    if (result != Setup::kOk) {
      std::fprintf(stderr, "flow %d: TURN setup failed\n", i);
      return 1;
    }
    flows.push_back(f);
  }

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  const std::uint64_t t_start = now_ns();
  const std::uint64_t t_measure = t_start + static_cast<std::uint64_t>(a.warmup * 1e9);
  const std::uint64_t t_end = t_measure + static_cast<std::uint64_t>(a.seconds * 1e9);

  // Receiver: the peer socket.
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
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs.data() + i * 2048, 2048};
        msgs[i].msg_hdr = msghdr{};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(peer_fd, msgs, kBatch, MSG_WAITFORONE, nullptr);
      std::uint64_t t = now_ns();
      if (n <= 0)
        continue;
      if (t < t_measure || t > t_end)
        continue;
      received += static_cast<std::uint64_t>(n);
      for (int i = 0; i < n; ++i) {
        if (msgs[i].msg_len >= 8 && (++sample & 3) == 0) {
          std::uint64_t ts;
          std::memcpy(&ts, bufs.data() + i * 2048, 8);
          if (t > ts)
            latency_ns.push_back(
                static_cast<std::uint32_t>(std::min<std::uint64_t>(t - ts, UINT32_MAX)));
        }
      }
    }
  });

  // Sender: ChannelData frames, round robin over flows, batches per flow socket.
  constexpr int kPerFlow = 8;
  std::vector<std::uint8_t> frames(kPerFlow * 2048);
  mmsghdr out[kPerFlow];
  iovec oiov[kPerFlow];
  sockaddr_in6 server_sa{};
  socklen_t server_len = io::to_sockaddr(a.server, server_sa);
  std::size_t frame_len = 4 + static_cast<std::size_t>(a.size);
  for (int i = 0; i < kPerFlow; ++i) {
    std::uint8_t* f = frames.data() + i * 2048;
    store_be16(f, 0x4000);
    store_be16(f + 2, static_cast<std::uint16_t>(a.size));
    std::memset(f + 4, 0x5A, static_cast<std::size_t>(a.size));
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
      std::memcpy(frames.data() + i * 2048 + 4, &stamp, 8);
    int n = sendmmsg(flows[flow].fd, out, kPerFlow, 0);
    if (n > 0)
      sent += static_cast<std::uint64_t>(n);
    flow = (flow + 1) % flows.size();
  }
  double server_cpu = a.server_pid > 0 ? proc_cpu_s(a.server_pid) - server_cpu0 : 0;
  auto machine1 = machine_busy_s();
  double self_cpu = self_cpu_s() - self_cpu0;
  std::uint64_t window_sent = sent.load() - sent_in_window;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // let the last packets land
  stop = true;
  receiver.join();
  if (a.mode == "turn") {
    for (const auto& f : flows)
      release_turn_flow(f, a);
  }

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
      "\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"flows\":%d,\"size\":%d,\"rate\":%ld}\n",
      static_cast<unsigned long long>(window_sent), static_cast<unsigned long long>(received),
      a.seconds, static_cast<double>(received) / a.seconds, server_cpu,
      machine1.first - machine0.first, machine1.second - machine0.second, self_cpu, pct(0.5),
      pct(0.99), a.flows, a.size, a.rate);
  return 0;
}
