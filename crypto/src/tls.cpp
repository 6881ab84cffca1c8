#include "ringlane/crypto/tls.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ringlane/crypto/dtls.hpp"  // certificate_fingerprint
#include "self_signed.hpp"

namespace ringlane::crypto {
namespace {

// The reason of the newest OpenSSL error, and the queue emptied: the queue is per thread, and
// a worker thread serves many connections, so one connection's error must not outlive it.
std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out = buf;
  } else {
    out = "unknown error";
  }
  ERR_clear_error();
  return out;
}

bool readable(const std::string& path, std::string& error, const char* what) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = std::string("cannot read the TLS ") + what + " " + path + ": " + std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

// A new SSL_CTX with the certificate chain and key of the two files, and the leaf's
// fingerprint; nullptr with `error` otherwise.
SSL_CTX* make_context(const std::string& cert_file, const std::string& key_file,
                      std::string& fingerprint, std::string& error) {
  if (!readable(cert_file, error, "certificate") || !readable(key_file, error, "key")) {
    return nullptr;
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = "cannot make a TLS context: " + openssl_reason();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Renegotiation is a CPU lever for a client (each one a full handshake on our side) and
  // nothing TURN needs; compression is CRIME.
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An idle connection should not hold OpenSSL's 2 x 16 KiB record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // No resumption: TURN clients hold one long connection, and a ticket per handshake is a
  // record sent for nothing.
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    error = "cannot load the TLS certificate " + cert_file + ": " + openssl_reason();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = mismatch ? "the TLS key " + key_file + " does not match the certificate " + cert_file
                     : "cannot load the TLS key " + key_file + ": " + openssl_reason();
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "the TLS key " + key_file + " does not match the certificate " + cert_file + ": " +
            openssl_reason();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  fingerprint = certificate_fingerprint(SSL_CTX_get0_certificate(ctx));
  return ctx;
}

// Writes `data` to `path` through a temporary file and a rename, so a reader (a reload) never
// sees half a file.
bool write_file(const std::string& path, const std::string& data, mode_t mode, std::string& error) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    ok = n > 0;
    done += ok ? static_cast<std::size_t>(n) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

std::shared_ptr<TlsServerContext> TlsServerContext::load(const std::string& cert_file,
                                                         const std::string& key_file,
                                                         std::string& error) {
  std::string fingerprint;
  SSL_CTX* ctx = make_context(cert_file, key_file, fingerprint, error);
  if (ctx == nullptr) {
    return nullptr;
  }
  std::shared_ptr<TlsServerContext> c(new TlsServerContext());
  c->cert_file_ = cert_file;
  c->key_file_ = key_file;
  c->ctx_ = ctx;
  c->fingerprint_ = std::move(fingerprint);
  return c;
}

TlsServerContext::~TlsServerContext() {
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

bool TlsServerContext::reload(std::string& error) {
  std::string fingerprint;
  SSL_CTX* fresh = make_context(cert_file_, key_file_, fingerprint, error);
  if (fresh == nullptr) {
    return false;
  }
  SSL_CTX* old = nullptr;
  {
    std::lock_guard lock(mutex_);
    old = static_cast<SSL_CTX*>(ctx_);
    ctx_ = fresh;
    fingerprint_ = std::move(fingerprint);
  }
  // The SSLs made from the old context hold their own references to it.
  SSL_CTX_free(old);
  return true;
}

void* TlsServerContext::acquire() const {
  std::lock_guard lock(mutex_);
  SSL_CTX_up_ref(static_cast<SSL_CTX*>(ctx_));
  return ctx_;
}

std::string TlsServerContext::fingerprint() const {
  std::lock_guard lock(mutex_);
  return fingerprint_;
}

bool write_self_signed_certificate(const std::string& cert_file, const std::string& key_file,
                                   std::string& error, long days) {
  ERR_clear_error();
  X509* x = nullptr;
  EVP_PKEY* key = nullptr;
  bool ok = make_self_signed("localhost", days, "DNS:localhost,IP:127.0.0.1,IP:::1", x, key);
  std::string cert_pem;
  std::string key_pem;
  if (ok) {
    BIO* b = BIO_new(BIO_s_mem());
    ok = PEM_write_bio_X509(b, x) == 1;
    cert_pem = bio_string(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    ok = ok && PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    key_pem = bio_string(b);
    BIO_free(b);
  }
  EVP_PKEY_free(key);
  X509_free(x);
  if (!ok) {
    error = "cannot make a self-signed certificate: " + openssl_reason();
    return false;
  }
  // The key first: a certificate without its key beside it is no use to a reload.
  return write_file(key_file, key_pem, 0600, error) && write_file(cert_file, cert_pem, 0644, error);
}

std::optional<std::int64_t> certificate_seconds_left(const std::string& cert_file) {
  BIO* b = BIO_new_file(cert_file.c_str(), "r");
  if (b == nullptr) {
    ERR_clear_error();
    return std::nullopt;
  }
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  std::optional<std::int64_t> left;
  int days = 0;
  int seconds = 0;
  // nullptr: from now.
  if (x != nullptr && ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(x)) == 1) {
    left = std::int64_t{days} * 86400 + seconds;
  }
  X509_free(x);
  ERR_clear_error();
  return left;
}

const char* to_string(TlsState s) {
  switch (s) {
    case TlsState::kHandshaking:
      return "handshaking";
    case TlsState::kEstablished:
      return "established";
    case TlsState::kClosed:
      return "closed";
    case TlsState::kFailed:
      return "failed";
  }
  return "unknown";
}

TlsEndpoint::TlsEndpoint(const TlsServerContext& context) {
  auto* ctx = static_cast<SSL_CTX*>(context.acquire());
  SSL* ssl = SSL_new(ctx);
  SSL_CTX_free(ctx);  // the SSL holds its own reference
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    fail("cannot make a TLS session");
    return;
  }
  // An empty read BIO means "wait for more", not EOF.
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_accept_state(ssl);
  ssl_ = ssl;
  rbio_ = rbio;
  wbio_ = wbio;
}

TlsEndpoint::~TlsEndpoint() {
  SSL_free(static_cast<SSL*>(ssl_));
}

void TlsEndpoint::fail(const char* what) {
  error_ = std::string(what) + ": " + openssl_reason();
  state_ = TlsState::kFailed;
}

void TlsEndpoint::handshake() {
  auto* ssl = static_cast<SSL*>(ssl_);
  ERR_clear_error();
  int r = SSL_do_handshake(ssl);
  if (r == 1) {
    state_ = TlsState::kEstablished;
    return;
  }
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    return;
  }
  old_protocol_ = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNSUPPORTED_PROTOCOL;
  fail(e == SSL_ERROR_ZERO_RETURN ? "TLS closed in the handshake" : "TLS handshake failed");
}

void TlsEndpoint::feed(std::span<const std::uint8_t> ciphertext) {
  if (ssl_ == nullptr || state_ == TlsState::kFailed || state_ == TlsState::kClosed ||
      ciphertext.empty()) {
    return;
  }
  // A memory BIO takes everything (it grows); the caller feeds one receive buffer at a time
  // and reads the plaintext out before the next, so it holds at most one partial record.
  BIO_write(static_cast<BIO*>(rbio_), ciphertext.data(), static_cast<int>(ciphertext.size()));
  if (state_ == TlsState::kHandshaking) {
    handshake();
  }
}

std::size_t TlsEndpoint::read(std::span<std::uint8_t> out) {
  if (state_ != TlsState::kEstablished || out.empty()) {
    return 0;
  }
  auto* ssl = static_cast<SSL*>(ssl_);
  ERR_clear_error();
  int r = SSL_read(ssl, out.data(), static_cast<int>(std::min<std::size_t>(out.size(), 1 << 30)));
  if (r > 0) {
    return static_cast<std::size_t>(r);
  }
  int e = SSL_get_error(ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    return 0;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    state_ = TlsState::kClosed;  // close_notify from the peer
    ERR_clear_error();
    return 0;
  }
  fail("TLS record refused");
  return 0;
}

bool TlsEndpoint::write(std::span<const std::uint8_t> plaintext) {
  if (state_ != TlsState::kEstablished) {
    return false;
  }
  if (plaintext.empty()) {
    return true;
  }
  ERR_clear_error();
  int r = SSL_write(static_cast<SSL*>(ssl_), plaintext.data(), static_cast<int>(plaintext.size()));
  if (r == static_cast<int>(plaintext.size())) {
    return true;
  }
  fail("TLS write failed");
  return false;
}

std::size_t TlsEndpoint::pending() const {
  return wbio_ == nullptr ? 0 : BIO_ctrl_pending(static_cast<BIO*>(wbio_));
}

std::size_t TlsEndpoint::take(std::span<std::uint8_t> out) {
  if (wbio_ == nullptr || out.empty()) {
    return 0;
  }
  int n = BIO_read(static_cast<BIO*>(wbio_), out.data(),
                   static_cast<int>(std::min<std::size_t>(out.size(), 1 << 30)));
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void TlsEndpoint::close() {
  if (state_ == TlsState::kEstablished) {
    ERR_clear_error();
    SSL_shutdown(static_cast<SSL*>(ssl_));
    ERR_clear_error();
  }
  if (state_ != TlsState::kFailed) {
    state_ = TlsState::kClosed;
  }
}

const char* TlsEndpoint::version() const {
  return ssl_ == nullptr ? "" : SSL_get_version(static_cast<const SSL*>(ssl_));
}

}  // namespace ringlane::crypto
