// The orchestrator's WHIP publishers and WHEP viewers (media/whip.hpp serves them over HTTP):
// participants with no WebSocket, so nothing is ever sent to them; what they negotiate is in one
// offer and its answer.
#include <algorithm>

#include "ids.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/media/orchestrator.hpp"

namespace ringlane::control::media {
namespace json = boost::json;
namespace {

constexpr std::string_view kViewerPrefix = "whep/";

std::string etag_of(const std::string& ufrag) {
  return "\"" + ufrag + "\"";
}

}  // namespace

Reply Orchestrator::whip_publish(const std::string& room, unsigned worker,
                                 const std::string& identity, const std::string& resource,
                                 const std::string& sdp) {
  const Participant* existing = find(room, identity);
  if (existing != nullptr && existing->resource.empty()) {
    return Reply::error("identity_in_use",
                        "\"" + identity + "\" is in room \"" + room + "\" over signaling");
  }
  auto info = link_.info();
  if (!info) {
    return Reply::error("media_unavailable", "the data plane is not running; retry shortly", true);
  }
  // The offer is checked before anything changes, so that a bad one leaves no trace (no
  // participant_joined announced and taken back).
  sdp::ParseError perr;
  auto offer = sdp::parse(sdp, perr);
  Peer probe;
  probe.ufrag = ice_token(8);
  probe.pwd = ice_token(24);
  auto checked = offer
                     ? sdp::answer_publish(*offer, local_ice(Room{worker, {}}, probe, *info), perr)
                     : std::nullopt;
  if (!checked || !shm::fingerprint_bytes(checked->remote_fingerprint)) {
    ++sdp_errors_;
    return Reply::error("bad_sdp",
                        checked ? "the offer's fingerprint is not SHA-256" : perr.reason);
  }
  bool replacing = existing != nullptr;
  if (replacing) {
    // The same encoder again (it restarted, or lost the resource URL): the newer one wins, as
    // for a signaling connection that replaces another. Its tracks end and new ones begin.
    spdlog::info("WHIP {} of room {} replaces its resource {}", identity, room, existing->resource);
    leave(room, identity);
  }
  join(room, worker, identity, false);
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  p->resource = resource;
  if (!replacing) {
    json::object e;
    e["type"] = "participant_joined";
    e["room"] = room;
    e["participant"] = identity;
    broadcast(room, *r, identity, e);
  }
  Reply reply = publish(room, identity, sdp);
  if (!reply.code.empty()) {
    end_resource(resource);
    return reply;
  }
  // ensure_session() does not know the room; session events of a resource need it.
  sessions_[session_key(r->worker, p->pub.session)].first = room;
  ++whip_total_;
  reply.body["etag"] = etag_of(p->pub.ufrag);
  return reply;
}

Reply Orchestrator::whep_view(const std::string& room, const std::string& identity,
                              const std::string& resource, const std::string& text,
                              const std::string& participant) {
  auto info = link_.info();
  if (!info) {
    return Reply::error("media_unavailable", "the data plane is not running; retry shortly", true);
  }
  sdp::ParseError perr;
  auto offer = sdp::parse(text, perr);
  if (!offer) {
    ++sdp_errors_;
    return Reply::error("bad_sdp", perr.reason);
  }
  // What the room publishes, the most recent first, as a subscriber would get it (add_out).
  Participant viewer;
  viewer.identity = std::string(kViewerPrefix) + resource;
  viewer.resource = resource;
  viewer.viewer = true;
  viewer.auto_subscribe = false;
  auto it = rooms_.find(room);
  if (it != rooms_.end()) {
    std::vector<std::pair<const Participant*, const PubTrack*>> tracks;
    for (const auto& [name, other] : it->second.members) {
      if (participant.empty() || name == participant) {
        for (const auto& t : other.tracks) {
          tracks.emplace_back(&other, &t);
        }
      }
    }
    std::stable_sort(tracks.begin(), tracks.end(), [](const auto& a, const auto& b) {
      return a.second->order > b.second->order;
    });
    for (const auto& [publisher, t] : tracks) {
      add_out(viewer, *publisher, *t);
    }
  }
  std::string what = participant.empty() ? "in room \"" + room + "\""
                                         : "by \"" + participant + "\" in room \"" + room + "\"";
  if (viewer.out.empty()) {
    return Reply::error("nothing_published", "nothing published " + what);
  }
  std::vector<sdp::OfferedTrack> candidates;
  for (const auto& o : viewer.out) {
    candidates.push_back(o.offered);
  }
  viewer.sub.session = next_session();
  viewer.sub.ufrag = ice_token(8);
  viewer.sub.pwd = ice_token(24);
  Room& r = it->second;
  auto answer = sdp::answer_subscribe(*offer, candidates, local_ice(r, viewer.sub, *info), perr);
  auto fp = answer ? shm::fingerprint_bytes(answer->remote_fingerprint) : std::nullopt;
  if (answer && answer->sent.empty()) {
    return Reply::error("nothing_published",
                        "nothing published " + what + " is of a kind and codec the offer receives");
  }
  if (!answer || !fp) {
    ++sdp_errors_;
    return Reply::error("bad_sdp", answer ? "the offer's fingerprint is not SHA-256" : perr.reason);
  }
  std::vector<OutTrack> out;
  for (const auto& [index, answered] : answer->sent) {
    out.push_back(viewer.out[index]);
    out.back().offered = answered;
  }
  viewer.out = std::move(out);
  viewer.sub.remote_ufrag = answer->remote_ufrag;
  std::string key = viewer.identity;
  Participant& p = r.members[key];
  p = std::move(viewer);
  changed_ = true;
  // The viewer's fingerprint and DTLS role are known now (RFC 5763 §5: it offered actpass, we
  // answered passive, so the worker is the DTLS server).
  if (!ensure_session(r, p, p.sub, *info, *fp, answer->remote_setup == "passive")) {
    leave(room, key);
    return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
  }
  p.sub.remote_set = true;
  sessions_[session_key(r.worker, p.sub.session)].first = room;
  // Routed before the viewer connects: when its DTLS is up the worker asks the publishers for a
  // keyframe.
  for (auto& o : p.out) {
    route(room, r, p, o, &o.offered.extensions);
  }
  spdlog::info("WHEP viewer {} ({}) of room {}: {} track(s)", resource, identity, room,
               p.out.size());
  ++whep_total_;
  Reply reply;
  reply.body["sdp"] = answer->sdp;
  reply.body["etag"] = etag_of(p.sub.ufrag);
  return reply;
}

const Orchestrator::Participant* Orchestrator::find_resource(const std::string& id,
                                                             std::string* room) const {
  if (id.empty()) {
    return nullptr;
  }
  for (const auto& [name, r] : rooms_) {
    for (const auto& [key, p] : r.members) {
      if (p.resource == id) {
        if (room != nullptr) {
          *room = name;
        }
        return &p;
      }
    }
  }
  return nullptr;
}

std::optional<Orchestrator::Resource> Orchestrator::resource(const std::string& id) const {
  Resource out;
  const Participant* p = find_resource(id, &out.room);
  if (p == nullptr) {
    return std::nullopt;
  }
  const Peer& peer = p->viewer ? p->sub : p->pub;
  out.member = p->identity;
  out.viewer = p->viewer;
  out.etag = etag_of(peer.ufrag);
  out.remote_ufrag = peer.remote_ufrag;
  return out;
}

Reply Orchestrator::restart_resource(const std::string& id, const std::string& remote_ufrag) {
  std::string room;
  const Participant* held = find_resource(id, &room);
  Room* r = nullptr;
  Participant* p = held != nullptr ? find(room, held->identity, &r) : nullptr;
  auto info = link_.info();
  if (p == nullptr) {
    return Reply::error("not_found", "no such resource");
  }
  if (!info) {
    return Reply::error("media_unavailable", "the data plane is not running; retry shortly", true);
  }
  Peer& peer = p->viewer ? p->sub : p->pub;
  if (!restart_peer(*r, peer)) {
    return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
  }
  peer.remote_ufrag = remote_ufrag;
  // The first bundled section names the candidates (RFC 8840 §9).
  std::string kind = "audio";
  std::string mid = "0";
  if (p->viewer && !p->out.empty()) {
    kind = p->out.front().offered.kind;
    mid = p->out.front().offered.mid;
  } else if (!p->viewer && !p->tracks.empty()) {
    kind = p->tracks.front().desc.kind;
    mid = p->tracks.front().desc.mid;
  }
  Reply reply;
  reply.body["fragment"] = sdp::write_ice_fragment(local_ice(*r, peer, *info), kind, mid);
  reply.body["etag"] = etag_of(peer.ufrag);
  return reply;
}

bool Orchestrator::end_resource(const std::string& id) {
  std::string room;
  const Participant* p = find_resource(id, &room);
  if (p == nullptr) {
    return false;
  }
  std::string member = p->identity;
  bool viewer = p->viewer;
  leave(room, member);
  auto it = rooms_.find(room);
  if (!viewer && it != rooms_.end()) {
    json::object e;
    e["type"] = "participant_left";
    e["room"] = room;
    e["participant"] = member;
    broadcast(room, it->second, member, e);
  }
  return true;
}

std::vector<std::string> Orchestrator::whip_publishers(const std::string& room) const {
  std::vector<std::string> out;
  auto it = rooms_.find(room);
  if (it != rooms_.end()) {
    for (const auto& [key, p] : it->second.members) {
      if (!p.resource.empty() && !p.viewer) {
        out.push_back(key);
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, unsigned>> Orchestrator::resource_rooms() const {
  std::vector<std::pair<std::string, unsigned>> out;
  for (const auto& [name, r] : rooms_) {
    if (std::any_of(r.members.begin(), r.members.end(),
                    [](const auto& m) { return !m.second.resource.empty(); })) {
      out.emplace_back(name, r.worker);
    }
  }
  return out;
}

}  // namespace ringlane::control::media
