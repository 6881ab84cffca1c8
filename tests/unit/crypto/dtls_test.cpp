// Two DTLS endpoints back to back in memory: the handshake, the keys both sides export, and
// what happens to lost flights, forged fingerprints and garbage.
#include "ringlane/crypto/dtls.hpp"

#include <gtest/gtest.h>

#include <random>
#include <thread>

namespace ringlane::crypto {
namespace {

struct Pair {
  std::shared_ptr<const DtlsCertificate> client_cert = DtlsCertificate::generate();
  std::shared_ptr<const DtlsCertificate> server_cert = DtlsCertificate::generate();
  std::unique_ptr<DtlsEndpoint> client;
  std::unique_ptr<DtlsEndpoint> server;
  std::size_t largest_datagram = 0;
  std::vector<std::vector<std::uint8_t>> from_server;  // every datagram the server sent

  explicit Pair(std::string client_expects = "", std::string server_expects = "") {
    client = std::make_unique<DtlsEndpoint>(
        client_cert, DtlsRole::kClient,
        client_expects.empty() ? "sha-256 " + server_cert->fingerprint() : client_expects);
    server = std::make_unique<DtlsEndpoint>(
        server_cert, DtlsRole::kServer,
        server_expects.empty() ? client_cert->fingerprint() : server_expects);
  }
  // Moves datagrams both ways until nothing is left to move; returns how many moved.
  int pump(int drop_first_from_client = 0) {
    int moved = 0;
    std::vector<std::uint8_t> d;
    for (bool any = true; any;) {
      any = false;
      while (client->pop(d)) {
        largest_datagram = std::max(largest_datagram, d.size());
        any = true;
        ++moved;
        if (drop_first_from_client > 0) {
          --drop_first_from_client;
          continue;
        }
        server->on_datagram(d);
      }
      while (server->pop(d)) {
        largest_datagram = std::max(largest_datagram, d.size());
        from_server.push_back(d);
        any = true;
        ++moved;
        client->on_datagram(d);
      }
    }
    return moved;
  }
};

TEST(Dtls, CertificateAndFingerprintForm) {
  auto c = DtlsCertificate::generate();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->fingerprint().size(), 95u);  // 32 bytes as AB:CD:..
  EXPECT_EQ(normalize_fingerprint("sha-256 " + c->fingerprint()), c->fingerprint());
  std::string lower = c->fingerprint();
  for (auto& ch : lower)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ(normalize_fingerprint("SHA-256 " + lower), c->fingerprint());
  EXPECT_FALSE(normalize_fingerprint("sha-1 AB:CD"));
  EXPECT_FALSE(normalize_fingerprint(c->fingerprint().substr(3)));
  EXPECT_NE(c->pem().find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(DtlsCertificate::generate()->fingerprint(), c->fingerprint());
}

TEST(Dtls, HandshakeExportsTheSameKeysAndSrtpWorks) {
  Pair p;
  p.client->start();
  p.pump();
  ASSERT_EQ(p.client->state(), DtlsState::kConnected) << p.client->error();
  ASSERT_EQ(p.server->state(), DtlsState::kConnected) << p.server->error();
  EXPECT_EQ(p.client->srtp_profile(), SrtpProfile::kAeadAes128Gcm);  // preferred
  EXPECT_STREQ(p.server->srtp_profile_name(), "SRTP_AEAD_AES_128_GCM");
  auto ck = p.client->srtp_keying_material();
  auto sk = p.server->srtp_keying_material();
  ASSERT_TRUE(ck && sk);
  EXPECT_EQ(*ck, *sk);
  EXPECT_EQ(ck->size(), 56u);
  EXPECT_LE(p.largest_datagram, DtlsEndpoint::kMtu);

  auto client_keys = split_srtp_keying_material(SrtpProfile::kAeadAes128Gcm, *ck, true);
  auto server_keys = split_srtp_keying_material(SrtpProfile::kAeadAes128Gcm, *sk, false);
  auto tx = SrtpSession::create(SrtpProfile::kAeadAes128Gcm, client_keys->local,
                                SrtpDirection::kOutbound);
  auto rx = SrtpSession::create(SrtpProfile::kAeadAes128Gcm, server_keys->remote,
                                SrtpDirection::kInbound);
  std::vector<std::uint8_t> rtp = {0x80, 0x6f, 0,    1,    0, 0, 0, 1,
                                   0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4};
  std::vector<std::uint8_t> buf = rtp;
  buf.resize(rtp.size() + SrtpSession::kMaxTrailer);
  auto n = tx->protect_rtp(buf, rtp.size());
  ASSERT_TRUE(n);
  auto m = rx->unprotect_rtp(buf, *n);
  ASSERT_TRUE(m);
  EXPECT_EQ(std::vector<std::uint8_t>(buf.begin(), buf.begin() + static_cast<long>(*m)), rtp);

  // close_notify reaches the other side.
  p.client->close();
  p.pump();
  EXPECT_EQ(p.server->state(), DtlsState::kClosed);
}

// Handshake message types of the plaintext (epoch 0) handshake records in `datagrams`.
std::vector<int> plaintext_handshake_types(
    const std::vector<std::vector<std::uint8_t>>& datagrams) {
  std::vector<int> types;
  for (const auto& d : datagrams) {
    // DTLS record: type, version(2), epoch(2), sequence(6), length(2); then the fragment.
    for (std::size_t at = 0; at + 13 <= d.size();) {
      std::size_t length = (std::size_t{d[at + 11]} << 8) | d[at + 12];
      bool epoch0 = d[at + 3] == 0 && d[at + 4] == 0;
      if (d[at] == 22 && epoch0 && length >= 1 && at + 13 + length <= d.size())
        types.push_back(d[at + 13]);
      at += 13 + length;
    }
  }
  return types;
}

TEST(Dtls, ServerIssuesNoSessionTicket) {
  // WebRTC never resumes a session: a ticket (the session with the peer's certificate,
  // encrypted) would be work and bytes for nothing. The client offers the extension; the
  // server's flights must not carry a NewSessionTicket (handshake type 4).
  Pair p;
  p.client->start();
  p.pump();
  ASSERT_EQ(p.server->state(), DtlsState::kConnected) << p.server->error();
  auto types = plaintext_handshake_types(p.from_server);
  EXPECT_NE(std::find(types.begin(), types.end(), 2), types.end());  // ServerHello seen
  EXPECT_EQ(std::find(types.begin(), types.end(), 4), types.end());
}

TEST(Dtls, WarmUpHandshakesWithItself) {
  auto c = DtlsCertificate::generate();
  ASSERT_TRUE(c);
  EXPECT_TRUE(DtlsEndpoint::warm_up(c));
  EXPECT_TRUE(DtlsEndpoint::warm_up(c));  // again: nothing one-time is left half done
}

TEST(Dtls, ForgedFingerprintFailsTheHandshake) {
  std::string forged(95, 'A');
  for (std::size_t i = 2; i < forged.size(); i += 3)
    forged[i] = ':';
  Pair p("", forged);  // the server expects a certificate the client does not have
  p.client->start();
  p.pump();
  EXPECT_EQ(p.server->state(), DtlsState::kFailed);
  EXPECT_NE(p.server->error().find("fingerprint"), std::string::npos) << p.server->error();
  EXPECT_NE(p.client->state(), DtlsState::kConnected);
  EXPECT_FALSE(p.server->srtp_keying_material());

  Pair q(forged, "");  // the client is told a wrong server fingerprint
  q.client->start();
  q.pump();
  EXPECT_EQ(q.client->state(), DtlsState::kFailed);
  EXPECT_NE(q.server->state(), DtlsState::kConnected);
}

TEST(Dtls, LostFlightIsRetransmittedOnTimeout) {
  Pair p;
  p.client->start();
  p.pump(1);  // the ClientHello is lost
  EXPECT_EQ(p.client->state(), DtlsState::kConnecting);
  auto t = p.client->timeout();
  ASSERT_TRUE(t);
  EXPECT_LE(t->count(), 100);
  std::this_thread::sleep_for(*t + std::chrono::milliseconds(5));
  p.client->on_timeout();
  p.pump();
  EXPECT_EQ(p.client->state(), DtlsState::kConnected) << p.client->error();
  EXPECT_EQ(p.server->state(), DtlsState::kConnected) << p.server->error();
  EXPECT_FALSE(p.client->timeout());
}

TEST(Dtls, GarbageIsDroppedAndCounted) {
  Pair p;
  std::mt19937 rng(7);
  std::vector<std::uint8_t> junk(300);
  // Before the handshake: not DTLS at all, and DTLS-looking noise.
  for (int i = 0; i < 50; ++i) {
    for (auto& b : junk)
      b = static_cast<std::uint8_t>(rng());
    junk[0] = static_cast<std::uint8_t>(i % 2 == 0 ? 0x80 : 0x16);
    p.server->on_datagram(junk);
  }
  EXPECT_GE(p.server->records_dropped(), 25u);
  std::vector<std::uint8_t> out;
  while (p.server->pop(out)) {
  }
  // The handshake still completes on a fresh pair after noise; and after connecting, forged
  // application records are dropped while the session stays up.
  Pair q;
  q.client->start();
  q.pump();
  ASSERT_EQ(q.server->state(), DtlsState::kConnected);
  for (int i = 0; i < 50; ++i) {
    for (auto& b : junk)
      b = static_cast<std::uint8_t>(rng());
    junk[0] = 0x17;
    junk[1] = 0xfe;
    junk[2] = 0xfd;
    q.server->on_datagram(junk);
  }
  EXPECT_EQ(q.server->state(), DtlsState::kConnected);
  EXPECT_EQ(q.server->srtp_keying_material(), q.client->srtp_keying_material());
}

}  // namespace
}  // namespace ringlane::crypto
