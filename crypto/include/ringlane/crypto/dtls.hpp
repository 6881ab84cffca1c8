#pragma once
// A DTLS 1.2 endpoint for DTLS-SRTP (RFC 5763, RFC 5764) on OpenSSL, driven by the caller:
// datagrams in, datagrams out, a timer deadline out. No sockets, no threads.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/crypto/srtp.hpp"

namespace ringlane::crypto {

// A self-signed ECDSA P-256 certificate made at start-up, and its SHA-256 fingerprint.
class DtlsCertificate {
 public:
  static std::shared_ptr<const DtlsCertificate> generate(std::string* error = nullptr);
  ~DtlsCertificate();
  // "AB:CD:..." (SDP a=fingerprint value after "sha-256 ").
  const std::string& fingerprint() const { return fingerprint_; }
  std::string pem() const;
  void* x509() const { return x509_; }
  void* key() const { return key_; }
  void* context() const { return ctx_; }  // SSL_CTX* shared by the certificate's endpoints

 private:
  DtlsCertificate() = default;
  void* x509_ = nullptr;  // X509*
  void* key_ = nullptr;   // EVP_PKEY*
  void* ctx_ = nullptr;   // SSL_CTX*
  std::string fingerprint_;
};

// "sha-256 AB:CD:..." or "AB:CD:..." -> "AB:CD:..." upper-case; nullopt if malformed.
std::optional<std::string> normalize_fingerprint(std::string_view sdp_value);
std::string certificate_fingerprint(void* x509);

enum class DtlsRole : std::uint8_t { kClient, kServer };
enum class DtlsState : std::uint8_t { kNew, kConnecting, kConnected, kFailed, kClosed };
const char* to_string(DtlsState s);

class DtlsEndpoint {
 public:
  static constexpr std::size_t kMtu = 1200;

  DtlsEndpoint(std::shared_ptr<const DtlsCertificate> certificate, DtlsRole role,
               std::string expected_peer_fingerprint);
  ~DtlsEndpoint();
  DtlsEndpoint(const DtlsEndpoint&) = delete;
  DtlsEndpoint& operator=(const DtlsEndpoint&) = delete;

  // Begins the handshake (the client's first flight is then waiting in pop()).
  void start();
  // A datagram from the peer; several records in one datagram are fine.
  void on_datagram(std::span<const std::uint8_t> datagram);
  // Next datagram to send, or false when none is waiting.
  bool pop(std::vector<std::uint8_t>& out);
  // Time until on_timeout() must be called to retransmit; nullopt when no timer runs.
  std::optional<std::chrono::milliseconds> timeout() const;
  void on_timeout();
  // Sends close_notify; the state becomes kClosed.
  void close();

  DtlsState state() const { return state_; }
  const std::string& error() const { return error_; }
  std::optional<SrtpProfile> srtp_profile() const;
  const char* srtp_profile_name() const;
  // RFC 5764 §4.2 keying material (label EXTRACTOR-dtls_srtp), 2*(key+salt) bytes.
  std::optional<std::vector<std::uint8_t>> srtp_keying_material() const;
  // Counted reasons for refused input.
  std::uint64_t records_dropped() const { return dropped_; }

  // One handshake of `certificate` with itself in memory, and SRTP sessions from its keys: the
  // process's one-time costs (libsrtp's cipher self-tests, OpenSSL's algorithm fetches) are
  // paid at start, not by the first peer, nor by every peer queued behind it on a worker.
  // False if that handshake failed (the library is then unusable).
  static bool warm_up(const std::shared_ptr<const DtlsCertificate>& certificate);

 private:
  void advance();
  void fail(std::string why);
  friend struct DtlsAccess;

  std::shared_ptr<const DtlsCertificate> certificate_;
  DtlsRole role_;
  std::string expected_fingerprint_;
  void* ctx_ = nullptr;  // SSL_CTX*
  void* ssl_ = nullptr;  // SSL*
  DtlsState state_ = DtlsState::kNew;
  std::string error_;
  std::deque<std::vector<std::uint8_t>> outbox_;
  std::span<const std::uint8_t> inbox_;
  bool fingerprint_ok_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace ringlane::crypto
