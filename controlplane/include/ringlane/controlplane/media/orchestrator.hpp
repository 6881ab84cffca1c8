#pragma once
// Publish/subscribe orchestration for the SFU: turns the signaling protocol's media messages
// (PROTOCOL.md version 2) into SDP answers and offers, and into session commands for the
// worker that hosts the room. Each participant has up to two data plane sessions: the
// publisher peer connection (client offers, server answers) and the subscriber peer connection
// (server offers every track of the room, renegotiated as tracks come and go, client answers).
// Runs on the control plane's io_context thread; no locks.
#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/controlplane/media/link.hpp"
#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/shm/media.hpp"
#include "ringlane/shm/messages.hpp"

namespace ringlane::control::media {

// The smallest of a track's layers (sizes lowest first) that covers a rendered width x height,
// or the largest when none does; 2 (no limit) when the sizes are not known.
std::uint8_t spatial_for_size(const std::vector<signaling::LayerSize>& sizes, std::uint32_t width,
                              std::uint32_t height);

// The outcome of a request: an error (code set) or a reply body to send (empty: none).
struct Reply {
  std::string code;
  std::string message;
  bool retryable = false;
  boost::json::object body;
  static Reply error(std::string code, std::string message, bool retryable = false) {
    Reply r;
    r.code = std::move(code);
    r.message = std::move(message);
    r.retryable = retryable;
    return r;
  }
};

// Sends a text frame to one participant of a room.
using Sender =
    std::function<void(const std::string& room, const std::string& identity, std::string text)>;

struct OrchestratorConfig {
  // ICE host candidates: the addresses the media ports are reached at (--external-ip), else
  // the host's own non-loopback addresses (loopback ones when it has no other).
  std::vector<IpAddress> candidate_ips;
  // A participant whose WebSocket dropped keeps its sessions and tracks this long, so that a
  // reconnect (same token) resumes it without renegotiating; then it leaves.
  std::chrono::milliseconds resume_grace{20000};
  // Where the media state is kept for a restarted control plane ("" = nowhere): written after
  // every change, read back at start when the data plane was adopted.
  std::string state_file;
};

class Orchestrator {
 public:
  Orchestrator(Link& link, OrchestratorConfig config, Sender send);

  // A participant joined a room placed on `worker`: returns the room's tracks (for `joined`).
  // Call start() once `joined` is sent: the participant's first subscriber offer follows it.
  boost::json::array join(const std::string& room, unsigned worker, const std::string& identity,
                          bool auto_subscribe);
  void start(const std::string& room, const std::string& identity);
  void leave(const std::string& room, const std::string& identity);
  // The participant's WebSocket is gone: it keeps its media for resume_grace.
  void detach(const std::string& room, const std::string& identity);
  // Participants detached past their grace leave; returns them as (room, identity).
  std::vector<std::pair<std::string, std::string>> expire(
      std::chrono::steady_clock::time_point now);
  // The worker of a room this node hosts media for (restored or with detached members).
  std::optional<unsigned> hosted_worker(const std::string& room) const;
  bool has_members(const std::string& room) const;
  // A signaling participant (one a reconnecting client resumes; not a WHIP/WHEP resource).
  bool has_participant(const std::string& room, const std::string& identity) const;
  // Rebuilds the state a previous control plane kept (its data plane was adopted, the sessions
  // still run): every participant is detached until its client reconnects. Returns how many.
  std::size_t restore();
  // Writes the state file if something changed since the last write.
  void save();
  // The data plane was restarted (it exited; nothing adopted it): its sessions, keys and routes
  // are gone. Every participant keeps its membership and loses its sessions, tracks and
  // subscriptions; WHIP/WHEP resources end (their clients POST again); detached participants
  // leave at the next expire(). Nothing is pushed to the new data plane. Returns the signaling
  // participants (room, identity) to tell, who publish again and get new offers.
  std::vector<std::pair<std::string, std::string>> reset();

  // `hints` (PROTOCOL.md `publish`): the sizes of each video section's layers as the publisher
  // encodes them, for the subscribers' rendered sizes (none given: those do not limit the
  // layer); the sections that share a screen, whose video goes first in every subscriber's
  // bandwidth (before the active speaker's) and is announced with source "screen".
  Reply publish(const std::string& room, const std::string& identity, const std::string& sdp,
                const signaling::PublishHints& hints = {});
  Reply unpublish(const std::string& room, const std::string& identity, const std::string& track);
  Reply answer(const std::string& room, const std::string& identity, std::uint64_t seq,
               const std::string& sdp);
  Reply mute(const std::string& room, const std::string& identity, const std::string& track,
             bool muted);
  Reply subscribe(const std::string& room, const std::string& identity,
                  const std::string& participant, const std::string& track);
  // The most a subscriber wants of a video track it receives (PROTOCOL.md `layer`): spatial
  // layers (simulcast or SVC) up to `spatial`, temporal layers up to `temporal` (none: all), or
  // nothing while `paused`. Kept across renegotiations.
  Reply layer(const std::string& room, const std::string& identity, const std::string& track,
              std::uint64_t spatial, bool paused,
              std::optional<std::uint64_t> temporal = std::nullopt);
  // The size a subscriber renders a track at (PROTOCOL.md `layer` width/height): with the
  // publisher's layer sizes, the smallest layer that covers it is the most the subscriber gets
  // (with its `layer` wish, the lower of the two); 0 x 0 (not shown): none. Kept across
  // renegotiations.
  Reply render_size(const std::string& room, const std::string& identity, const std::string& track,
                    std::uint32_t width, std::uint32_t height);
  Reply unsubscribe(const std::string& room, const std::string& identity, const std::string& track);
  // ICE restarts (RFC 8445 §9) keep the session, its DTLS keys and tracks; the server takes new
  // credentials too. A publisher restarts by publishing an offer with new credentials; the
  // subscriber connection, which the server offers, by asking (signaling `restart_ice`): new
  // credentials, then an offer that carries them.
  Reply restart_ice(const std::string& room, const std::string& identity);

  // WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep), served by media/whip.hpp: participants
  // without a WebSocket, each an HTTP resource named by `resource` (random, unguessable) and
  // kept in the state file like the others (a restarted control plane knows it; it is never
  // detached). Both end with end_resource() (DELETE), or when their data plane session closes
  // (consent expired, RFC 7675; never connected), which the next expire() carries out.
  //
  // A WHIP publisher is the participant `identity`, joined without auto-subscribing, that
  // publishes its offer (track_published for the others, who auto-subscribe). A WHIP POST for
  // an identity held by another WHIP resource replaces that one, and so does a signaling join();
  // one for an identity in the room over signaling is refused (identity_in_use).
  Reply whip_publish(const std::string& room, unsigned worker, const std::string& identity,
                     const std::string& resource, const std::string& sdp);
  // A WHEP viewer is a participant nobody hears about (no events, not listed), whose subscriber
  // session is answered from its offer (sdp::answer_subscribe) and routed at once: per offered
  // section, the most recently published track of that kind (of `participant` only, when
  // given). Its room has publishers, so it is here already, on its worker.
  Reply whep_view(const std::string& room, const std::string& identity, const std::string& resource,
                  const std::string& sdp, const std::string& participant);
  struct Resource {
    std::string room;
    std::string member;  // the WHIP publisher's identity, or the WHEP viewer's own key
    bool viewer = false;
    std::string etag;          // names the ICE session (RFC 9725 §4.3.1): our ICE ufrag, quoted
    std::string remote_ufrag;  // the client's ICE ufrag: a PATCH with another is an ICE restart
  };
  std::optional<Resource> resource(const std::string& id) const;
  // A PATCH that restarts a resource's ICE (RFC 9725 §4.3.2) with the client's new ufrag: the
  // reply body has "fragment" (our new credentials and candidates, sdp::write_ice_fragment) and
  // "etag" (the new ICE session's).
  Reply restart_resource(const std::string& id, const std::string& remote_ufrag);
  // Leaves; false when there is no such resource.
  bool end_resource(const std::string& id);
  // The WHIP publishers in a room (signaling lists them among the participants).
  std::vector<std::string> whip_publishers(const std::string& room) const;
  // Rooms with WHIP/WHEP resources and their workers (after restore(): signaling hosts them).
  std::vector<std::pair<std::string, unsigned>> resource_rooms() const;
  // The rooms whose last participant left since the last call (whoever made it leave).
  std::vector<std::string> take_emptied_rooms() { return std::exchange(emptied_, {}); }

  // A kSessionEvent from a worker.
  void on_session_event(unsigned worker, std::span<const std::uint8_t> payload);
  // A worker's RouteReport: kept (the latest per subscriber session and track) for /metrics.
  void on_route_report(unsigned worker, std::span<const std::uint8_t> payload);
  // A worker's AudioLevels: the rooms' active speakers (`speakers`, at most every 300 ms when
  // the order changes), whose video then goes first in every subscriber's bandwidth.
  void on_audio_levels(unsigned worker, std::span<const std::uint8_t> payload);
  // Dynacast: tells a publisher (`layers {track, active: [rids]}`) which simulcast layers some
  // subscriber takes; its client stops encoding the others.
  void on_layers_active(unsigned worker, std::span<const std::uint8_t> payload);
  std::string metrics() const;

 private:
  struct Peer {  // one data plane session
    std::uint32_t session = 0;
    std::string ufrag;
    std::string pwd;
    bool created = false;
    bool remote_set = false;  // subscriber: the client's fingerprint and role were sent
    std::string remote_ufrag;
  };
  struct PubTrack {
    std::string id;
    sdp::PublishedTrack desc;
    bool muted = false;
    std::uint64_t order = 0;  // publish_counter_ when published: WHEP shows the latest
    std::vector<signaling::LayerSize> sizes;  // its layers as encoded, lowest first (publish)
    bool screen = false;                      // a screen share (publish `screen`)
  };
  struct OutTrack {
    sdp::OfferedTrack offered;
    std::string publisher;
    std::string track_id;
    bool routed = false;           // the worker forwards it
    std::uint8_t max_spatial = 2;  // `layer`
    bool paused = false;
    std::uint8_t max_temporal = shm::RouteLayer::kAllTemporal;  // `layer`: all when not given
    bool rendered = false;  // `layer` width/height: the size it is shown at
    std::uint32_t render_width = 0;
    std::uint32_t render_height = 0;
  };
  // What the worker is told a route may have: the wish, lowered by the rendered size.
  struct Wanted {
    std::uint8_t spatial;
    bool paused;
  };
  struct Participant {
    std::string identity;
    bool auto_subscribe = true;
    Peer pub;
    std::vector<PubTrack> tracks;
    Peer sub;
    std::vector<OutTrack> out;
    std::vector<sdp::OfferedTrack> offered;  // as in the offer awaiting its answer
    std::uint64_t seq = 0;
    std::uint64_t version = 0;
    unsigned next_mid = 0;
    bool awaiting = false;
    bool dirty = false;
    bool detached = false;
    std::chrono::steady_clock::time_point detached_until{};
    std::string resource;  // WHIP/WHEP: the HTTP resource this participant is; "" for signaling
    bool viewer = false;   // WHEP: the key is "whep/" + resource, not an identity
  };
  struct Room {
    unsigned worker = 0;
    std::map<std::string, Participant> members;
  };

  Participant* find(const std::string& room, const std::string& identity, Room** r = nullptr);
  bool ensure_session(Room& r, Participant& p, Peer& peer, const DataPlaneInfo& info,
                      const std::array<std::uint8_t, shm::kFingerprintBytes>& fingerprint,
                      bool dtls_client);
  sdp::LocalIce local_ice(const Room& r, const Peer& peer, const DataPlaneInfo& info) const;
  // New server credentials for a created session (kSessionIceRestart); false when the ring was
  // full (the old ones stay).
  bool restart_peer(const Room& r, Peer& peer);
  void add_out(Participant& subscriber, const Participant& publisher, const PubTrack& t);
  void push_layer(Room& r, const Participant& p, const OutTrack& o);
  Wanted wanted(const Room& r, const OutTrack& o) const;
  void renegotiate(const std::string& room, Room& r, Participant& p);
  void remove_track(const std::string& room, Room& r, Participant& p, const std::string& id);
  void broadcast(const std::string& room, const Room& r, const std::string& except,
                 const boost::json::object& event);
  // Forwards the publisher's track to `o` of subscriber session p.sub (kSubscribe); `ids` are the
  // subscriber's extension ids by URI (null: none). False when the ring was full.
  bool route(const std::string& room, Room& r, Participant& p, OutTrack& o,
             const std::vector<sdp::Extension>* ids);
  const Participant* find_resource(const std::string& id, std::string* room = nullptr) const;
  std::uint32_t next_session();
  boost::json::value to_json() const;
  void from_json(const boost::json::value& v);

  Link& link_;
  OrchestratorConfig config_;
  Sender send_;
  std::map<std::string, Room> rooms_;
  // (worker << 32 | session) -> room, identity: where a session event belongs.
  std::unordered_map<std::uint64_t, std::pair<std::string, std::string>> sessions_;
  struct RouteStat {
    shm::RouteReport report;
    std::chrono::steady_clock::time_point at;
  };
  // By (session_key(worker, subscriber session), subscriber-side SSRC).
  std::map<std::pair<std::uint64_t, std::uint32_t>, RouteStat> route_stats_;
  std::uint64_t route_reports_ = 0;
  std::uint64_t dynacast_told_ = 0;
  // Active speaker: per (worker, publisher session) the smoothed loudness; per room the order
  // last told and when.
  struct Loudness {
    double smoothed = 0;
    std::chrono::steady_clock::time_point loud_at{};
  };
  std::unordered_map<std::uint64_t, Loudness> loudness_;
  struct Speakers {
    std::vector<std::string> order;
    std::chrono::steady_clock::time_point told{};
    std::string prioritized;  // whose video has priority on the worker now
  };
  std::map<std::string, Speakers> speakers_;
  void set_priority(Room& r, const std::string& identity, std::uint8_t priority);
  static constexpr std::chrono::seconds kRouteStale{10};
  std::string quality_metrics() const;
  std::uint32_t session_counter_ = 0;
  std::uint64_t publishes_ = 0;
  std::uint64_t offers_ = 0;
  std::uint64_t answers_ = 0;
  std::uint64_t sdp_errors_ = 0;
  std::uint64_t push_failures_ = 0;
  std::map<std::string, std::uint64_t> session_events_;
  std::uint64_t resumed_ = 0;
  std::uint64_t ice_restarts_ = 0;
  std::uint64_t restored_ = 0;
  std::uint64_t publish_counter_ = 0;
  std::vector<std::string> emptied_;
  std::uint64_t whip_total_ = 0;
  std::uint64_t whep_total_ = 0;
  bool changed_ = false;
};

}  // namespace ringlane::control::media
