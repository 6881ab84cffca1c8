#pragma once
// WebSocket signaling at /ws (controlplane/PROTOCOL.md): JWT authentication, join/leave with
// room placement, participant events, ping/pong, idle and auth timeouts, and limits on frame
// size, connections per source address, joins per second and room size. Runs on the control
// plane's io_context thread: its state needs no locks.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/controlplane/http_server.hpp"
#include "ringlane/controlplane/media/orchestrator.hpp"
#include "ringlane/controlplane/placement/service.hpp"
#include "ringlane/controlplane/placement/store.hpp"
#include "ringlane/controlplane/signaling/message.hpp"

namespace ringlane::control::signaling {

struct NodeLoad {
  std::uint64_t allocations = 0;
  std::uint64_t packets_per_s = 0;
  double cpu = 0;
};

struct SignalingConfig {
  std::vector<std::string> jwt_secrets;  // none: every token is refused
  std::string node_id = "local";
  std::string ws_url;  // advertised to clients of rooms placed here
  unsigned workers = 1;
  unsigned max_rooms = 10000;
  std::size_t max_frame_bytes = 64 * 1024;  // an SDP offer with many tracks fits
  unsigned max_connections = 200000;
  unsigned max_connections_per_ip = 200;
  double joins_per_s_per_ip = 20;       // burst: twice that
  double messages_per_s_per_conn = 50;  // burst: twice that
  unsigned max_room_participants = 500;
  std::size_t max_queued_messages = 256;  // per connection; a slower reader is disconnected
  std::chrono::milliseconds auth_timeout{10000};
  std::chrono::milliseconds idle_timeout{30000};  // ping at half, close at full
  std::chrono::milliseconds heartbeat{2000};      // node registry refresh + room lock renewal
  std::function<NodeLoad()> load;                 // the data plane's load, for the registry
  // The SFU: the data plane's command rings (none: media messages answer "not_supported") and
  // the addresses its media ports are reached at (ICE host candidates).
  media::Link* media = nullptr;
  std::vector<IpAddress> candidate_ips;
  std::string media_state_file;  // kept for a restarted control plane ("" = not kept)
  bool media_restore = false;    // read it back at start (the data plane was adopted)
  std::chrono::milliseconds media_resume_grace{20000};
};

class Session;

class SignalingServer {
 public:
  SignalingServer(boost::asio::io_context& io, SignalingConfig config,
                  std::unique_ptr<placement::Store> store);
  ~SignalingServer();

  // Takes an HTTP upgrade request for /ws from the HTTP server (over TCP or TLS); `peer` is the
  // client's address (a trusted proxy's X-Forwarded-For applied), the key of per-address limits.
  void upgrade(HttpStream stream, Request req, const boost::asio::ip::address& peer);
  // Leaving: takes this node out of the placement registry and releases its rooms (waits up to
  // a second for the store). Connections are not closed here.
  void shutdown();
  // Prometheus text: connections, rooms, participants, joins, errors by code, store state.
  std::string metrics() const;
  const SignalingConfig& config() const { return config_; }
  // A session event (ICE/DTLS state) from a worker's event ring.
  void on_session_event(unsigned worker, std::span<const std::uint8_t> payload);
  void on_media_report(unsigned worker, shm::Event type, std::span<const std::uint8_t> payload);
  // The data plane was restarted and lost every session: the media state is reset and each
  // participant told (`media_reset`) to publish again (PROTOCOL.md).
  void media_reset();

  // WHIP/WHEP (media/whip.hpp): participants without a connection, on the same rooms.
  media::Orchestrator* orchestrator() { return media_.get(); }
  struct HttpPlacement {
    std::optional<unsigned> worker;  // the room is here, on this worker
    std::string ws_url;              // else: it lives on the node of this ws_url
    std::string error;               // else: placement_unavailable | no_capacity
  };
  // Places the room as a join would; a room placed here is hosted (its lock kept) from then on.
  void place_http(const std::string& room, std::function<void(HttpPlacement)> done);
  // A WHIP/WHEP resource of the room ended or did not start: the room is released when nobody
  // is left in it.
  void http_done(const std::string& room);

 private:
  friend class Session;
  struct Room {
    placement::Placement placement;
    std::map<std::string, std::shared_ptr<Session>> members;  // by identity
  };
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };

  void tick();
  void heartbeat();
  void on_authenticated(Session& s);
  void link(Session& s);
  void on_closed(Session& s);
  void join(const std::shared_ptr<Session>& s, const std::string& room, const std::string& id);
  void complete_join(const std::shared_ptr<Session>& s, const std::string& room,
                     const std::string& id, const placement::Placement& where);
  void rooms_lost(const std::vector<std::string>& lost);
  void leave(Session& s, const std::string& id, const char* reason, bool release_if_empty = true);
  void broadcast(const Room& room, const std::string& text, const Session* except);
  void media(Session& s, const ClientMessage& m);
  void expire_media();
  bool take(std::unordered_map<std::string, Bucket>& buckets, const std::string& key, double rate);
  void count_error(const std::string& code) { ++errors_[code]; }

  SignalingConfig config_;
  placement::Service store_;
  std::unique_ptr<media::Orchestrator> media_;
  bool heartbeat_in_flight_ = false;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_heartbeat_{};
  std::map<std::string, Room, std::less<>> rooms_;
  std::unordered_map<std::string, unsigned> per_ip_;
  std::unordered_map<std::string, Bucket> join_buckets_;
  Session* sessions_ = nullptr;  // every accepted connection (intrusive list)
  std::chrono::steady_clock::time_point next_sweep_{};
  std::uint64_t connections_ = 0;
  std::uint64_t authenticated_ = 0;
  std::uint64_t accepted_total_ = 0;
  std::uint64_t refused_total_ = 0;
  std::uint64_t joins_ = 0;
  std::uint64_t redirects_ = 0;
  std::uint64_t leaves_ = 0;
  std::uint64_t participants_ = 0;
  std::uint64_t heartbeat_failures_ = 0;
  std::map<std::string, std::uint64_t> errors_;
};

}  // namespace ringlane::control::signaling
