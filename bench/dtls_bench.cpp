// The CPU one DTLS-SRTP handshake costs each side (ringlane's crypto::DtlsEndpoint, in memory,
// no sockets), against the public-key arithmetic the handshake cannot avoid measured in the
// same run with OpenSSL's EVP calls: one ECDHE P-256 key generation and derivation, one ECDSA
// P-256 signature and one verification per side (certificates made beforehand, as the node
// does at start). The ratio is what the protocol machinery adds on top of the arithmetic;
// `sfu_connect_p95_ms` is ~100 of these queued on one worker. Thread CPU time, best of 3.
// Prints a table and writes JSON (default bench/out/dtls.json).
//   dtls_bench [--out PATH] [--handshakes N]
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "ringlane/crypto/dtls.hpp"

using namespace ringlane;

namespace {

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Sides {
  double server = 0;  // seconds of CPU in the server endpoint's calls
  double client = 0;
  int failed = 0;
};

// One handshake, each side's calls timed separately (the datagrams are handed over in memory).
void handshake(const std::shared_ptr<const crypto::DtlsCertificate>& server_cert,
               const std::shared_ptr<const crypto::DtlsCertificate>& client_cert, Sides& sides) {
  double t0 = cpu_now();
  crypto::DtlsEndpoint client(client_cert, crypto::DtlsRole::kClient, server_cert->fingerprint());
  client.start();
  double t1 = cpu_now();
  crypto::DtlsEndpoint server(server_cert, crypto::DtlsRole::kServer, client_cert->fingerprint());
  double t2 = cpu_now();
  sides.client += t1 - t0;
  sides.server += t2 - t1;
  std::vector<std::uint8_t> datagram;
  for (int flight = 0; flight < 16; ++flight) {
    bool moved = false;
    while (client.pop(datagram)) {
      double a = cpu_now();
      server.on_datagram(datagram);
      sides.server += cpu_now() - a;
      moved = true;
    }
    while (server.pop(datagram)) {
      double a = cpu_now();
      client.on_datagram(datagram);
      sides.client += cpu_now() - a;
      moved = true;
    }
    if (!moved)
      break;
  }
  // Both sides derive their SRTP keys, as the node and a browser do.
  double a = cpu_now();
  bool ok = server.state() == crypto::DtlsState::kConnected && server.srtp_keying_material();
  sides.server += cpu_now() - a;
  ok = ok && client.state() == crypto::DtlsState::kConnected && client.srtp_keying_material();
  if (!ok)
    ++sides.failed;
}

EVP_PKEY* p256_key() {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  EVP_PKEY_keygen_init(ctx);
  EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1);
  EVP_PKEY_keygen(ctx, &key);
  EVP_PKEY_CTX_free(ctx);
  return key;
}

// The arithmetic one side of an ECDHE-ECDSA handshake does: an ephemeral key, the shared
// secret with the peer's ephemeral key, one signature (ServerKeyExchange or CertificateVerify)
// and one verification (the peer's). Returns false if OpenSSL refused any step.
bool arithmetic(EVP_PKEY* identity, EVP_PKEY* peer_ephemeral) {
  EVP_PKEY* ephemeral = p256_key();
  EVP_PKEY_CTX* derive = EVP_PKEY_CTX_new(ephemeral, nullptr);
  unsigned char secret[32];
  std::size_t secret_len = sizeof(secret);
  bool ok = ephemeral != nullptr && EVP_PKEY_derive_init(derive) == 1 &&
            EVP_PKEY_derive_set_peer(derive, peer_ephemeral) == 1 &&
            EVP_PKEY_derive(derive, secret, &secret_len) == 1;
  EVP_PKEY_CTX_free(derive);
  EVP_PKEY_free(ephemeral);
  unsigned char message[128] = {1};
  unsigned char signature[80];
  std::size_t signature_len = sizeof(signature);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ok = ok && EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, identity) == 1 &&
       EVP_DigestSign(md, signature, &signature_len, message, sizeof(message)) == 1;
  EVP_MD_CTX_free(md);
  md = EVP_MD_CTX_new();
  ok = ok && EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, identity) == 1 &&
       EVP_DigestVerify(md, signature, signature_len, message, sizeof(message)) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "bench/out/dtls.json";
  int n = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--out") == 0)
      out_path = argv[i + 1];
    else if (std::strcmp(argv[i], "--handshakes") == 0)
      n = std::max(1, std::atoi(argv[i + 1]));
  }
  auto server_cert = crypto::DtlsCertificate::generate();
  auto client_cert = crypto::DtlsCertificate::generate();
  if (!server_cert || !client_cert || !crypto::DtlsEndpoint::warm_up(server_cert)) {
    std::fprintf(stderr, "dtls_bench: cannot make certificates or warm up\n");
    return 1;
  }
  double best_server = 1e9;
  double best_client = 1e9;
  double best_math = 1e9;
  int failed = 0;
  EVP_PKEY* identity = p256_key();
  EVP_PKEY* peer = p256_key();
  for (int round = 0; round < 3; ++round) {
    Sides sides;
    for (int i = 0; i < n; ++i)
      handshake(server_cert, client_cert, sides);
    failed += sides.failed;
    best_server = std::min(best_server, sides.server / n);
    best_client = std::min(best_client, sides.client / n);
    double t = cpu_now();
    for (int i = 0; i < n; ++i) {
      if (!arithmetic(identity, peer))
        ++failed;
    }
    best_math = std::min(best_math, (cpu_now() - t) / n);
  }
  EVP_PKEY_free(identity);
  EVP_PKEY_free(peer);
  std::printf("| per handshake (best of 3 x %d) | µs of CPU | vs the arithmetic |\n", n);
  std::printf("|---|---:|---:|\n");
  std::printf("| server side (ringlane DtlsEndpoint) | %.0f | %.2f |\n", best_server * 1e6,
              best_server / best_math);
  std::printf("| client side (ringlane DtlsEndpoint) | %.0f | %.2f |\n", best_client * 1e6,
              best_client / best_math);
  std::printf("| ECDHE + ECDSA sign + verify, P-256 (EVP) | %.0f | 1.00 |\n", best_math * 1e6);
  std::printf("failed handshakes: %d\n", failed);
  if (FILE* f = std::fopen(out_path.c_str(), "w")) {
    std::fprintf(f,
                 "{\"handshakes\": %d, \"server_us\": %.1f, \"client_us\": %.1f, "
                 "\"arithmetic_us\": %.1f, \"failed\": %d, \"ratios\": {\"dtls_server_vs_"
                 "arithmetic\": %.3f, \"dtls_client_vs_arithmetic\": %.3f}}\n",
                 n, best_server * 1e6, best_client * 1e6, best_math * 1e6, failed,
                 best_server / best_math, best_client / best_math);
    std::fclose(f);
  }
  return failed == 0 ? 0 : 1;
}
