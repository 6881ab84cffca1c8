// The TURN-over-TLS server endpoint against a real OpenSSL client on memory BIOs: the
// handshake (TLS 1.3 and 1.2, with SNI and ALPN offered), records both ways in any split, a
// certificate reload that leaves the open session alone, bad files and garbage.
#include "ringlane/crypto/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "ringlane/crypto/dtls.hpp"

namespace ringlane::crypto {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ringlane-tls-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const char* name) const { return (path / name).string(); }
};

// A client SSL on two memory BIOs, trusting exactly the server's self-signed certificate.
struct Client {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* in = nullptr;   // ciphertext from the server
  BIO* out = nullptr;  // ciphertext to the server

  explicit Client(const std::string& ca_file, int max_version = 0, const char* sni = "localhost") {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr), 1);
    if (max_version != 0) {
      SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    ssl = SSL_new(ctx);
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, sni);
    SSL_set1_host(ssl, "localhost");
    static const unsigned char alpn[] = {4,   's', 't', 'u', 'n', 8,   'h',
                                         't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn));
  }
  ~Client() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  std::vector<std::uint8_t> drain() {
    std::vector<std::uint8_t> v(BIO_ctrl_pending(out));
    if (!v.empty()) {
      BIO_read(out, v.data(), static_cast<int>(v.size()));
    }
    return v;
  }
  std::string peer_fingerprint() const {
    X509* x = SSL_get1_peer_certificate(ssl);
    std::string f = x == nullptr ? "" : certificate_fingerprint(x);
    X509_free(x);
    return f;
  }
};

std::vector<std::uint8_t> take_all(TlsEndpoint& server) {
  std::vector<std::uint8_t> v;
  std::uint8_t buf[700];  // smaller than a record: take() must hand it out in pieces
  while (std::size_t n = server.take(buf)) {
    v.insert(v.end(), buf, buf + n);
  }
  return v;
}

std::string last_client_error;

// Moves ciphertext both ways until the client's handshake is done or nothing moves.
bool handshake(Client& c, TlsEndpoint& server) {
  for (int round = 0; round < 20; ++round) {
    int r = SSL_do_handshake(c.ssl);
    int e = SSL_get_error(c.ssl, r);  // now: writing to the BIO below clears its retry flag
    auto to_server = c.drain();
    server.feed(to_server);
    auto to_client = take_all(server);
    if (!to_client.empty()) {
      BIO_write(c.in, to_client.data(), static_cast<int>(to_client.size()));
    }
    if (r == 1 && to_server.empty() && to_client.empty()) {
      return server.established();
    }
    if (r != 1 && e != SSL_ERROR_WANT_READ) {
      char why[256] = "";
      ERR_error_string_n(ERR_get_error(), why, sizeof(why));
      ERR_clear_error();
      last_client_error = std::string(why) + " verify " +
                          X509_verify_cert_error_string(SSL_get_verify_result(c.ssl)) + " server " +
                          server.error();
      return false;
    }
  }
  return false;
}

std::string read_all(TlsEndpoint& server) {
  std::string s;
  std::uint8_t buf[333];
  while (std::size_t n = server.read(buf)) {
    s.append(reinterpret_cast<char*>(buf), n);
  }
  return s;
}

struct TlsEndpointTest : ::testing::Test {
  TempDir dir;
  std::string cert = dir.file("cert.pem");
  std::string key = dir.file("key.pem");
  std::shared_ptr<TlsServerContext> context;
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(write_self_signed_certificate(cert, key, error)) << error;
    context = TlsServerContext::load(cert, key, error);
    ASSERT_TRUE(context) << error;
  }
};

TEST_F(TlsEndpointTest, SelfSignedFilesAreWrittenWithAPrivateKey) {
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  FILE* f = std::fopen(cert.c_str(), "r");
  ASSERT_NE(f, nullptr);
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(X509_check_host(x, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "10.0.0.1", 0), 0);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), EVP_PKEY_EC);
  EXPECT_EQ(certificate_fingerprint(x), context->fingerprint());
  X509_free(x);
}

TEST_F(TlsEndpointTest, Tls13HandshakeAndRecordsBothWays) {
  Client c(cert);
  TlsEndpoint server(*context);
  EXPECT_EQ(server.state(), TlsState::kHandshaking);
  ASSERT_TRUE(handshake(c, server)) << last_client_error;
  EXPECT_STREQ(server.version(), "TLSv1.3");
  EXPECT_EQ(SSL_get_verify_result(c.ssl), X509_V_OK);  // SAN localhost matched
  EXPECT_EQ(c.peer_fingerprint(), context->fingerprint());

  // Client -> server: three writes fed one byte at a time come out whole and in order.
  std::string sent;
  for (int i = 0; i < 3; ++i) {
    std::string m = "message " + std::to_string(i) + std::string(1500, static_cast<char>('a' + i));
    ASSERT_EQ(SSL_write(c.ssl, m.data(), static_cast<int>(m.size())), static_cast<int>(m.size()));
    sent += m;
  }
  auto wire = c.drain();
  std::string got;
  for (std::uint8_t b : wire) {
    server.feed(std::span(&b, 1));
    got += read_all(server);
  }
  EXPECT_EQ(got, sent);

  // Server -> client.
  std::string reply(5000, 'z');
  ASSERT_TRUE(
      server.write(std::span(reinterpret_cast<const std::uint8_t*>(reply.data()), reply.size())));
  EXPECT_GT(server.pending(), reply.size());  // record headers and tags
  auto back = take_all(server);
  EXPECT_EQ(server.pending(), 0u);
  BIO_write(c.in, back.data(), static_cast<int>(back.size()));
  std::string echoed(reply.size(), '\0');
  int n = 0;
  std::size_t off = 0;
  while (off < echoed.size() &&
         (n = SSL_read(c.ssl, echoed.data() + off, static_cast<int>(echoed.size() - off))) > 0) {
    off += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(echoed, reply);

  // close_notify from the client.
  SSL_shutdown(c.ssl);
  server.feed(c.drain());
  EXPECT_EQ(read_all(server), "");
  EXPECT_EQ(server.state(), TlsState::kClosed);
}

TEST_F(TlsEndpointTest, Tls12Works) {
  Client c(cert, TLS1_2_VERSION);
  TlsEndpoint server(*context);
  ASSERT_TRUE(handshake(c, server)) << last_client_error;
  EXPECT_STREQ(server.version(), "TLSv1.2");
  std::string m = "over TLS 1.2";
  SSL_write(c.ssl, m.data(), static_cast<int>(m.size()));
  server.feed(c.drain());
  EXPECT_EQ(read_all(server), m);
}

TEST_F(TlsEndpointTest, OldProtocolsAreRefused) {
  Client c(cert, TLS1_1_VERSION);
  SSL_CTX_set_security_level(c.ctx, 0);
  SSL_set_security_level(c.ssl, 0);
  SSL_set_min_proto_version(c.ssl, TLS1_VERSION);
  TlsEndpoint server(*context);
  EXPECT_FALSE(handshake(c, server));
  EXPECT_EQ(server.state(), TlsState::kFailed);
  EXPECT_TRUE(server.old_protocol()) << server.error();
  EXPECT_FALSE(server.error().empty());
}

TEST_F(TlsEndpointTest, WriteBeforeTheHandshakeIsRefused) {
  TlsEndpoint server(*context);
  std::uint8_t b[4] = {1, 2, 3, 4};
  EXPECT_FALSE(server.write(b));
  EXPECT_EQ(server.pending(), 0u);
  EXPECT_EQ(server.state(), TlsState::kHandshaking);
}

TEST_F(TlsEndpointTest, ReloadServesTheNewCertificateToNewSessionsOnly) {
  Client before(cert);
  TlsEndpoint old_session(*context);
  ASSERT_TRUE(handshake(before, old_session));
  std::string old_fp = context->fingerprint();

  std::string error;
  ASSERT_TRUE(write_self_signed_certificate(cert, key, error)) << error;
  ASSERT_TRUE(context->reload(error)) << error;
  EXPECT_NE(context->fingerprint(), old_fp);

  Client after(cert);  // trusts only the new certificate
  TlsEndpoint new_session(*context);
  ASSERT_TRUE(handshake(after, new_session)) << new_session.error();
  EXPECT_EQ(after.peer_fingerprint(), context->fingerprint());
  EXPECT_EQ(before.peer_fingerprint(), old_fp);

  // The session from before the reload goes on.
  std::string m = "still here";
  SSL_write(before.ssl, m.data(), static_cast<int>(m.size()));
  old_session.feed(before.drain());
  EXPECT_EQ(read_all(old_session), m);

  // A failed reload keeps the certificate that works.
  fs::resize_file(key, 10);
  EXPECT_FALSE(context->reload(error));
  EXPECT_NE(error.find(key), std::string::npos) << error;
  Client again(cert);
  TlsEndpoint third(*context);
  EXPECT_TRUE(handshake(again, third));
}

TEST(TlsContext, BadFilesAreClearErrors) {
  TempDir dir;
  std::string cert = dir.file("c.pem");
  std::string key = dir.file("k.pem");
  std::string error;
  EXPECT_FALSE(TlsServerContext::load(cert, key, error));
  EXPECT_NE(error.find(cert), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;

  std::ofstream(cert) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";
  std::ofstream(key) << "junk";
  EXPECT_FALSE(TlsServerContext::load(cert, key, error));
  EXPECT_NE(error.find("certificate " + cert), std::string::npos) << error;

  // A certificate with someone else's key.
  std::string other_cert = dir.file("o.pem");
  std::string other_key = dir.file("ok.pem");
  ASSERT_TRUE(write_self_signed_certificate(cert, key, error)) << error;
  ASSERT_TRUE(write_self_signed_certificate(other_cert, other_key, error)) << error;
  EXPECT_FALSE(TlsServerContext::load(cert, other_key, error));
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
  EXPECT_TRUE(TlsServerContext::load(cert, key, error));
  EXPECT_EQ(ERR_peek_error(), 0u);  // nothing left on this thread's queue
}

TEST(TlsContext, SecondsLeftOfACertificate) {
  TempDir dir;
  std::string cert = dir.file("c.pem");
  std::string key = dir.file("k.pem");
  std::string error;
  EXPECT_FALSE(certificate_seconds_left(cert));  // no file
  ASSERT_TRUE(write_self_signed_certificate(cert, key, error)) << error;
  auto left = certificate_seconds_left(cert);
  ASSERT_TRUE(left);
  EXPECT_GT(*left, 364 * 86400);
  EXPECT_LE(*left, 365 * 86400);
  // Valid from a day ago for -1 days: expired a day ago.
  ASSERT_TRUE(write_self_signed_certificate(cert, key, error, -1)) << error;
  left = certificate_seconds_left(cert);
  ASSERT_TRUE(left);
  EXPECT_LT(*left, -86000);
  std::ofstream(cert) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";
  EXPECT_FALSE(certificate_seconds_left(cert));
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(TlsEndpointTest, GarbageFailsTheHandshakeWithoutACrash) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    TlsEndpoint server(*context);
    std::vector<std::uint8_t> junk(1 + rng() % 3000);
    for (auto& b : junk) {
      b = static_cast<std::uint8_t>(rng());
    }
    if (trial % 2 == 0) {
      junk[0] = 0x16;  // a handshake record header in front of the noise
      junk.size() > 2 ? (junk[1] = 3, junk[2] = 1) : 0;
    }
    server.feed(junk);
    std::uint8_t out[64];
    EXPECT_EQ(server.read(out), 0u);
    EXPECT_NE(server.state(), TlsState::kEstablished);
    take_all(server);   // an alert, perhaps
    server.feed(junk);  // more after the failure is ignored
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
  // A STUN Binding request where a ClientHello should be: a plain-TCP client on the TLS port.
  TlsEndpoint server(*context);
  std::uint8_t stun[20] = {0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42};
  server.feed(stun);
  EXPECT_EQ(server.state(), TlsState::kFailed);
  EXPECT_FALSE(server.old_protocol());
  EXPECT_FALSE(server.error().empty());
}

TEST_F(TlsEndpointTest, GarbageAfterTheHandshakeFailsTheSession) {
  Client c(cert);
  TlsEndpoint server(*context);
  ASSERT_TRUE(handshake(c, server)) << last_client_error;
  std::uint8_t record[] = {0x17, 3,  3,  0,  32, 1,  2,  3,  4,  5,  6,  7,  8,
                           9,    10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                           22,   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  server.feed(record);
  std::uint8_t out[64];
  EXPECT_EQ(server.read(out), 0u);
  EXPECT_EQ(server.state(), TlsState::kFailed);
  EXPECT_FALSE(server.write(std::span(out, 4)));
}

}  // namespace
}  // namespace ringlane::crypto
