#pragma once
// The state of one media session and its tracks. Internal to the SFU engine.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "receive_stats.hpp"
#include "retransmit_store.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/shm/media.hpp"

namespace ringlane::sfu {

struct Session;

// One subscriber's copy of a track: where it goes and how it is renumbered.
struct Route {
  Session* subscriber = nullptr;
  std::uint32_t ssrc = 0;
  std::uint32_t rtx_ssrc = 0;
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  std::array<std::uint8_t, shm::kExtensionMap> extensions{};
  std::uint16_t rtx_sequence = 0;  // RFC 4588 §4: the RTX stream numbers its own packets
  // The packets last resent to this subscriber and when (a circle): a NACK repeated before the
  // resend can have arrived does not send it again.
  static constexpr std::size_t kResent = 32;
  std::array<std::uint16_t, kResent> resent_seq{};
  std::array<std::uint64_t, kResent> resent_ms{};
  std::size_t resent_next = 0;
  bool resent_recently(std::uint16_t seq, std::uint64_t now_ms, std::uint64_t guard_ms) const {
    for (std::size_t i = 0; i < kResent; ++i) {
      if (resent_ms[i] != 0 && resent_seq[i] == seq && now_ms - resent_ms[i] < guard_ms) {
        return true;
      }
    }
    return false;
  }
  void resent(std::uint16_t seq, std::uint64_t now_ms) {
    resent_seq[resent_next] = seq;
    resent_ms[resent_next] = now_ms;
    resent_next = (resent_next + 1) % kResent;
  }
};

// A track a session publishes.
struct Track {
  std::uint32_t ssrc = 0;
  std::uint32_t rtx_ssrc = 0;
  shm::MediaKind kind = shm::MediaKind::kAudio;
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  std::uint32_t clock_rate = 90000;
  std::vector<Route> routes;
  std::uint64_t last_keyframe_request_ms = 0;
  bool keyframe_requested = false;  // one is owed once the publisher's keys are up
  ReceiveStats received;
  // Video: where this track's recent packets sit in the worker's retransmission store, and the
  // name they are kept under there (unique per track on the worker).
  std::uint64_t token = 0;
  std::unique_ptr<RetransmitStore::Index> cache;
};

// What a subscriber receives, to map its feedback (by the SSRC it sees) back to the source.
struct Subscription {
  std::uint32_t ssrc = 0;
  std::uint32_t rtx_ssrc = 0;
  shm::SessionId publisher;
  std::uint32_t publisher_ssrc = 0;
};

struct Session {
  static constexpr std::size_t kMaxAddresses = 8;

  shm::SessionId id;
  std::string ufrag;
  std::string pwd;
  // After an ICE restart, the credentials before it: still answered until the first valid
  // check with the new ones ("" when none).
  std::string previous_ufrag;
  std::string previous_pwd;
  bool dtls_client = false;
  bool fingerprint_known = false;
  std::array<std::uint8_t, shm::kFingerprintBytes> fingerprint{};
  std::uint64_t created_ms = 0;
  std::uint64_t last_check_ms = 0;
  // The nominated 5-tuple (our socket, the peer's address) and every address a valid check
  // came from (media may arrive from any of them until nomination settles).
  bool has_remote = false;
  SocketId socket;
  Endpoint remote;
  std::vector<Endpoint> addresses;
  std::unique_ptr<crypto::DtlsEndpoint> dtls;
  std::uint64_t dtls_deadline_ms = 0;  // 0: no retransmission timer
  std::unique_ptr<crypto::SrtpSession> srtp_in;
  std::unique_ptr<crypto::SrtpSession> srtp_out;
  bool failed = false;
  std::vector<Track> tracks;
  std::vector<Subscription> subscriptions;
  std::uint32_t report_ssrc = 0;  // sender SSRC of the RTCP the SFU itself sends here

  bool connected() const { return srtp_out != nullptr; }
  Track* track(std::uint32_t ssrc, bool& rtx) {
    for (auto& t : tracks) {
      if (t.ssrc == ssrc || (t.rtx_ssrc != 0 && t.rtx_ssrc == ssrc)) {
        rtx = t.ssrc != ssrc;
        return &t;
      }
    }
    return nullptr;
  }
  const Subscription* subscription(std::uint32_t ssrc) const {
    for (const auto& s : subscriptions) {
      if (s.ssrc == ssrc || (s.rtx_ssrc != 0 && s.rtx_ssrc == ssrc)) {
        return &s;
      }
    }
    return nullptr;
  }
};

}  // namespace ringlane::sfu
