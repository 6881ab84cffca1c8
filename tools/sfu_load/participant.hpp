#pragma once
// One synthetic participant of sfu_load: its signaling state, its publisher transport and the
// media it sends, its subscriber transport and what it received from whom.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "sfu_load/media.hpp"
#include "sfu_load/report.hpp"
#include "sfu_load/signaling.hpp"
#include "sfu_load/transport.hpp"

namespace sfu_load {

// What a publisher sends, per kind (index: Kind).
struct Outgoing {
  std::uint32_t ssrc = 0;
  std::uint32_t initial = 0;  // the first packet counter (a random 16-bit start, as browsers)
  std::uint32_t counter = 0;  // the next packet's
  std::uint32_t timestamp = 0;
  std::uint64_t next_ns = 0;
  std::uint32_t window_first = 0;  // counters sent inside the measured window: [first, last]
  std::uint32_t window_last = 0;
  bool window_any = false;
};

struct Participant {
  unsigned index = 0;
  std::string identity;
  std::string source;  // signaling source address
  bool publishes = false;
  bool via_ws = true;             // joins over the signaling WebSocket
  bool whep = false;              // plays over WHEP (else subscribes over the WebSocket, if at all)
  bool janus = false;             // publishes and subscribes through Janus's VideoRoom (janus.hpp)
  std::vector<unsigned> sources;  // the publishers (indexes) it must receive from
  std::shared_ptr<const crypto::DtlsCertificate> cert;

  // Signaling.
  std::string token;
  std::string ws_url;
  std::shared_ptr<SignalSocket> ws;
  std::uint64_t retry_token_ns = 0;  // a 429 from the token endpoint: ask again then
  std::uint64_t retry_join_ns = 0;   // a rate_limited join: join again then
  std::uint64_t started_ns = 0;
  std::uint64_t joined_ns = 0;
  bool answered = false;  // the publish answer arrived
  bool left = false;
  bool closed = false;
  bool failed = false;
  std::string error;
  std::string whip_location;  // the WHIP/WHEP session resource (RFC 9725 §4.2), for DELETE
  std::string whep_location;
  std::uint64_t retry_whep_ns = 0;
  bool whep_posted = false;
  std::uint64_t offers = 0;
  std::uint64_t sub_version = 1;
  std::uint64_t session_id = 0;
  std::uint64_t janus_pub = 0;  // Janus plugin handles
  std::uint64_t janus_sub = 0;
  bool janus_published = false;
  bool janus_webrtcup = false;  // Janus says the publisher's PeerConnection is up
  bool janus_subscribed = false;
  unsigned janus_join_retries = 0;
  std::uint64_t janus_retry_ns = 0;  // a subscriber join refused ("No such feed"): again then

  // Publishing.
  std::unique_ptr<Transport> pub;
  std::array<Outgoing, 2> out{};
  std::uint32_t frame = 0;
  bool keyframe_requested = false;
  std::uint64_t plis_received = 0;
  std::uint64_t nacks_received = 0;
  std::uint64_t rtcp_received = 0;

  // Subscribing.
  std::unique_ptr<Transport> sub;
  std::unordered_map<std::uint32_t, ReceivedStream> streams;  // by the SSRC the server offered
  std::size_t expected_streams = 0;
  std::size_t flowing_streams = 0;
  std::uint64_t unknown_ssrc = 0;
  std::uint64_t malformed = 0;
  std::uint64_t header_mismatches = 0;  // marker, payload type or audio level not as sent

  void fail(std::string why) {
    if (!failed) {
      failed = true;
      error = identity + ": " + why;
    }
  }
};

// A packet buffer with room for the SRTP tag.
struct TxBuffer {
  std::array<std::uint8_t, 1500 + crypto::SrtpSession::kMaxTrailer> data{};
  std::size_t length = 0;
};

// Publisher RTCP from the SFU: keyframe requests (PLI RFC 4585 §6.3.1, FIR RFC 5104 §4.3.1) make
// the next frame a keyframe; NACKs (RFC 4585 §6.2.1) are counted (they say the SFU saw a gap).
inline void on_publisher_rtcp(Participant& p, std::span<const std::uint8_t> plain) {
  ++p.rtcp_received;
  auto compound = ringlane::rtcp::Compound::parse(plain);
  if (!compound) {
    return;
  }
  for (const auto& pkt : compound->packets()) {
    if (pkt.type == ringlane::rtcp::kPsfb &&
        (pkt.count == ringlane::rtcp::kFmtPli || pkt.count == ringlane::rtcp::kFmtFir)) {
      ++p.plis_received;
      p.keyframe_requested = true;
    } else if (pkt.type == ringlane::rtcp::kRtpfb && pkt.count == ringlane::rtcp::kFmtNack) {
      ++p.nacks_received;
    }
  }
}

}  // namespace sfu_load
