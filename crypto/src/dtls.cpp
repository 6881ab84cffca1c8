#include "ringlane/crypto/dtls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "self_signed.hpp"

namespace ringlane::crypto {

// Reaches DtlsEndpoint's internals from OpenSSL's C callbacks.
struct DtlsAccess {
  static int ssl_index() {
    static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }
  static DtlsEndpoint* from(SSL* ssl) {
    return static_cast<DtlsEndpoint*>(SSL_get_ex_data(ssl, ssl_index()));
  }

  // The BIO under the SSL object: each write is one datagram for the outbox; a read hands
  // over the datagram being processed, once.
  static int write(BIO* b, const char* data, int len) {
    auto* ep = static_cast<DtlsEndpoint*>(BIO_get_data(b));
    ep->outbox_.emplace_back(data, data + len);
    return len;
  }
  static int read(BIO* b, char* out, int len) {
    auto* ep = static_cast<DtlsEndpoint*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (ep->inbox_.empty()) {
      BIO_set_retry_read(b);
      return -1;
    }
    auto n =
        static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(len), ep->inbox_.size()));
    std::memcpy(out, ep->inbox_.data(), static_cast<std::size_t>(n));
    ep->inbox_ = {};
    return n;
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_DGRAM_QUERY_MTU:
        return static_cast<long>(DtlsEndpoint::kMtu);
      case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
        return 28;  // IPv4 + UDP
      default:
        return 0;
    }
  }
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringlane-dgram");
      BIO_meth_set_write(bm, write);
      BIO_meth_set_read(bm, read);
      BIO_meth_set_ctrl(bm, ctrl);
      BIO_meth_set_create(bm, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return bm;
    }();
    return m;
  }

  // Trust is the fingerprint signaled in SDP (RFC 5763 §5), not a CA: a self-signed leaf is
  // expected, and accepted only if its SHA-256 fingerprint is the one we were told.
  static int verify(int, X509_STORE_CTX* store) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    DtlsEndpoint* ep = from(ssl);
    if (X509_STORE_CTX_get_error_depth(store) != 0) {
      return 1;
    }
    std::string got = certificate_fingerprint(X509_STORE_CTX_get_current_cert(store));
    if (got != ep->expected_fingerprint_) {
      ep->error_ = "peer certificate fingerprint " + got + " is not the signaled " +
                   ep->expected_fingerprint_;
      return 0;
    }
    ep->fingerprint_ok_ = true;
    return 1;
  }

  // Retransmission timer: 100 ms, doubling to at most 3 s (OpenSSL's default starts at 1 s).
  static unsigned int timer(SSL*, unsigned int previous_us) {
    return previous_us == 0 ? 100'000u : std::min(previous_us * 2, 3'000'000u);
  }
};

const char* to_string(DtlsState s) {
  switch (s) {
    case DtlsState::kNew:
      return "new";
    case DtlsState::kConnecting:
      return "connecting";
    case DtlsState::kConnected:
      return "connected";
    case DtlsState::kFailed:
      return "failed";
    case DtlsState::kClosed:
      return "closed";
  }
  return "unknown";
}

std::string certificate_fingerprint(void* x509) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(static_cast<X509*>(x509), EVP_sha256(), md, &n);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    if (i > 0)
      out.push_back(':');
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::optional<std::string> normalize_fingerprint(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (s.rfind("SHA-256 ", 0) == 0) {
    s = s.substr(8);
  }
  if (s.size() != 32 * 3 - 1)
    return std::nullopt;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool colon = i % 3 == 2;
    if (colon ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i])))
      return std::nullopt;
  }
  return s;
}

std::shared_ptr<const DtlsCertificate> DtlsCertificate::generate(std::string* error) {
  X509* x = nullptr;
  EVP_PKEY* key = nullptr;
  if (!make_self_signed("ringlane", 30, nullptr, x, key)) {
    if (error != nullptr)
      *error = "cannot make the DTLS certificate";
    return nullptr;
  }
  std::shared_ptr<DtlsCertificate> c(new DtlsCertificate());
  c->x509_ = x;
  c->key_ = key;
  c->fingerprint_ = certificate_fingerprint(x);
  // One context for every endpoint of this certificate: an SSL_CTX costs tens of KB and a
  // certificate load, per session otherwise. Read-only once made, so threads may share it.
  SSL_CTX* ctx = SSL_CTX_new(DTLS_method());
  SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION);
  SSL_CTX_use_certificate(ctx, x);
  SSL_CTX_use_PrivateKey(ctx, key);
  // RFC 7714 §14.2: AEAD_AES_128_GCM first; RFC 5764's AES128_CM_SHA1_80 still accepted.
  SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, DtlsAccess::verify);
  // WebRTC never resumes a DTLS session (each peer connection brings a new certificate), so
  // neither keep sessions nor issue tickets: a ticket is the session, peer certificate
  // included, serialized and encrypted for nothing on every handshake.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  c->ctx_ = ctx;
  return c;
}

DtlsCertificate::~DtlsCertificate() {
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
  X509_free(static_cast<X509*>(x509_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

std::string DtlsCertificate::pem() const {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, static_cast<X509*>(x509_));
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

DtlsEndpoint::DtlsEndpoint(std::shared_ptr<const DtlsCertificate> certificate, DtlsRole role,
                           std::string expected_peer_fingerprint)
    : certificate_(std::move(certificate)), role_(role) {
  expected_fingerprint_ = normalize_fingerprint(expected_peer_fingerprint).value_or("");
  auto* ctx = static_cast<SSL_CTX*>(certificate_->context());
  SSL_CTX_up_ref(ctx);
  SSL* ssl = SSL_new(ctx);
  SSL_set_ex_data(ssl, DtlsAccess::ssl_index(), this);
  BIO* bio = BIO_new(DtlsAccess::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);
  SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
  SSL_set_mtu(ssl, kMtu);
  DTLS_set_link_mtu(ssl, kMtu);
  DTLS_set_timer_cb(ssl, DtlsAccess::timer);
  if (role_ == DtlsRole::kClient) {
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  ctx_ = ctx;
  ssl_ = ssl;
  if (expected_fingerprint_.empty()) {
    fail("the signaled peer fingerprint is malformed");
  }
}

DtlsEndpoint::~DtlsEndpoint() {
  SSL_free(static_cast<SSL*>(ssl_));
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void DtlsEndpoint::fail(std::string why) {
  state_ = DtlsState::kFailed;
  if (error_.empty()) {
    error_ = std::move(why);
  }
}

void DtlsEndpoint::start() {
  if (state_ == DtlsState::kNew) {
    state_ = DtlsState::kConnecting;
    advance();
  }
}

void DtlsEndpoint::on_datagram(std::span<const std::uint8_t> d) {
  // RFC 7983: DTLS records start with 20..63; anything else, or input after the end, is a
  // counted drop.
  if (d.empty() || d[0] < 20 || d[0] > 63 || state_ == DtlsState::kFailed ||
      state_ == DtlsState::kClosed) {
    ++dropped_;
    return;
  }
  if (state_ == DtlsState::kNew) {
    state_ = DtlsState::kConnecting;  // a server learns of the handshake from the ClientHello
  }
  inbox_ = d;
  advance();
  inbox_ = {};
}

void DtlsEndpoint::advance() {
  auto* ssl = static_cast<SSL*>(ssl_);
  ERR_clear_error();
  if (state_ == DtlsState::kConnecting) {
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
      if (!fingerprint_ok_) {
        fail("the peer presented no certificate");
      } else if (SSL_get_selected_srtp_profile(ssl) == nullptr) {
        fail("the peer did not negotiate use_srtp");
      } else {
        state_ = DtlsState::kConnected;
      }
      return;
    }
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
      fail(std::string("handshake failed: ") + buf);
    }
    return;
  }
  if (state_ == DtlsState::kConnected) {
    // Application data (data channels) comes with the SFU; until then it is read and
    // dropped, and a close_notify ends the session.
    std::uint8_t buf[2048];
    for (;;) {
      int r = SSL_read(ssl, buf, sizeof(buf));
      if (r > 0) {
        ++dropped_;
        continue;
      }
      int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_ZERO_RETURN) {
        state_ = DtlsState::kClosed;
      } else if (e != SSL_ERROR_WANT_READ) {
        ++dropped_;  // a bad record after the handshake: counted, the session stays up
        ERR_clear_error();
      }
      return;
    }
  }
}

bool DtlsEndpoint::pop(std::vector<std::uint8_t>& out) {
  if (outbox_.empty())
    return false;
  out = std::move(outbox_.front());
  outbox_.pop_front();
  return true;
}

std::optional<std::chrono::milliseconds> DtlsEndpoint::timeout() const {
  timeval tv{};
  if (state_ != DtlsState::kConnecting || DTLSv1_get_timeout(static_cast<SSL*>(ssl_), &tv) != 1) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void DtlsEndpoint::on_timeout() {
  if (state_ != DtlsState::kConnecting)
    return;
  if (DTLSv1_handle_timeout(static_cast<SSL*>(ssl_)) < 0) {
    fail("handshake timed out");
  }
}

void DtlsEndpoint::close() {
  if (state_ == DtlsState::kConnected) {
    SSL_shutdown(static_cast<SSL*>(ssl_));
  }
  state_ = DtlsState::kClosed;
}

std::optional<SrtpProfile> DtlsEndpoint::srtp_profile() const {
  const SRTP_PROTECTION_PROFILE* p = SSL_get_selected_srtp_profile(static_cast<SSL*>(ssl_));
  if (state_ != DtlsState::kConnected || p == nullptr)
    return std::nullopt;
  if (p->id == SRTP_AEAD_AES_128_GCM)
    return SrtpProfile::kAeadAes128Gcm;
  if (p->id == SRTP_AES128_CM_SHA1_80)
    return SrtpProfile::kAes128CmSha1_80;
  return std::nullopt;
}

const char* DtlsEndpoint::srtp_profile_name() const {
  const SRTP_PROTECTION_PROFILE* p = SSL_get_selected_srtp_profile(static_cast<SSL*>(ssl_));
  return p != nullptr ? p->name : "";
}

std::optional<std::vector<std::uint8_t>> DtlsEndpoint::srtp_keying_material() const {
  auto profile = srtp_profile();
  if (!profile)
    return std::nullopt;
  std::vector<std::uint8_t> out(srtp_keying_material_length(*profile));
  static constexpr char kLabel[] = "EXTRACTOR-dtls_srtp";  // RFC 5764 §4.2
  if (SSL_export_keying_material(static_cast<SSL*>(ssl_), out.data(), out.size(), kLabel,
                                 sizeof(kLabel) - 1, nullptr, 0, 0) != 1) {
    return std::nullopt;
  }
  return out;
}

bool DtlsEndpoint::warm_up(const std::shared_ptr<const DtlsCertificate>& certificate) {
  DtlsEndpoint client(certificate, DtlsRole::kClient, certificate->fingerprint());
  DtlsEndpoint server(certificate, DtlsRole::kServer, certificate->fingerprint());
  client.start();
  std::vector<std::uint8_t> datagram;
  // A handshake is 4 flights; the bound only stops a broken library from looping.
  for (int flight = 0; flight < 16; ++flight) {
    bool moved = false;
    while (client.pop(datagram)) {
      server.on_datagram(datagram);
      moved = true;
    }
    while (server.pop(datagram)) {
      client.on_datagram(datagram);
      moved = true;
    }
    if (!moved)
      break;
  }
  if (client.state() != DtlsState::kConnected || server.state() != DtlsState::kConnected)
    return false;
  auto keys = server.srtp_keying_material();
  if (!keys)
    return false;
  // Both profiles a peer may pick, one packet each way, so both transforms' first use is here.
  for (SrtpProfile profile : {SrtpProfile::kAeadAes128Gcm, SrtpProfile::kAes128CmSha1_80}) {
    std::span<const std::uint8_t> master(keys->data(),
                                         srtp_key_length(profile) + srtp_salt_length(profile));
    auto out = SrtpSession::create(profile, master, SrtpDirection::kOutbound);
    auto in = SrtpSession::create(profile, master, SrtpDirection::kInbound);
    if (!out || !in)
      return false;
    std::vector<std::uint8_t> packet(12 + 100 + SrtpSession::kMaxTrailer, 0);
    packet[0] = 0x80;  // RTP version 2, sequence 0, SSRC 0
    auto sealed = out->protect_rtp(packet, 112);
    if (!sealed || !in->unprotect_rtp(packet, *sealed))
      return false;
  }
  return true;
}

}  // namespace ringlane::crypto
