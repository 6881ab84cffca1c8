#pragma once
// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) on the control plane's HTTP port: a broadcaster
// publishes into a room with one HTTP POST of its SDP offer, a player watches one with another,
// each with the join token of that room (controlplane/PROTOCOL.md, "WHIP and WHEP").
//   POST   /whip/ROOM            offer -> 201 answer, Location /whip/ROOM/ID, ETag, Link (TURN)
//   POST   /whep/ROOM[?participant=NAME]   the same for a player (recvonly offer)
//   PATCH  /whip/ROOM/ID         trickle ICE (application/trickle-ice-sdpfrag) -> 204
//   DELETE /whip/ROOM/ID         ends it
//   OPTIONS                      CORS preflight, Accept-Post
// The participants are the orchestrator's (whip_publish, whep_view); the room is placed as a
// signaling join places it. Runs on the io_context thread.
#include <boost/asio/ip/address.hpp>
#include <string>

#include "ringlane/controlplane/http_server.hpp"

namespace ringlane::control {
class Api;
namespace signaling {
class SignalingServer;
}
}  // namespace ringlane::control

namespace ringlane::control::media {

class WhipEndpoint {
 public:
  // `api` lends its per-source rate limit and TURN credentials.
  WhipEndpoint(signaling::SignalingServer& signaling, Api& api)
      : signaling_(signaling), api_(api) {}

  // Takes the requests for /whip/... and /whep/..., answered through `respond` (a POST after its
  // room is placed); false for any other path.
  bool take(const Request& req, const boost::asio::ip::address& peer, const Respond& respond);

 private:
  void post(const Request& req, bool whep, const std::string& room, const std::string& identity,
            const Respond& respond);

  signaling::SignalingServer& signaling_;
  Api& api_;
};

}  // namespace ringlane::control::media
