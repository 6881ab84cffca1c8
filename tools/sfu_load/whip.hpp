#pragma once
// WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) as a client: an SDP offer POSTed to the
// endpoint is answered 201 with the answer and the session's resource in Location (§4.2); a
// DELETE of that resource ends the session (§4.3). Any WHIP/WHEP server, not only ringlane's.
#include <functional>
#include <memory>
#include <string>

#include "sfu_load/signaling.hpp"

namespace sfu_load {

// Location may be absolute or a path on the endpoint's origin.
inline std::string resource_url(const std::string& post_url, const std::string& location) {
  if (location.find("://") != std::string::npos) {
    return location;
  }
  auto u = parse_url(post_url);
  return u ? u->scheme + "://" + u->host + ":" + u->port + (location.starts_with("/") ? "" : "/") +
                 location
           : location;
}

struct WhipCallbacks {
  std::function<void(const std::string& answer, const std::string& resource)> answered;
  // Not yet (404/409: nothing to play yet; 429/503: the server's limits): ask again later.
  std::function<void()> retry;
  std::function<void(const std::string& why)> failed;
};

inline void post_offer(asio::io_context& io, const std::string& source, const std::string& url,
                       const std::string& bearer, std::string offer, WhipCallbacks cb) {
  auto u = parse_url(url);
  if (!u) {
    return cb.failed("bad URL " + url);
  }
  auto req = std::make_shared<HttpRequest>(io, source);
  req->run(*u, http::verb::post, u->target, bearer, "application/sdp", std::move(offer),
           std::chrono::seconds(10),
           [cb, url](int status, std::string body, std::string location, std::string error) {
             if (status == 404 || status == 409 || status == 429 || status == 503) {
               return cb.retry();
             }
             if (status != 201) {
               return cb.failed("POST " + url + ": HTTP " + std::to_string(status) + " " + error +
                                " " + body.substr(0, 200));
             }
             cb.answered(body, resource_url(url, location));
           });
}

inline bool delete_resource(asio::io_context& io, const std::string& source, const std::string& url,
                            const std::string& bearer, std::function<void()> done) {
  auto u = url.empty() ? std::nullopt : parse_url(url);
  if (!u) {
    return false;
  }
  auto req = std::make_shared<HttpRequest>(io, source);
  req->run(*u, http::verb::delete_, u->target, bearer, "", "", std::chrono::seconds(2),
           [done](int, std::string, std::string, std::string) { done(); });
  return true;
}

}  // namespace sfu_load
