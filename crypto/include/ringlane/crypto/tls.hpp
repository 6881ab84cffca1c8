#pragma once
// A TLS 1.2/1.3 server endpoint for TURN over TLS (RFC 8656 §3.1, `turns:`) on OpenSSL memory
// BIOs, driven by the caller: ciphertext in, plaintext out; plaintext in, ciphertext out. No
// sockets, no threads, no blocking. ALPN and SNI are accepted and ignored (one certificate).
//
// The certificate lives in a TlsServerContext shared by every endpoint of a process. reload()
// swaps in a new SSL_CTX for the connections made after it; an endpoint keeps the SSL_CTX it
// was made with (OpenSSL counts the reference), so existing connections go on unchanged.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace ringlane::crypto {

class TlsServerContext {
 public:
  // Loads a PEM certificate chain (leaf first) and its PEM private key; nullptr with `error`
  // naming the file and what is wrong with it.
  static std::shared_ptr<TlsServerContext> load(const std::string& cert_file,
                                                const std::string& key_file, std::string& error);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // Reads the same files again; on success new endpoints use the new certificate. On failure
  // the old one stays and `error` says why.
  bool reload(std::string& error);
  // The SSL_CTX* new endpoints take, with a reference the caller must give back
  // (SSL_CTX_free); safe to call from any thread.
  void* acquire() const;
  // SHA-256 fingerprint "AB:CD:..." of the current leaf certificate.
  std::string fingerprint() const;
  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }

 private:
  TlsServerContext() = default;
  std::string cert_file_;
  std::string key_file_;
  mutable std::mutex mutex_;  // taken on accept and reload only, never on the packet path
  void* ctx_ = nullptr;       // SSL_CTX*
  std::string fingerprint_;
};

// Makes a self-signed ECDSA P-256 certificate (CN and SAN localhost, 127.0.0.1, ::1; valid for
// `days` from now, a year unless told) and writes it and its key as PEM, the key with mode
// 0600. False with `error` if not.
bool write_self_signed_certificate(const std::string& cert_file, const std::string& key_file,
                                   std::string& error, long days = 365);
// Seconds until the (first) certificate in the PEM file `cert_file` expires, negative once it
// has; nullopt when the file cannot be read or holds no certificate.
std::optional<std::int64_t> certificate_seconds_left(const std::string& cert_file);

enum class TlsState : std::uint8_t { kHandshaking, kEstablished, kClosed, kFailed };
const char* to_string(TlsState s);

class TlsEndpoint {
 public:
  explicit TlsEndpoint(const TlsServerContext& context);
  ~TlsEndpoint();
  TlsEndpoint(const TlsEndpoint&) = delete;
  TlsEndpoint& operator=(const TlsEndpoint&) = delete;

  // Ciphertext from the peer, any split; drives the handshake. The handshake's replies (and
  // alerts) are then waiting in take().
  void feed(std::span<const std::uint8_t> ciphertext);
  // Decrypted bytes into `out`; 0 when none is ready (or the state left kEstablished).
  std::size_t read(std::span<std::uint8_t> out);
  // Encrypts `plaintext` into records waiting in take(); false (nothing sent) unless
  // established.
  bool write(std::span<const std::uint8_t> plaintext);
  // Ciphertext waiting to go to the peer.
  std::size_t pending() const;
  // Moves up to out.size() bytes of it into `out`; returns how many.
  std::size_t take(std::span<std::uint8_t> out);
  // Sends close_notify (waiting in take()); the state becomes kClosed.
  void close();

  TlsState state() const { return state_; }
  bool established() const { return state_ == TlsState::kEstablished; }
  const std::string& error() const { return error_; }
  // The handshake failed because the client offered only protocol versions older than TLS 1.2.
  bool old_protocol() const { return old_protocol_; }
  // "TLSv1.3" etc. once established.
  const char* version() const;

 private:
  void handshake();
  void fail(const char* what);
  void* ssl_ = nullptr;   // SSL*
  void* rbio_ = nullptr;  // BIO* the SSL reads ciphertext from
  void* wbio_ = nullptr;  // BIO* the SSL writes ciphertext to
  TlsState state_ = TlsState::kHandshaking;
  bool old_protocol_ = false;
  std::string error_;
};

}  // namespace ringlane::crypto
