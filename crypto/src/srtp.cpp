#include "ringlane/crypto/srtp.hpp"

#include <srtp2/srtp.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "srtp_openssl.hpp"

namespace ringlane::crypto {
namespace {

void init_libsrtp() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (srtp_init() != srtp_err_status_ok) {
      std::fputs("ringlane: srtp_init failed\n", stderr);
      std::abort();
    }
    if (!install_openssl_srtp_transforms()) {
      std::fputs("ringlane: libsrtp2 refused the OpenSSL AES-ICM/HMAC-SHA1 transforms\n", stderr);
      std::abort();
    }
  });
}

}  // namespace

std::size_t srtp_key_length(SrtpProfile) {
  return SRTP_AES_128_KEY_LEN;
}

std::size_t srtp_salt_length(SrtpProfile p) {
  return p == SrtpProfile::kAeadAes128Gcm ? SRTP_AEAD_SALT_LEN : SRTP_SALT_LEN;
}

std::size_t srtp_keying_material_length(SrtpProfile p) {
  return 2 * (srtp_key_length(p) + srtp_salt_length(p));
}

std::unique_ptr<SrtpSession> SrtpSession::create(SrtpProfile profile,
                                                 std::span<const std::uint8_t> master,
                                                 SrtpDirection direction, std::string* error) {
  init_libsrtp();
  if (master.size() != srtp_key_length(profile) + srtp_salt_length(profile)) {
    if (error != nullptr)
      *error = "master key and salt have the wrong length for the profile";
    return nullptr;
  }
  srtp_policy_t policy{};
  if (profile == SrtpProfile::kAeadAes128Gcm) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
  } else {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
  }
  // Streams for any SSRC are made from this template as packets arrive (or leave).
  policy.ssrc.type = direction == SrtpDirection::kInbound ? ssrc_any_inbound : ssrc_any_outbound;
  // libsrtp reads the key through a non-const pointer but does not write it.
  std::vector<std::uint8_t> key(master.begin(), master.end());
  policy.key = key.data();
  policy.window_size = kReplayWindow;
  // Retransmissions (NACK answered from a cache) repeat a sequence number on purpose.
  policy.allow_repeat_tx = direction == SrtpDirection::kOutbound ? 1 : 0;
  srtp_t session = nullptr;
  srtp_err_status_t st = srtp_create(&session, &policy);
  if (st != srtp_err_status_ok) {
    if (error != nullptr)
      *error = "srtp_create failed: " + std::to_string(static_cast<int>(st));
    return nullptr;
  }
  std::unique_ptr<SrtpSession> s(new SrtpSession());
  s->session_ = session;
  s->profile_ = profile;
  return s;
}

SrtpSession::~SrtpSession() {
  if (session_ != nullptr) {
    srtp_dealloc(static_cast<srtp_t>(session_));
  }
}

std::optional<std::size_t> SrtpSession::run(bool protect, bool rtcp, std::span<std::uint8_t> buffer,
                                            std::size_t length) {
  // libsrtp writes up to SRTP_MAX_TRAILER_LEN past the packet when protecting; refuse
  // rather than let it write past the buffer.
  std::size_t minimum = rtcp ? 8 : 12;
  if (length < minimum || length > buffer.size() || length > INT_MAX ||
      (protect && buffer.size() - length < kMaxTrailer)) {
    ++counters_.bad_length;
    return std::nullopt;
  }
  int len = static_cast<int>(length);
  auto* s = static_cast<srtp_t>(session_);
  srtp_err_status_t st;
  if (protect) {
    st = rtcp ? srtp_protect_rtcp(s, buffer.data(), &len) : srtp_protect(s, buffer.data(), &len);
  } else {
    st =
        rtcp ? srtp_unprotect_rtcp(s, buffer.data(), &len) : srtp_unprotect(s, buffer.data(), &len);
  }
  switch (st) {
    case srtp_err_status_ok:
      ++(protect ? counters_.protected_packets : counters_.unprotected_packets);
      return static_cast<std::size_t>(len);
    case srtp_err_status_auth_fail:
      ++counters_.auth_failures;
      break;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
      ++counters_.replay_failures;
      break;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
      ++counters_.bad_length;
      break;
    default:
      ++counters_.other_failures;
      break;
  }
  return std::nullopt;
}

std::optional<std::size_t> SrtpSession::protect_rtp(std::span<std::uint8_t> b, std::size_t n) {
  return run(true, false, b, n);
}
std::optional<std::size_t> SrtpSession::unprotect_rtp(std::span<std::uint8_t> b, std::size_t n) {
  return run(false, false, b, n);
}
std::optional<std::size_t> SrtpSession::protect_rtcp(std::span<std::uint8_t> b, std::size_t n) {
  return run(true, true, b, n);
}
std::optional<std::size_t> SrtpSession::unprotect_rtcp(std::span<std::uint8_t> b, std::size_t n) {
  return run(false, true, b, n);
}

std::optional<SrtpMasters> split_srtp_keying_material(SrtpProfile profile,
                                                      std::span<const std::uint8_t> m,
                                                      bool we_are_client) {
  std::size_t k = srtp_key_length(profile);
  std::size_t s = srtp_salt_length(profile);
  if (m.size() != 2 * (k + s)) {
    return std::nullopt;
  }
  auto master = [&](std::size_t key_at, std::size_t salt_at) {
    std::vector<std::uint8_t> out(m.begin() + static_cast<long>(key_at),
                                  m.begin() + static_cast<long>(key_at + k));
    out.insert(out.end(), m.begin() + static_cast<long>(salt_at),
               m.begin() + static_cast<long>(salt_at + s));
    return out;
  };
  std::vector<std::uint8_t> client = master(0, 2 * k);
  std::vector<std::uint8_t> server = master(k, 2 * k + s);
  return we_are_client ? SrtpMasters{client, server} : SrtpMasters{server, client};
}

}  // namespace ringlane::crypto
