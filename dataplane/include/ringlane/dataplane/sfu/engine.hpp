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
#include <memory>
#include <span>
#include <string>
#include <unordered_map>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
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
  std::uint64_t consent_timeout_ms = 30000;    // RFC 7675 §5.1: 30 s without a valid check
  std::uint64_t setup_timeout_ms = 60000;      // created but never connected
  std::uint64_t keyframe_interval_ms = 200;    // at most one PLI per track per interval
  std::uint64_t report_interval_ms = 1000;     // receiver reports to publishers
  std::uint64_t retransmit_max_age_ms = 1000;  // older packets are not resent
  std::size_t max_sessions = 4096;
};

struct Session;
struct Track;
struct Route;
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
  void forward(Track& track, std::span<std::uint8_t> rtp);
  // One copy of plain RTP packet `rtp` to a route; as an RTX packet (RFC 4588) when `as_rtx`.
  bool send_copy(Route& r, const rtp::RtpPacket& view, bool as_rtx);
  void on_nack(Session& subscriber, Session& publisher, Track& track, std::uint32_t media_ssrc,
               std::span<const std::uint16_t> lost, const Now& now);
  void nack_upstream(Session& publisher, Track& track, std::uint16_t from, std::uint16_t to);
  void forward_sender_report(Session& publisher, Bytes sr);
  void on_feedback(Session& subscriber, Bytes packet, const Now& now);
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

  EngineConfig config_;
  Output& out_;
  Counters counters_;
  std::unordered_map<std::uint32_t, std::unique_ptr<Session>> sessions_;
  std::unordered_map<std::string, Session*> by_ufrag_;
  std::unordered_map<Endpoint, Session*, EndpointHash> by_address_;
  std::uint64_t next_report_ms_ = 0;
  std::unique_ptr<RetransmitStore> store_;
  std::uint64_t next_token_ = 1;
};

}  // namespace ringlane::sfu
