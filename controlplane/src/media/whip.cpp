#include "ringlane/controlplane/media/whip.hpp"

#include <boost/json.hpp>

#include <ctime>
#include <memory>

#include "ids.hpp"
#include "ringlane/controlplane/api.hpp"
#include "ringlane/controlplane/media/orchestrator.hpp"
#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/signaling/server.hpp"
#include "ringlane/controlplane/signaling/token.hpp"

namespace ringlane::control::media {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kSdp = "application/sdp";
constexpr std::string_view kSdpFragment = "application/trickle-ice-sdpfrag";
constexpr const char* kEndpointMethods = "OPTIONS, POST";
constexpr const char* kResourceMethods = "OPTIONS, PATCH, DELETE";

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

// RFC 9110 §8.3.1: the media type of a Content-Type, without its parameters (case-insensitive).
bool is_type(std::string_view content_type, std::string_view type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) {
    t.remove_suffix(1);
  }
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) {
    t.remove_prefix(1);
  }
  return iequals(t, type);
}

// RFC 9110 §5.6.4: a quoted-string, for the Link parameters.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

// CORS (Fetch standard): the one origin allowed is the page's own, the one whose host is the
// Host the request was sent to. The token in Authorization is the credential, never a cookie.
bool allowed_origin(const Request& req) {
  std::string_view origin = req[http::field::origin];
  std::string_view host = req[http::field::host];
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!host.empty() && origin.size() == scheme.size() + host.size() &&
        iequals(origin.substr(0, scheme.size()), scheme) &&
        iequals(origin.substr(scheme.size()), host)) {
      return true;
    }
  }
  return false;
}

void cors(const Request& req, Response& r) {
  if (!allowed_origin(req)) {
    return;
  }
  r.set(http::field::access_control_allow_origin, req[http::field::origin]);
  r.set(http::field::vary, "Origin");
  r.set(http::field::access_control_expose_headers,
        "Location, ETag, Link, Accept-Patch, Accept-Post");
}

Response error(const Request& req, http::status status, const std::string& code,
               const std::string& message) {
  Response r = json_error(req, status, code, message);
  cors(req, r);
  return r;
}

// The status of an orchestrator error: the client's offer (400), the room's state (409), or the
// data plane's (503, retry).
http::status status_of(const std::string& code) {
  if (code == "identity_in_use" || code == "nothing_published") {
    return http::status::conflict;
  }
  if (code == "media_unavailable" || code == "media_busy" || code == "placement_unavailable" ||
      code == "no_capacity") {
    return http::status::service_unavailable;
  }
  return http::status::bad_request;
}

// ws://HOST/ws -> http://HOST (wss -> https): the HTTP port of another node, from its ws_url.
std::string http_base(std::string_view ws_url) {
  for (auto [ws, web] : {std::pair<std::string_view, std::string_view>{"ws://", "http://"},
                         {"wss://", "https://"}}) {
    if (ws_url.starts_with(ws)) {
      std::string_view rest = ws_url.substr(ws.size());
      return std::string(web) + std::string(rest.substr(0, rest.find('/')));
    }
  }
  return {};
}

Response preflight(const Request& req, const char* methods, bool endpoint) {
  Response r{http::status::no_content, req.version()};
  r.set(http::field::allow, methods);
  // RFC 9725 §4.2 (WHIP), draft-ietf-wish-whep §4.1: what a POST takes; RFC 5789 §3.1: a PATCH.
  r.set(endpoint ? "Accept-Post" : "Accept-Patch", endpoint ? kSdp : kSdpFragment);
  r.set(http::field::cache_control, "no-store");
  if (allowed_origin(req)) {
    cors(req, r);
    r.set(http::field::access_control_allow_methods, methods);
    r.set(http::field::access_control_allow_headers, "Authorization, Content-Type, If-Match");
    r.set(http::field::access_control_max_age, "600");
  }
  return r;
}

}  // namespace

bool WhipEndpoint::take(const Request& req, const boost::asio::ip::address& peer,
                        const Respond& respond) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool whep = path.starts_with("/whep/");
  if (!whep && !path.starts_with("/whip/")) {
    return false;
  }
  std::string_view rest = path.substr(6);
  std::size_t slash = rest.find('/');
  bool is_resource = slash != std::string_view::npos;
  std::string room(rest.substr(0, slash));
  std::string id = is_resource ? std::string(rest.substr(slash + 1)) : std::string();
  if (room.empty() || (is_resource && (id.empty() || id.find('/') != std::string::npos))) {
    respond(error(req, http::status::not_found, "not_found",
                  "no such endpoint: POST /whip/ROOM or /whep/ROOM"));
    return true;
  }
  const char* methods = is_resource ? kResourceMethods : kEndpointMethods;
  if (req.method() == http::verb::options) {
    respond(preflight(req, methods, !is_resource));
    return true;
  }
  bool allowed = is_resource
                     ? req.method() == http::verb::patch || req.method() == http::verb::delete_
                     : req.method() == http::verb::post;
  if (!allowed) {
    Response r =
        error(req, http::status::method_not_allowed, "method_not_allowed",
              std::string(is_resource ? "a resource takes " : "an endpoint takes ") + methods);
    r.set(http::field::allow, methods);
    respond(std::move(r));
    return true;
  }
  if (api_.rate_limited(peer)) {
    Response r = error(req, http::status::too_many_requests, "rate_limited",
                       "too many requests; retry later");
    r.set(http::field::retry_after, "1");
    respond(std::move(r));
    return true;
  }
  Orchestrator* media = signaling_.orchestrator();
  if (media == nullptr) {
    respond(error(req, http::status::not_found, "not_found",
                  "WHIP and WHEP need the SFU, which this node does not run"));
    return true;
  }
  // RFC 9725 §4.5 / RFC 6750 §2.1: the room's join token (PROTOCOL.md) as a Bearer token.
  std::string_view auth = req[http::field::authorization];
  if (auth.size() < 7 || !iequals(auth.substr(0, 7), "Bearer ")) {
    Response r = error(req, http::status::unauthorized, "unauthorized",
                       "send the room's join token: Authorization: Bearer JWT");
    r.set(http::field::www_authenticate, "Bearer");
    respond(std::move(r));
    return true;
  }
  signaling::TokenError terr;
  auto grant = signaling::verify_token(auth.substr(7), signaling_.config().jwt_secrets,
                                       std::time(nullptr), terr);
  if (!grant) {
    Response r = error(req, http::status::unauthorized, terr.code, terr.message);
    r.set(http::field::www_authenticate, "Bearer error=\"invalid_token\"");
    respond(std::move(r));
    return true;
  }
  if (grant->room != room) {
    respond(error(req, http::status::forbidden, "room_not_granted",
                  "the token grants room \"" + grant->room + "\" only"));
    return true;
  }
  if (!is_resource) {
    post(req, whep, room, grant->identity, respond);
    return true;
  }
  auto found = media->resource(id);
  if (!found || found->room != room || found->viewer != whep) {
    respond(error(req, http::status::not_found, "not_found",
                  std::string("no ") + (whep ? "WHEP" : "WHIP") + " resource " + id +
                      " in room \"" + room + "\""));
    return true;
  }
  if (req.method() == http::verb::delete_) {
    // RFC 9725 §4.2: DELETE ends the session.
    media->end_resource(id);
    signaling_.http_done(room);
    Response r{http::status::ok, req.version()};
    r.set(http::field::cache_control, "no-store");
    cors(req, r);
    respond(std::move(r));
    return true;
  }
  // PATCH (RFC 9725 §4.3): trickle ICE or an ICE restart.
  if (!is_type(req[http::field::content_type], kSdpFragment)) {
    Response r = error(req, http::status::unsupported_media_type, "unsupported_media_type",
                       "a PATCH carries application/trickle-ice-sdpfrag (RFC 8840)");
    r.set("Accept-Patch", kSdpFragment);
    respond(std::move(r));
    return true;
  }
  std::string_view if_match = req[http::field::if_match];
  if (!if_match.empty() && if_match != "*" && if_match != found->etag) {
    // RFC 9725 §4.3.1, RFC 9110 §13.1.1: the PATCH is for another (older) ICE session.
    respond(error(req, http::status::precondition_failed, "precondition_failed",
                  "If-Match is not the ETag of this resource's ICE session"));
    return true;
  }
  sdp::ParseError perr;
  auto fragment = sdp::parse_ice_fragment(req.body(), perr);
  if (!fragment) {
    respond(error(req, http::status::bad_request, "bad_sdpfrag", perr.reason));
    return true;
  }
  // An ICE restart (RFC 9725 §4.3.2): If-Match "*" and the client's new credentials. The
  // session keeps its DTLS keys and tracks; the answer is our new credentials and candidates.
  // New credentials under a specific ETag are a restart too (a client that kept the ETag).
  bool restart =
      if_match == "*" || (!fragment->ufrag.empty() && fragment->ufrag != found->remote_ufrag);
  if (restart) {
    if (fragment->ufrag.empty() || fragment->pwd.empty()) {
      respond(error(req, http::status::bad_request, "bad_sdpfrag",
                    "an ICE restart carries the new a=ice-ufrag and a=ice-pwd"));
      return true;
    }
    if (fragment->ufrag == found->remote_ufrag) {
      respond(error(req, http::status::bad_request, "bad_sdpfrag",
                    "an ICE restart needs a new a=ice-ufrag (RFC 8839 §4.4.1.1.2)"));
      return true;
    }
    Reply restarted = media->restart_resource(id, fragment->ufrag);
    if (!restarted.code.empty()) {
      Response e = error(
          req, restarted.retryable ? http::status::service_unavailable : http::status::not_found,
          restarted.code, restarted.message);
      if (restarted.retryable) {
        e.set(http::field::retry_after, "1");
      }
      respond(std::move(e));
      return true;
    }
    Response r{http::status::ok, req.version()};
    r.set(http::field::content_type, kSdpFragment);
    r.set(http::field::etag, std::string(restarted.body["etag"].as_string()));
    r.set(http::field::cache_control, "no-store");
    cors(req, r);
    r.body() = std::string(restarted.body["fragment"].as_string());
    r.prepare_payload();
    respond(std::move(r));
    return true;
  }
  Response r{http::status::no_content, req.version()};
  r.set(http::field::cache_control, "no-store");
  cors(req, r);
  respond(std::move(r));
  return true;
}

void WhipEndpoint::post(const Request& req, bool whep, const std::string& room,
                        const std::string& identity, const Respond& respond) {
  if (!is_type(req[http::field::content_type], kSdp)) {
    Response r = error(req, http::status::unsupported_media_type, "unsupported_media_type",
                       "the offer is sent as application/sdp");
    r.set("Accept-Post", kSdp);
    return respond(std::move(r));
  }
  if (req.body().empty()) {
    return respond(error(req, http::status::bad_request, "bad_sdp",
                         "the body is empty; it must be the SDP offer"));
  }
  std::string participant = whep ? query_param(req.target(), "participant") : std::string();
  auto held = std::make_shared<Request>(req);
  signaling_.place_http(room, [this, held, whep, room, identity, participant,
                               respond](signaling::SignalingServer::HttpPlacement placed) {
    const Request& r = *held;
    if (!placed.error.empty() || (!placed.worker && http_base(placed.ws_url).empty())) {
      Response e = error(r, http::status::service_unavailable,
                         placed.error.empty() ? "placement_unavailable" : placed.error,
                         "the room cannot be placed now; retry");
      e.set(http::field::retry_after, "2");
      return respond(std::move(e));
    }
    if (!placed.worker) {
      // RFC 9725 §4.5: the room lives on another node; the client follows the redirect there.
      Response e = error(r, http::status::temporary_redirect, "room_elsewhere",
                         "room \"" + room + "\" lives on another node");
      e.set(http::field::location, http_base(placed.ws_url) + std::string(r.target()));
      return respond(std::move(e));
    }
    Orchestrator* media = signaling_.orchestrator();
    std::string id = ice_token(24);
    Reply reply = whep ? media->whep_view(room, identity, id, r.body(), participant)
                       : media->whip_publish(room, *placed.worker, identity, id, r.body());
    if (!reply.code.empty()) {
      signaling_.http_done(room);
      Response e = error(r, status_of(reply.code), reply.code, reply.message);
      if (reply.retryable) {
        e.set(http::field::retry_after, "1");
      }
      return respond(std::move(e));
    }
    Response ok{http::status::created, r.version()};
    ok.set(http::field::content_type, kSdp);
    ok.set(http::field::location, std::string(whep ? "/whep/" : "/whip/") + room + "/" + id);
    ok.set(http::field::etag, std::string(reply.body["etag"].as_string()));
    ok.set("Accept-Patch", kSdpFragment);
    ok.set(http::field::cache_control, "no-store");
    // RFC 9725 §4.6: the ICE servers, one Link each (RFC 8288), TURN with REST credentials.
    for (const auto& server : api_.ice_servers(identity)) {
      const auto& s = server.as_object();
      for (const auto& url : s.at("urls").as_array()) {
        ok.insert(http::field::link,
                  "<" + std::string(url.as_string()) +
                      ">; rel=\"ice-server\"; username=" + quoted(s.at("username").as_string()) +
                      "; credential=" + quoted(s.at("credential").as_string()) +
                      "; credential-type=\"password\"");
      }
    }
    ok.body() = std::string(reply.body["sdp"].as_string());
    cors(r, ok);
    respond(std::move(ok));
  });
}

}  // namespace ringlane::control::media
