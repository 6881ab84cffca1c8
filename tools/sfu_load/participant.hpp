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
#include "ringlane/dataplane/rtp/twcc_recorder.hpp"
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

// --simulcast: a video track this subscriber receives, and its `layer` requests.
struct LayerSwitch {
  std::string track;               // the server's track id (for `layer`)
  std::uint32_t ssrc = 0;          // the stream it arrives on
  std::uint8_t current = kLayers;  // the layer of the last packet (kLayers: none yet)
  std::uint8_t asked = 0;          // the layer asked for last
  std::uint64_t asked_ns = 0;      // 0: nothing asked, or it arrived
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
  // --simulcast: the lower encodings (q, h; out[1] is f, the top one), each with its own
  // keyframe requests and picture ids, and the transport-wide sequence of the publisher's
  // transport.
  std::array<Outgoing, kLayers - 1> lower{};
  std::array<bool, kLayers> layer_keyframe{};
  std::array<std::uint16_t, kLayers> picture_id{};
  std::uint16_t twcc_seq = 0;
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
  // --simulcast: transport-cc feedback for what arrives (the id the server's offer gave the
  // extension; 0: not offered), the server's probes and retransmissions, the packets of the
  // layers below the top one, and the layer switches it asked for.
  std::uint8_t twcc_id = 0;
  std::unique_ptr<ringlane::sfu::TwccRecorder> twcc;
  std::uint32_t feedback_ssrc = 0;
  std::uint64_t feedbacks_sent = 0;
  std::uint64_t padding_received = 0;
  std::uint64_t rtx_received = 0;
  std::vector<std::uint32_t> rtx_ssrcs;  // the server's RTX streams (FID groups of its offer)
  std::array<std::uint64_t, kLayers> layer_packets{};
  std::unordered_map<std::string, unsigned> video_tracks;  // track id -> publisher index
  std::vector<LayerSwitch> switches;
  std::uint64_t next_switch_ns = 0;
  // Asked -> the first packet of the asked-for layer: [0] down to the lowest, [1] up to the top.
  std::array<std::vector<double>, 2> switch_ms;
  std::uint64_t switch_timeouts = 0;
  std::uint64_t switch_not_at_keyframe = 0;

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
      // Simulcast: the encoding whose SSRC the PLI names (FIR: all of them).
      std::uint32_t media = pkt.body().size() >= 8 ? ringlane::load_be32(pkt.body().data() + 4) : 0;
      for (unsigned l = 0; l < kLayers; ++l) {
        std::uint32_t ssrc = l + 1 == kLayers ? p.out[1].ssrc : p.lower[l].ssrc;
        p.layer_keyframe[l] =
            p.layer_keyframe[l] || pkt.count == ringlane::rtcp::kFmtFir || media == ssrc;
      }
    } else if (pkt.type == ringlane::rtcp::kRtpfb && pkt.count == ringlane::rtcp::kFmtNack) {
      ++p.nacks_received;
    }
  }
}

}  // namespace sfu_load
