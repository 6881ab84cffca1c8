#pragma once
// A worker's SFU: every media session placed on this worker (one per browser peer connection),
// the tracks they publish and the routes that copy each track to its subscribers. Driven by the
// worker with datagrams from its media port, ring commands and the clock; everything it sends
// goes through Output, so tests drive it without sockets and it cannot tell which io backend
// runs. Single-threaded: the worker owns it.
//
// The media port carries, per RFC 7983: STUN (ICE-lite checks, found by USERNAME), DTLS and
// SRTP/SRTCP (found by the 5-tuple a valid check came from).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/red.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "ringlane/shm/media.hpp"
#include "ringlane/shm/messages.hpp"
#include "ringlane/shm/sfu_counters.hpp"

namespace ringlane::sfu {

class Output {
 public:
  virtual ~Output() = default;
  virtual std::optional<io::BufferId> acquire(PacketBuffer& out) = 0;
  virtual void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt,
                    io::BufferId id) = 0;
  virtual void release(io::BufferId id) = 0;
  virtual void event(shm::Event type, std::span<const std::uint8_t> payload) = 0;
};

struct EngineConfig {
  std::shared_ptr<const crypto::DtlsCertificate> certificate;
  std::uint64_t consent_timeout_ms = 30000;       // RFC 7675 §5.1: 30 s without a valid check
  std::uint64_t setup_timeout_ms = 60000;         // created but never connected
  std::uint64_t keyframe_interval_ms = 200;       // at most one PLI per track per interval
  std::uint64_t report_interval_ms = 1000;        // receiver reports to publishers
  std::uint64_t retransmit_max_age_ms = 1000;     // older packets are not resent
  std::uint64_t measure_interval_ms = 500;        // simulcast layers' received bitrates
  std::uint64_t allocate_interval_ms = 200;       // subscribers' layers re-chosen
  std::uint64_t route_report_interval_ms = 2000;  // RouteReport events to the control plane
  std::uint64_t levels_interval_ms = 300;         // AudioLevels events (the active speaker)
  std::size_t max_sessions = 4096;
};

struct Session;
struct Track;
struct Route;
struct Renumber;
class RetransmitStore;

class Engine {
 public:
  Engine(EngineConfig config, Output& out);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A datagram that arrived on a media socket; the buffer is consumed (sent or released).
  void on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt, io::BufferId id,
                   const Now& now);
  // A session command from the ring; false when its payload is malformed or refers to nothing
  // (the caller reports it as refused).
  bool on_command(shm::Command type, std::span<const std::uint8_t> payload, const Now& now);
  // DTLS retransmissions, consent and setup timeouts, receiver reports. Call every ~50 ms.
  void on_timer(const Now& now);

  const Counters& counters() const { return counters_; }

 private:
  void on_stun(SocketId socket, const Endpoint& from, PacketBuffer& pkt, const Now& now);
  void on_dtls(Session& s, PacketBuffer& pkt, const Now& now);
  void on_rtp(Session& s, PacketBuffer& pkt, const Now& now);
  void on_rtcp(Session& s, PacketBuffer& pkt, const Now& now);
  // Copies a packet of `layer` (a track, or one layer of a simulcast track) to the routes of
  // `head` (the same track, or the simulcast track's layer 0).
  // (`layer` keeps the AV1 dependency structure its packets carry.)
  void forward(Track& head, Track& layer, std::span<std::uint8_t> rtp, const Now& now);
  // One copy of plain RTP packet `rtp` to a route, renumbered by `renumber` (VP8 descriptor
  // too when `vp8`); as an RTX packet (RFC 4588) when `as_rtx`. The sequence number and
  // timestamp it went out with in `sent` (when not nullptr).
  struct Sent {
    std::uint16_t sequence = 0;
    std::uint32_t timestamp = 0;
    bool vp8 = false;  // a VP8 descriptor with a picture id, renumbered to these:
    std::uint16_t picture_id = 0;
    std::uint8_t tl0picidx = 0;
    std::uint8_t keyidx = 0;
    std::uint32_t bytes = 0;  // on the wire
  };
  // No packet to a subscriber for this long while its source sends: a freeze (RouteReport).
  static constexpr std::uint64_t kFreezeMs = 500;
  // `red`: the packet's RFC 2198 payload, parsed once for all its copies (nullptr: not RED).
  bool send_copy(Route& r, const rtp::RtpPacket& view, bool as_rtx, const Renumber& renumber,
                 bool vp8, Sent* sent = nullptr, const rtp::RedPayload* red = nullptr);
  // Simulcast: whether a packet of `layer` goes to route `r` (its current layer, or the first
  // keyframe of its target, where the switch happens and the renumbering is set).
  bool select_layer(Route& r, const Track& layer, const rtp::RtpPacket& view, const Now& now);
  // A video packet's place in the layers inside its stream (VP8 TID, RFC 7741 §4.2; VP9 TID and
  // SID, RFC 9628 §4.2), read once per packet for all routes.
  struct Layering {
    bool known = false;  // VP8 with a TID, or VP9 with layer indices
    bool vp9 = false;
    std::uint8_t tid = 0;
    std::uint8_t sid = 0;
    bool frame_start = false;  // VP8: partition 0 starts; VP9: the picture's base layer begins
    bool end = false;          // VP9 E: the last packet of a layer frame
    bool sync = false;         // VP8 Y / VP9 U: a temporal layer may start here
    bool keyframe = false;
    bool has_picture_id = false;
    std::uint16_t picture_id = 0;
    // AV1 with a Dependency Descriptor (spatial layers as VP9's, `end` its end_of_frame): the
    // decode targets this frame is a switching point of, in the track's structure.
    bool av1 = false;
    std::uint32_t switch_targets = 0;
    const rtp::DependencyStructure* structure = nullptr;
  };
  static Layering layering(shm::Codec codec, Bytes payload);
  // The layering of an AV1 packet from its Dependency Descriptor (av1_layers.cpp), which also
  // keeps `t`'s structure up to date; not known without the extension or a structure.
  Layering dependency_layering(Track& t, const rtp::RtpPacket& p);  // counts what does not parse
  // The temporal layer a route at (`spatial`, `temporal`) may have from this AV1 frame on: the
  // highest up to `target` whose decode target the frame is a switching point of.
  static std::uint8_t dependency_temporal(const Layering& l, std::uint8_t spatial,
                                          std::uint8_t temporal, std::uint8_t target);
  // Whether a packet of a single-stream track goes to route `r` as far as its temporal and VP9
  // spatial layers go (the renumbering it goes out with, nullptr: dropped for this route; the
  // sequence numbers and VP8 picture ids of what is dropped are taken out of the route's).
  const Renumber* select_svc(Route& r, const Layering& l, std::uint16_t sequence);
  // The spatial and temporal layers a route of a single-stream layered track should get within
  // `budget_bps`, at most `max_spatial`/`max_temporal` (the lowest when nothing fits); the
  // bitrate that takes.
  std::uint64_t choose_svc(const Track& t, std::uint8_t max_spatial, std::uint8_t max_temporal,
                           std::uint64_t budget_bps, std::uint8_t& spatial,
                           std::uint8_t& temporal) const;
  // The layer a route should receive: the highest active one under its own limit whose bitrate
  // fits `budget_bps` (the lowest active one when none fits).
  std::uint8_t choose_layer(Session& publisher, const Track& head, const Route& r,
                            std::uint64_t budget_bps, const Now& now);
  // Re-chooses the layers of every simulcast route of a subscriber.
  void allocate(Session& subscriber, const Now& now);
  // Turns simulcast layers nobody takes off at their publisher, and on again (LayersActive).
  void dynacast(const Now& now);
  void svc_dynacast(Session& publisher, Track& t, const Now& now);
  // The layer track a subscriber's copy of `head` comes from (head itself when plain).
  Track& layer_for(Session& publisher, Track& head, const Session& subscriber,
                   std::uint32_t subscriber_ssrc);
  // Congestion control (congestion.cpp): a subscriber's estimated bandwidth (unbounded when it
  // has no transport-wide feedback), a probe towards `target_bps` before a layer goes up,
  // padding sent for a running probe, feedback to publishers.
  std::uint64_t estimate_bps(const Session& subscriber) const;
  void probe(Session& subscriber, std::uint64_t target_bps, const Now& now);
  // Padding for every running probe (at least every kPaddingEveryUs while packets arrive).
  void pad_probes(const Now& now);
  // False when the subscriber has nothing to pad with (no RTX stream) or its probe ended.
  bool send_padding(Session& subscriber, const Now& now);
  void on_transport_feedback(Session& subscriber, const rtcp::Feedback& fb, const Now& now);
  void send_transport_feedback(Session& publisher);
  void measure_layers(const Now& now);
  // A packet numbered `seq` on a subscriber's transport left (for its bandwidth estimate).
  void on_transport_sent(Session& subscriber, std::uint16_t seq, std::size_t bytes, bool probe);
  // Learns a simulcast layer's SSRC (or its RTX SSRC) from the RID extensions of a packet
  // with an unknown SSRC; nullptr when it names no layer.
  Track* learn_layer(Session& s, const rtp::RtpPacket& p, bool& rtx, const Now& now);
  void on_nack(Session& subscriber, Session& publisher, Track& track, std::uint32_t media_ssrc,
               std::span<const std::uint16_t> lost, const Now& now);
  void nack_upstream(Session& publisher, Track& track, std::uint16_t from, std::uint16_t to);
  void forward_sender_report(Session& publisher, Bytes sr);
  void on_feedback(Session& subscriber, Bytes packet, const Now& now);
  void on_receiver_report(Session& subscriber, const rtcp::Packet& p);
  // Every route's RouteReport event (reports.cpp), each report interval.
  void report_routes(const Now& now);
  // The audio tracks' loudness of the last interval (AudioLevels events).
  void report_levels();
  void request_keyframe(Session& publisher, Track& track, const Now& now);
  void send_receiver_reports(Session& publisher, const Now& now);
  // Protects an RTCP packet built in `pkt` with the session's keys and sends it.
  void send_rtcp(Session& s, PacketBuffer& pkt, io::BufferId id);
  // Builds an RTCP packet into a transmit buffer (build(out) returns its length, 0 to give up)
  // and sends it to the session; false when no buffer was free.
  template <typename Build>
  bool send_new_rtcp(Session& s, Build&& build);
  // SRTP (or SRTCP) decrypted in place; nullopt with the drop counted by its reason.
  std::optional<std::size_t> unprotect(Session& s, PacketBuffer& pkt, bool rtcp);
  void flush_dtls(Session& s);
  void dtls_progress(Session& s, const Now& now);
  void set_remote(Session& s, SocketId socket, const Endpoint& from, const Now& now);
  void close(Session& s, bool report);
  void emit(const Session& s, shm::SessionState state, const Now& now);
  Session* find(shm::SessionId id);

  bool create(const shm::SessionCreate& c, const Now& now);
  bool ice_restart(const shm::SessionIceRestart& r);
  bool remote(const shm::SessionRemote& r, const Now& now);
  bool add_track(const shm::TrackAdd& t);
  bool remove_track(const shm::TrackRemove& t);
  bool subscribe(const shm::Subscribe& m, const Now& now);
  bool unsubscribe(const shm::Unsubscribe& m);
  bool route_layer(const shm::RouteLayer& m, const Now& now);

  EngineConfig config_;
  Output& out_;
  Counters counters_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Session>> sessions_;
  std::unordered_map<std::string, Session*> by_ufrag_;
  std::unordered_map<Endpoint, Session*, EndpointHash> by_address_;
  std::uint64_t next_report_ms_ = 0;
  std::uint64_t next_measure_ms_ = 0;
  std::uint64_t last_measure_ms_ = 0;
  std::uint64_t next_allocate_ms_ = 0;
  std::uint64_t next_route_report_ms_ = 0;
  std::uint64_t next_levels_ms_ = 0;
  std::uint64_t next_dynacast_ms_ = 0;
  std::uint64_t last_route_report_ms_ = 0;
  std::int64_t now_us_ = 0;  // of the call being handled, for what has no Now passed down
  static constexpr std::int64_t kPaddingEveryUs = 2000;
  std::vector<shm::SessionId> probing_;  // subscribers whose probe sends padding
  std::int64_t last_padding_us_ = 0;
  // RINGLANE_SFU_TRACE set: a line per subscriber and second on stderr.
  bool trace_ = std::getenv("RINGLANE_SFU_TRACE") != nullptr;
  std::unique_ptr<RetransmitStore> store_;
  std::uint64_t next_token_ = 1;
};

}  // namespace ringlane::sfu
