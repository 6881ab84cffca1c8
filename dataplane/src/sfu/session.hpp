#pragma once
// The state of one media session and its tracks. Internal to the SFU engine.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bandwidth_estimator.hpp"
#include "receive_stats.hpp"
#include "remb_estimate.hpp"
#include "retransmit_store.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"
#include "ringlane/dataplane/rtp/twcc_recorder.hpp"
#include "ringlane/shm/media.hpp"

namespace ringlane::sfu {

struct Session;

// How one route renumbers the stream it forwards: added to each packet's sequence number and
// timestamp (and, for VP8, picture id, TL0PICIDX and KEYIDX), so the subscriber sees one
// continuous stream whichever simulcast layer it comes from. All zero for a plain track.
struct Renumber {
  std::uint16_t sequence = 0;
  std::uint32_t timestamp = 0;
  std::uint16_t picture_id = 0;
  std::uint8_t tl0picidx = 0;
  std::uint8_t keyidx = 0;
};

// One subscriber's copy of a track: where it goes and how it is renumbered.
struct Route {
  Session* subscriber = nullptr;
  std::uint32_t ssrc = 0;
  std::uint32_t rtx_ssrc = 0;
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  // RFC 2198 audio (forwarder.cpp, rtp/red.hpp): the publisher's RED and Opus payload types
  // (red_in 0: the track has no RED) and the subscriber's RED one (0: RED is stripped).
  std::uint8_t red_in = 0;
  std::uint8_t opus_in = 0;
  std::uint8_t red_out = 0;
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

  // Simulcast (the track has layers): the layer this subscriber receives (kNoLayer before the
  // first keyframe), the one it should receive (switched to on that layer's next keyframe), and
  // the most it wants (shm::RouteLayer).
  static constexpr std::uint8_t kNoLayer = 0xFF;
  std::uint8_t current = kNoLayer;
  std::uint8_t target = 0;
  std::uint8_t max_spatial = shm::kMaxLayers - 1;
  bool paused = false;
  std::uint64_t down_ms = 0;         // when the allocation last lowered `target`
  std::uint64_t layer_asked_ms = 0;  // the last keyframe request for `target`
  Renumber renumber;
  // The renumbering before the last switch and the first sequence number after it, so a NACK of
  // a packet sent before the switch finds it in the layer it came from.
  std::uint8_t previous = kNoLayer;
  Renumber previous_renumber;
  std::uint16_t switched_at = 0;    // the first sequence number of the current layer
  std::uint16_t previous_from = 0;  // ... of the previous one: older packets are past mapping
  // The last packet sent: where the next layer's numbering continues.
  bool sent_any = false;
  std::uint16_t last_sequence = 0;
  std::uint32_t last_timestamp = 0;
  std::uint64_t last_sent_ms = 0;
  // For the route's report (reports.cpp): what went out since the last one, and its history.
  std::uint64_t report_bytes = 0;
  std::uint32_t report_frames = 0;
  std::uint32_t ups = 0;
  std::uint32_t downs = 0;
  std::uint32_t freezes = 0;
  // Layer changes by why (RouteReport): the subscriber's own wish (shm::RouteLayer; `ups` and
  // `downs` are the bandwidth's), and switches made at the keyframe they waited for (a simulcast
  // layer, a VP9 spatial layer up). `by_preference`: the allocation runs for a new wish.
  std::uint32_t preference_changes = 0;
  std::uint32_t keyframe_switches = 0;
  bool by_preference = false;
  bool keyframe_seen = false;  // select_svc: a keyframe came through (layers up from then)
  std::uint64_t repair_keyframe_ms = 0;  // the last keyframe asked for what a NACK could not get
  std::uint64_t forwarded_ms = 0;        // the last packet forwarded (not resent)
  // From the subscriber's receiver reports.
  std::uint8_t fraction_lost = 0;
  std::uint32_t jitter = 0;  // RTP units
  bool vp8_seen = false;
  std::uint16_t last_picture_id = 0;
  std::uint8_t last_tl0picidx = 0;
  std::uint8_t last_keyidx = 0;

  // Layers inside one stream (layers.cpp select_svc): VP8 temporal layers (TID), VP9 temporal
  // and spatial layers (TID, SID). The most the subscriber wants (shm::RouteLayer), what the
  // allocation gives it (target) and what it gets now: lowered at the next frame start, raised
  // only where the codec allows (a layer-sync / switching-up frame, a keyframe for spatial).
  static constexpr std::uint8_t kAllLayers = 7;
  std::uint8_t max_temporal = kAllLayers;
  std::uint8_t temporal_target = kAllLayers;
  std::uint8_t temporal = kAllLayers;
  std::uint8_t spatial_target = kAllLayers;  // VP9 SVC
  std::uint8_t spatial = 0;                  // ... raised at the first keyframe
  bool svc_seen = false;                     // the descriptor had layer indices
  // A packet of a higher layer is dropped and its sequence number taken out (renumber.sequence
  // goes down by one), so the subscriber sees no gap; a dropped VP8 frame takes its picture id
  // with it. The highest source sequence number the route saw, and the last picture dropped.
  bool seen_in = false;
  std::uint16_t highest_in = 0;
  bool dropped_picture = false;
  std::uint16_t last_dropped_picture = 0;
  bool set_marker = false;  // this copy ends the highest spatial layer forwarded (send_copy)
  // Every renumbering the route has sent with and the first sequence number (as sent) it applied
  // from, newest last: a NACK (or a late packet) is numbered as it was then.
  struct Numbering {
    std::uint16_t from = 0;
    Renumber renumber;
  };
  static constexpr std::size_t kNumberings = 64;
  std::array<Numbering, kNumberings> numberings{};
  std::size_t numberings_count = 0;  // total pushed (the ring holds the last kNumberings)
  bool renumbered = true;            // renumber changed since the last push
  // The first sequence number (as sent) the changed renumbering applies to: after a drop, the
  // number the dropped packet would have had (a packet lost upstream after it is numbered on
  // from there); after a layer switch, the keyframe's. Unset: the next packet sent.
  bool renumbered_from_set = false;
  std::uint16_t renumbered_from = 0;
  void renumber_from(std::uint16_t sequence) {
    renumbered = true;
    renumbered_from_set = true;
    renumbered_from = sequence;
  }
  // Called with the sequence number (as sent) of a packet about to go out with `renumber`.
  void note_numbering(std::uint16_t sent_sequence) {
    if (!renumbered) {
      return;
    }
    renumbered = false;
    std::uint16_t from = renumbered_from_set ? renumbered_from : sent_sequence;
    renumbered_from_set = false;
    numberings[numberings_count % kNumberings] = Numbering{from, renumber};
    ++numberings_count;
  }
  // The renumbering a packet sent as `sequence` went out with; `fallback` when that is older
  // than the history holds.
  const Renumber& renumber_at(std::uint16_t sequence, const Renumber& fallback) const {
    std::size_t n = std::min(numberings_count, kNumberings);
    for (std::size_t i = 0; i < n; ++i) {
      const Numbering& e = numberings[(numberings_count - 1 - i) % kNumberings];
      if (static_cast<std::uint16_t>(sequence - e.from) < 0x8000) {
        return e.renumber;
      }
    }
    return fallback;
  }
  // Whether the history still holds the renumbering a packet sent as `sequence` went out with
  // (always, until it has wrapped): when not, which packet the subscriber names is not known.
  bool renumber_known(std::uint16_t sequence) const {
    if (numberings_count <= kNumberings) {
      return true;
    }
    const Numbering& oldest = numberings[numberings_count % kNumberings];
    return static_cast<std::uint16_t>(sequence - oldest.from) < 0x8000;
  }
  // The renumbering of a late source packet `original` (older than highest_in); nullptr when
  // older than the history holds.
  const Renumber* renumber_of_source(std::uint16_t original) const {
    std::size_t n = std::min(numberings_count, kNumberings);
    for (std::size_t i = 0; i < n; ++i) {
      const Numbering& e = numberings[(numberings_count - 1 - i) % kNumberings];
      auto from = static_cast<std::uint16_t>(e.from - e.renumber.sequence);
      if (static_cast<std::uint16_t>(original - from) < 0x8000) {
        return &e.renumber;
      }
    }
    return nullptr;
  }
};

// A track a session publishes; a simulcast track is one Track per layer (each its own SSRC,
// receive statistics, retransmission cache and keyframe requests), and layer 0 holds the routes.
struct Track {
  std::uint32_t key = 0;   // the control plane's name for the track (its SSRC when plain)
  std::uint32_t ssrc = 0;  // 0: a simulcast layer whose SSRC is not learned yet
  std::uint32_t rtx_ssrc = 0;
  shm::MediaKind kind = shm::MediaKind::kAudio;
  shm::Codec codec = shm::Codec::kOther;
  std::uint8_t layer = 0;
  std::uint8_t layers = 1;  // of the group; > 1: simulcast
  std::string mid;
  std::string rid;
  // Received, for the layer allocation: bytes in the current window and the last rate.
  std::uint64_t window_bytes = 0;
  std::uint64_t bitrate_bps = 0;
  std::uint64_t last_packet_ms = 0;
  std::uint64_t previous_packet_ms = 0;
  // Audio: the loudest RFC 6464 level of this interval (as loudness, 127 - level: 0 silent) and
  // the last one reported. Video (layer 0): the allocation's priority (the active speaker's).
  std::uint8_t loudness_peak = 0;
  std::uint8_t quiet_reports = 0;  // silent intervals reported since it was last loud
  std::uint8_t priority = 0;
  // Dynacast (a simulcast layer): off since no route took it for a while (the publisher was
  // asked to stop it), when it was last taken, and its bitrate while it flowed.
  bool dynacast_off = false;
  std::uint64_t unused_since_ms = 0;
  std::uint64_t flowing_bps = 0;
  std::uint8_t payload_type = 0;
  std::uint8_t rtx_payload_type = 0;
  std::uint8_t red_payload_type = 0;  // RFC 2198 (audio): 0 when not negotiated
  std::uint32_t clock_rate = 90000;
  // Layers inside the stream (VP8 TID, VP9 TID/SID; single-SSRC tracks): bytes received per
  // spatial x temporal layer in the current window and the last rate, for the allocation; the
  // highest of each seen.
  static constexpr std::size_t kSvcLayers = 4;
  std::array<std::uint64_t, kSvcLayers * kSvcLayers> svc_window_bytes{};
  std::array<std::uint64_t, kSvcLayers * kSvcLayers> svc_bitrate_bps{};
  std::uint8_t svc_top_spatial = 0;
  std::uint8_t svc_top_temporal = 0;
  bool svc_layered = false;  // a TID or SID seen
  // Dynacast of spatial layers inside the stream: the most it ever sent, and how many the
  // publisher was last told to encode (the highest index; kSvcAll: never told).
  static constexpr std::uint8_t kSvcAll = 0xFF;
  std::uint8_t svc_spatial_seen = 0;
  std::uint8_t svc_spatial_on = kSvcAll;
  std::array<std::uint64_t, kSvcLayers> svc_unwanted_since_ms{};  // per spatial layer, 0: wanted
  // AV1 with the Dependency Descriptor negotiated (its id, 0: not): the latest template structure
  // and active decode targets of this SSRC's stream (made with the track, av1_layers.cpp).
  std::uint8_t dependency_extension = 0;
  std::unique_ptr<rtp::DependencyState> dependency;
  std::vector<Route> routes;
  std::uint64_t last_keyframe_request_ms = 0;
  bool keyframe_requested = false;  // one is owed once the publisher's keys are up
  ReceiveStats received;
  // Video: where this track's recent packets sit in the worker's retransmission store, and the
  // name they are kept under there (unique per track on the worker).
  std::uint64_t token = 0;
  std::unique_ptr<RetransmitStore::Index> cache;

  Route* route(const Session& subscriber, std::uint32_t subscriber_ssrc) {
    for (auto& r : routes) {
      if (r.subscriber == &subscriber && r.ssrc == subscriber_ssrc) {
        return &r;
      }
    }
    return nullptr;
  }
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
  bool keyframe_owed = false;  // a track's request was held back by the interval (on_timer)
  std::vector<Track> tracks;
  std::vector<Subscription> subscriptions;
  std::uint32_t report_ssrc = 0;  // sender SSRC of the RTCP the SFU itself sends here

  bool connected() const { return srtp_out != nullptr; }
  // Subscriber side: the SFU's own transport-wide sequence numbering of what it sends here.
  std::uint8_t transport_cc_out = 0;  // the subscriber's extension id, 0: not negotiated
  std::uint16_t transport_cc_next = 0;
  // Its bandwidth, estimated from its transport-cc feedback (made with the first subscription
  // that negotiated it), and the probing schedule: probes back off while they find the link full.
  std::unique_ptr<BandwidthEstimator> bwe;
  std::uint64_t allocated_estimate_bps = 0;  // the estimate the last allocation used
  std::uint64_t next_probe_ms = 0;
  std::uint64_t probe_interval_ms = 0;
  std::uint64_t probes_seen = 0;  // the estimator's probe count when the interval was last set
  std::uint64_t traced_ms = 0;
  // Publisher side: the extensions that name simulcast layers and number the transport.
  std::uint8_t rid_extension = 0;
  std::uint8_t repaired_rid_extension = 0;
  std::uint8_t mid_extension = 0;
  std::uint8_t audio_level_extension = 0;
  std::uint8_t transport_cc_in = 0;
  std::unique_ptr<TwccRecorder> twcc_in;  // made with the first numbered packet
  // A publisher that negotiated goog-remb and not transport-cc: the SFU's receive-side estimate
  // of its uplink, sent to it as REMB every report interval (remb_estimate.hpp).
  bool remb = false;
  RembEstimate remb_estimate;

  // By an SSRC on the wire.
  Track* track(std::uint32_t ssrc, bool& rtx) {
    if (ssrc == 0) {
      return nullptr;  // never an unlearned layer
    }
    for (auto& t : tracks) {
      if (t.ssrc == ssrc || (t.rtx_ssrc != 0 && t.rtx_ssrc == ssrc)) {
        rtx = t.ssrc != ssrc;
        return &t;
      }
    }
    return nullptr;
  }
  // By the control plane's name: a plain track, or layer `layer` of a simulcast track.
  Track* track_by_key(std::uint32_t key, std::uint8_t layer = 0) {
    for (auto& t : tracks) {
      if (t.key == key && t.layer == layer) {
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
