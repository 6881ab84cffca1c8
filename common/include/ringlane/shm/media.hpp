#pragma once
// SFU session commands (control -> worker) and events (worker -> control) as they cross the
// rings: fixed layouts in big-endian order, encoded and decoded here by both planes. A decoder
// checks every length and returns nullopt for a payload that does not fit its type.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringlane::shm {

// A session is one ICE-lite + DTLS-SRTP transport (one browser peer connection), named by an
// id the control plane chooses, unique on its worker.
struct SessionId {
  std::uint32_t value = 0;
  bool operator==(const SessionId&) const = default;
};

enum class MediaKind : std::uint8_t { kAudio = 0, kVideo = 1 };

inline constexpr std::size_t kMaxIceUfrag = 64;
inline constexpr std::size_t kMaxIcePwd = 64;
inline constexpr std::size_t kFingerprintBytes = 32;  // SHA-256
// RFC 8285: one-byte header extension ids are 1-14; a map covers 0-15.
inline constexpr std::size_t kExtensionMap = 16;

struct SessionCreate {
  SessionId session;
  bool dtls_client = false;  // false: the worker is the DTLS server (the client said active)
  std::string ice_ufrag;     // the server's (local) ICE credentials
  std::string ice_pwd;
  // The peer's certificate fingerprint from its SDP; all zero when not known yet (a subscriber
  // session is created before the browser answers), then set with kSessionRemote.
  std::array<std::uint8_t, kFingerprintBytes> remote_fingerprint{};
};

struct SessionRemote {
  SessionId session;
  bool dtls_client = false;
  std::array<std::uint8_t, kFingerprintBytes> remote_fingerprint{};
};

// An ICE restart (RFC 8445 §9): the session takes new local credentials and keeps everything
// else (DTLS association, keys, tracks, routes). Checks with the old credentials are still
// answered until the first valid check with the new ones, so media keeps flowing while the
// client applies the new description.
struct SessionIceRestart {
  SessionId session;
  std::string ice_ufrag;
  std::string ice_pwd;
};

// What the data plane must know of a codec to find keyframes and rewrite payload descriptors.
enum class Codec : std::uint8_t { kOther = 0, kOpus = 1, kVp8 = 2, kVp9 = 3, kH264 = 4, kAv1 = 5 };

// RFC 8853: a simulcast track has up to this many encodings (spatial layers), named by rid.
inline constexpr std::size_t kMaxLayers = 3;
inline constexpr std::size_t kMaxRid = 16;

struct TrackAdd {
  SessionId session;  // the publisher's
  // The track's name in every later command. For a plain track, its SSRC; for a simulcast
  // track (rids, no SSRC in the SDP) a number the control plane chose, and the layers' SSRCs are
  // learned from the RID header extension (RFC 8852) of the packets.
  std::uint32_t ssrc = 0;
  std::uint32_t rtx_ssrc = 0;  // 0: none
  MediaKind kind = MediaKind::kAudio;
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  std::uint32_t clock_rate = 90000;
  Codec codec = Codec::kOther;
  // Simulcast: the rids in the order of the offer's a=simulcast (lowest resolution first);
  // empty for a plain track.
  std::vector<std::string> rids;
  // Publisher header extension ids (0: not negotiated): RFC 8852 rtp-stream-id and
  // repaired-rtp-stream-id, and the transport-wide sequence number (one per session).
  std::uint8_t rid_extension = 0;
  std::uint8_t repaired_rid_extension = 0;
  std::uint8_t transport_cc_extension = 0;
  // RFC 8843 §15: the BUNDLE mid and its extension id, which tell apart the rids of two
  // simulcast tracks of one session (both may be called "q", "h", "f").
  std::uint8_t mid_extension = 0;
  std::string mid;
  // Audio: RFC 6464 client-to-mixer audio level, for the active speaker (0: not negotiated).
  std::uint8_t audio_level_extension = 0;
  // Audio: the publisher's RFC 2198 RED payload type (0: not negotiated); its blocks carry
  // `payload_type` (Opus).
  std::uint8_t red_payload_type = 0;
  // The publisher negotiated goog-remb and not transport-cc: the SFU sends it REMB
  // (draft-alvestrand-rmcat-remb) with a receive-side estimate (one per session).
  bool remb = false;
  // Video: the AV1 Dependency Descriptor (AV1 RTP payload format, Appendix A) id, 0 when not
  // negotiated; with it the SFU forwards AV1 spatial and temporal layers selectively.
  std::uint8_t dependency_descriptor_extension = 0;
};
inline constexpr std::size_t kMaxMid = 32;

struct TrackRemove {
  SessionId session;
  std::uint32_t ssrc = 0;
};

// Forward publisher track (publisher, ssrc) to subscriber session `subscriber`, rewritten to
// that subscriber's numbering.
struct Subscribe {
  SessionId subscriber;
  SessionId publisher;
  std::uint32_t publisher_ssrc = 0;
  std::uint32_t ssrc = 0;      // as the subscriber sees it
  std::uint32_t rtx_ssrc = 0;  // 0: the subscriber gets no RTX stream
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  // Publisher extension id -> subscriber extension id; 0 removes the element.
  std::array<std::uint8_t, kExtensionMap> extensions{};
  // The subscriber's id of the transport-wide sequence number (0: not negotiated): the SFU
  // numbers what it sends that subscriber itself and estimates its bandwidth from the feedback.
  std::uint8_t transport_cc_extension = 0;
  // Audio from a RED publisher (TrackAdd.red_payload_type): the subscriber's RED payload type,
  // or 0 when it did not negotiate RED, and the SFU strips it (forwards the primary block as
  // Opus under `payload_type`).
  std::uint8_t red_payload_type = 0;
};

// The most a subscriber wants of a video track (PROTOCOL.md `layer`): spatial layers (simulcast
// or VP9 SVC) up to `max_spatial` (0 = the lowest) and temporal layers up to `max_temporal`
// (kAllTemporal: all), or none at all when `paused`. `max_temporal` is a trailing byte an older
// encoder leaves out.
struct RouteLayer {
  static constexpr std::uint8_t kAllTemporal = 7;
  SessionId subscriber;
  std::uint32_t ssrc = 0;  // the subscriber-side ssrc
  std::uint8_t max_spatial = kMaxLayers - 1;
  bool paused = false;
  std::uint8_t max_temporal = kAllTemporal;
};

struct Unsubscribe {
  SessionId subscriber;
  std::uint32_t ssrc = 0;  // the subscriber-side ssrc
};

struct SessionClose {
  SessionId session;
};

struct KeyframeRequest {
  SessionId publisher;
  std::uint32_t ssrc = 0;
};

enum class SessionState : std::uint8_t {
  kIceConnected = 1,   // first valid check (or a new nominated address): the 5-tuple is set
  kDtlsConnected = 2,  // keys derived: media flows
  kFailed = 3,         // DTLS failed (reason: fingerprint, handshake)
  kClosed = 4,         // consent expired (RFC 7675) or closed by command
};

struct SessionEvent {
  SessionId session;
  SessionState state = SessionState::kClosed;
  std::uint32_t elapsed_ms = 0;  // since the session was created
};

// The subscribers' bandwidth goes to higher priorities first (the active speaker's video,
// PROTOCOL.md `speakers`); 0 is the default.
struct TrackPriority {
  SessionId publisher;
  std::uint32_t ssrc = 0;  // the track's name (TrackAdd.ssrc)
  std::uint8_t priority = 0;
};

// Dynacast: the simulcast layers of a track some subscriber takes (bit i: layer i). A layer
// nobody took for a while is off, and the publisher is asked to stop encoding it; it is on
// again as soon as a subscriber's allocation wants it. Layer 0 stays on (a new subscriber starts
// at once).
struct LayersActive {
  SessionId publisher;
  std::uint32_t ssrc = 0;  // the track's name
  std::uint8_t mask = 0;
};

// How loud each audio track was over the last interval (RFC 6464 levels): 0 silent (or no
// packets) to 127 (0 dBov), as many entries as fit one event.
struct AudioLevel {
  SessionId publisher;
  std::uint32_t ssrc = 0;  // the track's name
  std::uint8_t level = 0;
};
struct AudioLevels {
  static constexpr std::size_t kMax = 24;
  std::vector<AudioLevel> tracks;
};

// What one subscriber receives of one track, reported by the worker every couple of seconds
// (the control plane's /metrics per subscriber and track, and the quality KPIs).
struct RouteReport {
  SessionId subscriber;
  std::uint32_t ssrc = 0;  // the subscriber-side SSRC
  MediaKind kind = MediaKind::kAudio;
  std::uint8_t layer = 0xFF;           // simulcast: the layer sent now (0xFF: none yet, or plain)
  std::uint8_t target = 0xFF;          // ... and the one the allocation chose
  std::uint32_t bitrate_bps = 0;       // sent to this subscriber over the last interval
  std::uint32_t frame_rate_milli = 0;  // video frames sent per second x 1000
  std::uint32_t layer_ups = 0;         // since the route began
  std::uint32_t layer_downs = 0;
  std::uint32_t freezes = 0;       // gaps of > 500 ms in what was sent while the publisher sent
  std::uint8_t fraction_lost = 0;  // the subscriber's last receiver report (RFC 3550 §6.4.1)
  std::uint32_t jitter_ms = 0;     // ... its interarrival jitter
  // The subscriber's transport: the SFU's estimate of its bandwidth (0: none) and the round trip
  // of its feedback (0: not known).
  std::uint32_t estimate_bps = 0;
  std::uint32_t rtt_ms = 0;
  // Layers inside the stream (VP9 SVC: `layer` and `target` are its spatial layers; VP8 and VP9
  // temporal layers): the temporal layer sent now and the allocation's (0xFF: not layered), and
  // the route's changes by the subscriber's wish and its switches made at the keyframe they
  // waited for (layer_ups/downs: the bandwidth's). Trailing: an older data plane leaves them out.
  std::uint8_t temporal = 0xFF;
  std::uint8_t temporal_target = 0xFF;
  std::uint32_t preference_changes = 0;
  std::uint32_t keyframe_switches = 0;
};

std::vector<std::uint8_t> encode(const SessionCreate& m);
std::vector<std::uint8_t> encode(const SessionRemote& m);
std::vector<std::uint8_t> encode(const SessionIceRestart& m);
std::vector<std::uint8_t> encode(const TrackAdd& m);
std::vector<std::uint8_t> encode(const TrackRemove& m);
std::vector<std::uint8_t> encode(const Subscribe& m);
std::vector<std::uint8_t> encode(const Unsubscribe& m);
std::vector<std::uint8_t> encode(const RouteLayer& m);
std::vector<std::uint8_t> encode(const SessionClose& m);
std::vector<std::uint8_t> encode(const KeyframeRequest& m);
std::vector<std::uint8_t> encode(const SessionEvent& m);
std::vector<std::uint8_t> encode(const RouteReport& m);
std::vector<std::uint8_t> encode(const TrackPriority& m);
std::vector<std::uint8_t> encode(const LayersActive& m);
std::vector<std::uint8_t> encode(const AudioLevels& m);

using Payload = std::span<const std::uint8_t>;
std::optional<SessionCreate> decode_session_create(Payload p);
std::optional<SessionRemote> decode_session_remote(Payload p);
std::optional<SessionIceRestart> decode_session_ice_restart(Payload p);
std::optional<TrackAdd> decode_track_add(Payload p);
std::optional<TrackRemove> decode_track_remove(Payload p);
std::optional<Subscribe> decode_subscribe(Payload p);
std::optional<Unsubscribe> decode_unsubscribe(Payload p);
std::optional<RouteLayer> decode_route_layer(Payload p);
std::optional<SessionClose> decode_session_close(Payload p);
std::optional<KeyframeRequest> decode_keyframe_request(Payload p);
std::optional<SessionEvent> decode_session_event(Payload p);
std::optional<RouteReport> decode_route_report(Payload p);
std::optional<TrackPriority> decode_track_priority(Payload p);
std::optional<LayersActive> decode_layers_active(Payload p);
std::optional<AudioLevels> decode_audio_levels(Payload p);

// "AB:CD:..." (32 pairs) -> bytes; nullopt when malformed.
std::optional<std::array<std::uint8_t, kFingerprintBytes>> fingerprint_bytes(std::string_view text);

}  // namespace ringlane::shm
