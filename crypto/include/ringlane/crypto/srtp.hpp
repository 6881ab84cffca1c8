#pragma once
// SRTP/SRTCP on libsrtp2 (RFC 3711, RFC 7714): protect and unprotect in place in the packet's
// own buffer (which must have kMaxTrailer bytes of tailroom for the tag), streams added on
// the fly per SSRC, replay and rollover handled by libsrtp, every failure counted by reason.
// One session protects (outbound) or unprotects (inbound); a DTLS-SRTP peer has one of each.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ringlane::crypto {

enum class SrtpProfile : std::uint8_t {
  kAes128CmSha1_80,  // SRTP_AES128_CM_HMAC_SHA1_80 (RFC 5764 profile 0x0001)
  kAeadAes128Gcm,    // SRTP_AEAD_AES_128_GCM (RFC 7714 profile 0x0007)
};

std::size_t srtp_key_length(SrtpProfile p);   // master key: 16
std::size_t srtp_salt_length(SrtpProfile p);  // master salt: 14 (CM) or 12 (GCM)

struct SrtpCounters {
  std::uint64_t protected_packets = 0;
  std::uint64_t unprotected_packets = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t replay_failures = 0;  // replayed, or too old for the window
  std::uint64_t bad_length = 0;       // too short to be SRTP/SRTCP, or no tailroom
  std::uint64_t other_failures = 0;
};

enum class SrtpDirection : std::uint8_t { kOutbound, kInbound };

class SrtpSession {
 public:
  // Tag plus MKI room libsrtp may write behind a protected packet.
  static constexpr std::size_t kMaxTrailer = 144;
  static constexpr unsigned kReplayWindow = 1024;

  // `master` is key || salt of the profile's lengths; nullptr and `error` when refused.
  static std::unique_ptr<SrtpSession> create(SrtpProfile profile,
                                             std::span<const std::uint8_t> master,
                                             SrtpDirection direction, std::string* error = nullptr);
  ~SrtpSession();
  SrtpSession(const SrtpSession&) = delete;
  SrtpSession& operator=(const SrtpSession&) = delete;

  // The packet is buffer[0, length); buffer.size() is its capacity. Returns the new length.
  std::optional<std::size_t> protect_rtp(std::span<std::uint8_t> buffer, std::size_t length);
  std::optional<std::size_t> unprotect_rtp(std::span<std::uint8_t> buffer, std::size_t length);
  std::optional<std::size_t> protect_rtcp(std::span<std::uint8_t> buffer, std::size_t length);
  std::optional<std::size_t> unprotect_rtcp(std::span<std::uint8_t> buffer, std::size_t length);

  const SrtpCounters& counters() const { return counters_; }
  SrtpProfile profile() const { return profile_; }

 private:
  SrtpSession() = default;
  std::optional<std::size_t> run(bool protect, bool rtcp, std::span<std::uint8_t> buffer,
                                 std::size_t length);
  void* session_ = nullptr;  // srtp_t
  SrtpProfile profile_ = SrtpProfile::kAes128CmSha1_80;
  SrtpCounters counters_;
};

// RFC 5764 §4.2: the DTLS exporter's output is client key | server key | client salt |
// server salt. Returns {local master, remote master} (key || salt each) for our role.
struct SrtpMasters {
  std::vector<std::uint8_t> local;   // protects what we send
  std::vector<std::uint8_t> remote;  // unprotects what we receive
};
std::optional<SrtpMasters> split_srtp_keying_material(SrtpProfile profile,
                                                      std::span<const std::uint8_t> material,
                                                      bool we_are_client);
std::size_t srtp_keying_material_length(SrtpProfile profile);

}  // namespace ringlane::crypto
