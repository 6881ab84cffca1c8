#pragma once
// Per-worker SFU counters: plain integers written by the worker thread, published to the stats
// page by the worker loop (one increment on the packet path, nothing else).
#include <array>
#include <cstdint>

namespace ringlane::sfu {

// Why a datagram on the media port was dropped. Keep names in sync with drop_reason_name().
enum class Drop : std::uint8_t {
  kUnknownKind,  // first byte fits no RFC 7983 range
  kStunMalformed,
  kStunNotRequest,  // not a Binding request (responses, indications, other methods)
  kUnknownUfrag,    // USERNAME names no session (or is missing)
  kBadIntegrity,    // MESSAGE-INTEGRITY or FINGERPRINT wrong: a forged or stale check
  kNoSession,       // DTLS/SRTP from an address no valid check came from
  kDtlsNotReady,    // DTLS before the peer's fingerprint is known
  kSrtpNotReady,    // SRTP/SRTCP before DTLS finished
  kSrtpAuth,        // SRTP/SRTCP authentication failed
  kSrtpReplay,      // replayed or too old
  kSrtpOther,
  kRtpMalformed,
  kRtcpMalformed,
  kUnknownSsrc,         // RTP of an SSRC the session does not publish
  kSubscriberNotReady,  // a copy for a subscriber whose DTLS is not up yet
  kTxExhausted,         // no transmit buffer for a copy
  kRedMalformed,        // RFC 2198 audio whose block headers or lengths do not fit
  kCount
};
const char* drop_reason_name(Drop d);

// Upper bounds (ms) of the time-to-connect histogram (session created -> DTLS connected).
inline constexpr std::array<std::uint64_t, 7> kConnectBuckets = {25, 50, 100, 250, 500, 1000, 5000};

struct Counters {
  std::uint64_t sessions = 0;            // gauge
  std::uint64_t sessions_connected = 0;  // gauge: DTLS up
  std::uint64_t tracks = 0;              // gauge: published tracks
  std::uint64_t subscriptions = 0;       // gauge: track -> subscriber routes
  std::uint64_t packets_in = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t rtp_in = 0;
  std::uint64_t rtcp_in = 0;
  std::uint64_t rtp_forwarded = 0;  // copies sent to subscribers
  std::uint64_t bytes_forwarded = 0;
  std::uint64_t ice_checks = 0;  // valid Binding requests answered
  std::uint64_t ice_role_conflicts = 0;
  std::uint64_t ice_connected = 0;           // sessions whose 5-tuple was set (first time)
  std::uint64_t ice_moves = 0;               // nominated address changed (network change)
  std::uint64_t ice_restarts = 0;            // new local credentials taken (RFC 8445 §9)
  std::uint64_t ice_restarts_completed = 0;  // ... and the first valid check with them came
  std::uint64_t dtls_connected = 0;
  std::uint64_t dtls_failed = 0;
  std::uint64_t consent_expired = 0;   // RFC 7675: no valid check for the consent timeout
  std::uint64_t connect_timeouts = 0;  // never connected within the setup timeout
  std::uint64_t pli_received = 0;      // PLI/FIR from subscribers
  std::uint64_t pli_sent = 0;          // keyframe requests sent to publishers
  std::uint64_t pli_throttled = 0;
  std::uint64_t nack_received = 0;         // NACK messages from subscribers
  std::uint64_t nack_forwarded = 0;        // passed upstream to the publisher (packets not kept)
  std::uint64_t retransmitted = 0;         // NACKed packets resent from the store (RTX or plain)
  std::uint64_t retransmit_missed = 0;     // NACKed packets no longer (or never) kept
  std::uint64_t retransmit_throttled = 0;  // NACKed again within kResendGuardMs: not resent
  std::uint64_t upstream_nacks = 0;        // NACKs the SFU sent publishers for gaps it saw
  std::uint64_t rtx_received = 0;          // RTX packets from publishers, unwrapped and forwarded
  std::uint64_t sr_forwarded = 0;
  std::uint64_t rr_sent = 0;  // receiver reports to publishers
  // Simulcast and congestion control.
  std::uint64_t layers_learned = 0;  // a simulcast layer's SSRC (or RTX SSRC) found by its rid
  std::uint64_t layer_switches = 0;  // a route began forwarding another layer (on its keyframe)
  std::uint64_t layer_up = 0;        // the allocation raised a route's target layer (bandwidth)
  std::uint64_t layer_down = 0;      // ... or lowered it (a wish is layer_preference)
  // VP9 SVC and temporal layers inside one stream: the allocation raised or lowered a route's
  // spatial x temporal target for its bandwidth (counted in layer_up/down too).
  std::uint64_t svc_layer_up = 0;
  std::uint64_t svc_layer_down = 0;
  std::uint64_t layer_preference = 0;      // a route's layers changed by its subscriber's wish
  std::uint64_t layer_keyframe_waits = 0;  // switches made at the keyframe they waited for
  // Keyframes asked for a subscriber whose losses are past repair: a NACK of a packet too old to
  // resend (or no longer known), or VP9 spatial layers down on a link losing packets.
  std::uint64_t repair_keyframes = 0;
  // A step down the estimate asked for, not taken: it fell no deeper than an overuse of a link
  // with room makes (0.85x what was sent), with hardly any loss (counted per route and allocation).
  std::uint64_t layer_down_kept = 0;
  // AV1 Dependency Descriptors that did not parse (cut short, no structure yet, an unknown
  // template): the packet is forwarded without layer decisions.
  std::uint64_t dependency_malformed = 0;
  std::uint64_t twcc_sent = 0;      // transport-cc feedback sent to publishers
  std::uint64_t remb_sent = 0;      // REMB to publishers without transport-cc
  std::uint64_t twcc_received = 0;  // transport-cc feedback from subscribers, fed to estimates
  std::uint64_t probes = 0;         // probe clusters started towards subscribers
  std::uint64_t padding_sent = 0;   // padding packets of those probes
  std::uint64_t freezes = 0;        // > 500 ms without a packet to a subscriber, the source sending
  std::uint64_t route_reports = 0;  // RouteReport events to the control plane
  std::uint64_t dynacast_changes = 0;  // LayersActive events: layers turned off or on
  std::uint64_t commands = 0;
  std::uint64_t commands_refused = 0;
  std::array<std::uint64_t, kConnectBuckets.size() + 1> connect_ms{};  // histogram, last = +Inf
  std::uint64_t connect_ms_sum = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::kCount)> drops{};

  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
  std::uint64_t dropped(Drop d) const { return drops[static_cast<std::size_t>(d)]; }
};

}  // namespace ringlane::sfu
