// SRTP cost through ringlane's libsrtp2 wrapper, against the raw OpenSSL primitives doing the
// same cryptographic work in the same run (AES-128-GCM; AES-128-CTR + HMAC-SHA1-80), the cost
// of one loopback UDP sendmsg (and of one whose receiver is woken to read it), and the RTP
// rewrite an SFU does per subscriber. Thread CPU time, best of 3. Prints a table and writes JSON
// (default bench/out/srtp.json).
//   srtp_bench [--out PATH] [--packets N]
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/common/bytes.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"

using namespace ringlane;
using crypto::SrtpProfile;
using Vec = std::vector<std::uint8_t>;

namespace {

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Best of three: nanoseconds per iteration of `body(i)` over `n` iterations.
double ns_per_op(
    std::size_t n, const std::function<void(std::size_t)>& body,
    const std::function<void()>& setup = [] {}) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    setup();
    double t0 = cpu_now();
    for (std::size_t i = 0; i < n; ++i)
      body(i);
    best = std::min(best, (cpu_now() - t0) * 1e9 / static_cast<double>(n));
  }
  return best;
}

Vec rtp_packet(std::uint16_t seq, std::size_t payload) {
  Vec p = {0x90, 0x6f, 0,    0,    0, 0, 0x10, 0, 0xca, 0xfe,
           0xba, 0xbe, 0xbe, 0xde, 0, 1, 0x31, 0, 0,    0};
  store_be16(p.data() + 2, seq);
  for (std::size_t i = 0; i < payload; ++i)
    p.push_back(static_cast<std::uint8_t>(i));
  return p;
}

struct Row {
  std::string profile;
  std::size_t size;
  double protect_ns, unprotect_ns, primitive_protect_ns, primitive_unprotect_ns;
};

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "bench/out/srtp.json";
  std::size_t n = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--out")
      out_path = argv[i + 1];
    if (std::string(argv[i]) == "--packets")
      n = std::stoul(argv[i + 1]);
  }
  Vec master_key(16, 0x42);
  std::vector<Row> rows;
  for (SrtpProfile profile : {SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAes128CmSha1_80}) {
    bool gcm = profile == SrtpProfile::kAeadAes128Gcm;
    Vec master = master_key;
    master.resize(16 + crypto::srtp_salt_length(profile), 0x24);
    for (std::size_t size : {100, 200, 1200}) {
      Row r{gcm ? "AEAD_AES_128_GCM" : "AES128_CM_SHA1_80", size, 0, 0, 0, 0};
      // protect: a fresh session per repetition so sequence numbers start over.
      std::vector<Vec> plain(n);
      for (std::size_t i = 0; i < n; ++i)
        plain[i] = rtp_packet(static_cast<std::uint16_t>(i), size);
      Vec buf(2048);
      std::unique_ptr<crypto::SrtpSession> tx;
      r.protect_ns = ns_per_op(
          n,
          [&](std::size_t i) {
            std::memcpy(buf.data(), plain[i].data(), plain[i].size());
            tx->protect_rtp(buf, plain[i].size());
          },
          [&] {
            tx = crypto::SrtpSession::create(profile, master, crypto::SrtpDirection::kOutbound);
          });
      // unprotect: n distinct protected packets (replay protection refuses repeats).
      std::vector<Vec> wire(n);
      tx = crypto::SrtpSession::create(profile, master, crypto::SrtpDirection::kOutbound);
      for (std::size_t i = 0; i < n; ++i) {
        Vec b = plain[i];
        b.resize(b.size() + crypto::SrtpSession::kMaxTrailer);
        b.resize(*tx->protect_rtp(b, plain[i].size()));
        wire[i] = b;
      }
      std::unique_ptr<crypto::SrtpSession> rx;
      r.unprotect_ns = ns_per_op(
          n,
          [&](std::size_t i) {
            std::memcpy(buf.data(), wire[i].data(), wire[i].size());
            rx->unprotect_rtp(buf, wire[i].size());
          },
          [&] {
            rx = crypto::SrtpSession::create(profile, master, crypto::SrtpDirection::kInbound);
          });

      // The same work with OpenSSL directly, at its cheapest: keys scheduled once outside the
      // loop (as any session keeps them), per packet only a new IV, the cipher and the MAC —
      // no stream lookup, no replay window, no header parsing.
      Vec key(16, 0x11), iv(16, 0x22), auth(20, 0x33);
      EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
      EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      EVP_MAC_CTX* mc = EVP_MAC_CTX_new(mac);
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA1"), 0),
          OSSL_PARAM_construct_end()};
      std::size_t header = 20;
      EVP_CipherInit_ex(c, gcm ? EVP_aes_128_gcm() : EVP_aes_128_ctr(), nullptr, key.data(),
                        iv.data(), 1);
      EVP_MAC_init(mc, auth.data(), auth.size(), params);
      auto primitive = [&](std::size_t i, bool decrypt) {
        const Vec& p = plain[i];
        std::memcpy(buf.data(), p.data(), p.size());
        int len = 0;
        if (gcm) {
          EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, iv.data(), decrypt ? 0 : 1);
          EVP_CipherUpdate(c, nullptr, &len, buf.data(), static_cast<int>(header));
          EVP_CipherUpdate(c, buf.data() + header, &len, buf.data() + header,
                           static_cast<int>(p.size() - header));
          if (decrypt) {
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, auth.data());
            EVP_CipherFinal_ex(c, buf.data() + p.size(), &len);  // the tag fails; the work is done
          } else {
            EVP_CipherFinal_ex(c, buf.data() + p.size(), &len);
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, buf.data() + p.size());
          }
        } else {
          EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, iv.data(), 1);
          EVP_CipherUpdate(c, buf.data() + header, &len, buf.data() + header,
                           static_cast<int>(p.size() - header));
          EVP_MAC_init(mc, nullptr, 0, nullptr);         // same key: restart from the saved pads
          EVP_MAC_update(mc, buf.data(), p.size() + 4);  // packet || ROC
          unsigned char tag[20];
          std::size_t tl = 0;
          EVP_MAC_final(mc, tag, &tl, sizeof(tag));
          std::memcpy(buf.data() + p.size(), tag, 10);
        }
      };
      r.primitive_protect_ns = ns_per_op(n, [&](std::size_t i) { primitive(i, false); });
      r.primitive_unprotect_ns = ns_per_op(n, [&](std::size_t i) { primitive(i, true); });
      EVP_MAC_CTX_free(mc);
      EVP_MAC_free(mac);
      EVP_CIPHER_CTX_free(c);
      rows.push_back(r);
    }
  }

  // One loopback UDP sendmsg, two ways. The model's: a 200-byte packet to a receiver that never
  // reads (its queue full, the kernel drops and wakes nobody): the least a send can cost, a
  // lower bound. Beside it, a 1,200-byte packet to a receiver that reads (a thread on another
  // core blocked in recv, as an idle subscriber is): the sender then pays the loopback delivery
  // and a wakeup per packet, an upper bound (a busy receiver, or a burst of sends, wakes it once
  // for many). An SFU's per-packet send on loopback costs somewhere between the two.
  auto send_cost = [&](std::size_t size, bool drained) {
    int rx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(rx_fd, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    socklen_t tl = sizeof(to);
    getsockname(rx_fd, reinterpret_cast<sockaddr*>(&to), &tl);
    timeval wait{0, 100'000};  // the reader looks at `stop` at least this often
    setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    std::atomic<bool> stop{false};
    std::thread reader;
    if (drained) {
      int sender_cpu = sched_getcpu();
      reader = std::thread([&, sender_cpu] {
        // On another core than the sender where there is one, as the load tool runs beside
        // the node (a reader sharing the sender's core would make the wakeups look different).
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        for (int c = 0;
             c < CPU_SETSIZE && c < static_cast<int>(std::thread::hardware_concurrency()); ++c) {
          if (c != sender_cpu) {
            CPU_SET(c, &cpus);
          }
        }
        if (CPU_COUNT(&cpus) > 0) {
          (void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
        }
        std::uint8_t sink[2048];
        while (!stop.load(std::memory_order_relaxed)) {
          (void)recv(rx_fd, sink, sizeof(sink), 0);
        }
      });
    }
    int tx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    Vec pkt = rtp_packet(1, size);
    double ns = ns_per_op(n * 5, [&](std::size_t) {
      sendto(tx_fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    });
    stop = true;
    if (reader.joinable()) {
      reader.join();
    }
    close(tx_fd);
    close(rx_fd);
    return ns;
  };
  double send_ns = send_cost(200, false);
  double delivered_send_ns = send_cost(1200, true);

  // The per-subscriber rewrite: parse, new SSRC/sequence/timestamp/payload type, one
  // header-extension value.
  Vec rewrite_buf = rtp_packet(1, 200);
  std::uint8_t twcc[2] = {0, 0};
  double rewrite_ns = ns_per_op(n * 50, [&](std::size_t i) {
    auto p = rtp::RtpPacket::parse(rewrite_buf);
    p->set_ssrc(static_cast<std::uint32_t>(i));
    p->set_sequence(static_cast<std::uint16_t>(i));
    p->set_timestamp(static_cast<std::uint32_t>(i * 90));
    p->set_payload_type(96);
    twcc[1] = static_cast<std::uint8_t>(i);
    p->set_extension(3, twcc);
  });

  std::printf("%-18s %6s %12s %12s %14s %14s %8s %8s %12s\n", "profile", "bytes", "protect ns",
              "unprotect ns", "prim prot ns", "prim unprot ns", "ratio p", "ratio u",
              "protect pps");
  auto find = [&](const char* prof, std::size_t size) -> const Row& {
    for (const auto& r : rows)
      if (r.profile == prof && r.size == size)
        return r;
    return rows[0];
  };
  std::string json = "{\"rows\":[";
  for (const auto& r : rows) {
    std::printf("%-18s %6zu %12.0f %12.0f %14.0f %14.0f %8.2f %8.2f %12.0f\n", r.profile.c_str(),
                r.size, r.protect_ns, r.unprotect_ns, r.primitive_protect_ns,
                r.primitive_unprotect_ns, r.primitive_protect_ns / r.protect_ns,
                r.primitive_unprotect_ns / r.unprotect_ns, 1e9 / r.protect_ns);
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%s{\"profile\":\"%s\",\"bytes\":%zu,\"protect_ns\":%.1f,\"unprotect_ns\":%.1f,"
                  "\"primitive_protect_ns\":%.1f,\"primitive_unprotect_ns\":%.1f,\"protect_pps_per_"
                  "core\":%.0f,"
                  "\"unprotect_pps_per_core\":%.0f}",
                  json.size() > 9 ? "," : "", r.profile.c_str(), r.size, r.protect_ns,
                  r.unprotect_ns, r.primitive_protect_ns, r.primitive_unprotect_ns,
                  1e9 / r.protect_ns, 1e9 / r.unprotect_ns);
    json += line;
  }
  // Ratio at the typical video packet size: primitive cost / libsrtp-through-wrapper cost
  // (1.0 = no overhead over the cipher itself), protect and unprotect averaged.
  const Row& g = find("AEAD_AES_128_GCM", 1200);
  const Row& m = find("AES128_CM_SHA1_80", 1200);
  double gcm_ratio =
      (g.primitive_protect_ns + g.primitive_unprotect_ns) / (g.protect_ns + g.unprotect_ns);
  double cm_ratio =
      (m.primitive_protect_ns + m.primitive_unprotect_ns) / (m.protect_ns + m.unprotect_ns);
  // SFU ceiling per core at 1200 bytes, GCM: one unprotect in, then per subscriber a rewrite, a
  // protect and a send. Outgoing packets per second for 1 and for 10 subscribers.
  auto ceiling = [&](int subscribers) {
    double per_in = g.unprotect_ns + subscribers * (rewrite_ns + g.protect_ns + send_ns);
    return subscribers * 1e9 / per_in;
  };
  std::printf(
      "\nloopback UDP sendmsg (200 B, to a full queue): %.0f ns   (1200 B, each woken reader's: "
      "%.0f ns)   RTP rewrite: %.1f ns/packet\n",
      send_ns, delivered_send_ns, rewrite_ns);
  std::printf(
      "srtp_gcm_vs_primitive %.3f   srtp_cm_vs_primitive %.3f   (1200 B, protect+unprotect)\n",
      gcm_ratio, cm_ratio);
  std::printf("SFU ceiling per core (GCM, 1200 B): %.0f pps out with 1 subscriber, %.0f with 10\n",
              ceiling(1), ceiling(10));
  char tail[512];
  std::snprintf(
      tail, sizeof(tail),
      "],\"udp_sendmsg_ns\":%.1f,\"udp_sendmsg_delivered_ns\":%.1f,\"rtp_rewrite_ns\":%.2f,"
      "\"sfu_ceiling_pps_per_core\":%.0f,"
      "\"sfu_ceiling_pps_per_core_1_subscriber\":%.0f,\"ratios\":{\"srtp_gcm_vs_primitive\":%.3f,"
      "\"srtp_cm_vs_primitive\":%.3f}}\n",
      send_ns, delivered_send_ns, rewrite_ns, ceiling(10), ceiling(1), gcm_ratio, cm_ratio);
  json += tail;
  if (FILE* f = std::fopen(out_path.c_str(), "w")) {
    std::fputs(json.c_str(), f);
    std::fclose(f);
    std::printf("wrote %s\n", out_path.c_str());
  }
  return 0;
}
