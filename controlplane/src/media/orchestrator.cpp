#include "ringlane/controlplane/media/orchestrator.hpp"

#include <algorithm>
#include <utility>

#include "ids.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/shm/media.hpp"

namespace ringlane::control::media {
namespace json = boost::json;

namespace {

shm::Codec codec_of(const std::string& name) {
  return sdp::iequals(name, "opus")   ? shm::Codec::kOpus
         : sdp::iequals(name, "VP8")  ? shm::Codec::kVp8
         : sdp::iequals(name, "VP9")  ? shm::Codec::kVp9
         : sdp::iequals(name, "H264") ? shm::Codec::kH264
         : sdp::iequals(name, "AV1")  ? shm::Codec::kAv1
                                      : shm::Codec::kOther;
}

json::object track_json(const std::string& participant, const std::string& id,
                        const std::string& kind, bool muted, bool screen) {
  json::object o;
  o["participant"] = participant;
  o["track"] = id;
  o["kind"] = kind;
  o["muted"] = muted;
  o["source"] = screen ? "screen" : kind == "video" ? "camera" : "microphone";
  return o;
}

// A screen share's video goes first in every subscriber's bandwidth: above the active speaker's
// (1) and everyone else's (0).
constexpr std::uint8_t kScreenPriority = 2;

}  // namespace

Orchestrator::Orchestrator(Link& link, OrchestratorConfig config, Sender send)
    : link_(link), config_(std::move(config)), send_(std::move(send)) {
  crypto::random_bytes(
      std::span(reinterpret_cast<std::uint8_t*>(&session_counter_), sizeof(session_counter_)));
}

// Ids start at a random point: a restarted control plane that adopts a running data plane does
// not collide with the sessions its predecessor created.
std::uint32_t Orchestrator::next_session() {
  if (++session_counter_ == 0) {
    ++session_counter_;
  }
  return session_counter_;
}

Orchestrator::Participant* Orchestrator::find(const std::string& room, const std::string& identity,
                                              Room** r) {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    return nullptr;
  }
  auto m = it->second.members.find(identity);
  if (m == it->second.members.end()) {
    return nullptr;
  }
  if (r != nullptr) {
    *r = &it->second;
  }
  return &m->second;
}

json::array Orchestrator::join(const std::string& room, unsigned worker,
                               const std::string& identity, bool auto_subscribe) {
  if (const Participant* held = find(room, identity); held != nullptr && !held->resource.empty()) {
    // The identity of a WHIP publisher joins over signaling: the newer wins, and the WHIP
    // resource ends (it is not resumed: its media is the encoder's, not this client's).
    std::string id = held->resource;
    end_resource(id);
  }
  auto [it, fresh] = rooms_.try_emplace(room);
  Room& r = it->second;
  if (fresh) {
    r.worker = worker;
  }
  json::array tracks;
  changed_ = true;
  auto existing = r.members.find(identity);
  if (existing != r.members.end()) {
    // The same participant again (a reconnect, or a new connection replacing the old one):
    // its sessions and tracks go on. An offer that was waiting for an answer is sent anew, as
    // the answer may have been lost with the old connection.
    Participant& p = existing->second;
    p.detached = false;
    ++resumed_;
    if (p.awaiting) {
      p.awaiting = false;
      p.dirty = true;
    }
    for (const auto& [name, other] : r.members) {
      if (name == identity) {
        continue;
      }
      for (const auto& t : other.tracks) {
        tracks.push_back(track_json(name, t.id, t.desc.kind, t.muted, t.screen));
        if (p.auto_subscribe) {
          std::size_t before = p.out.size();
          add_out(p, other, t);
          p.dirty = p.dirty || p.out.size() != before;
        }
      }
    }
    return tracks;
  }
  Participant& p = r.members[identity];
  p.identity = identity;
  p.auto_subscribe = auto_subscribe;
  for (const auto& [name, other] : r.members) {
    if (name == identity) {
      continue;
    }
    for (const auto& t : other.tracks) {
      tracks.push_back(track_json(name, t.id, t.desc.kind, t.muted, t.screen));
      if (auto_subscribe) {
        add_out(p, other, t);
      }
    }
  }
  p.dirty = true;
  return tracks;
}

std::vector<std::pair<std::string, std::string>> Orchestrator::reset() {
  std::vector<std::pair<std::string, std::string>> told;
  std::vector<std::string> resources;
  auto now = std::chrono::steady_clock::now();
  for (auto& [name, r] : rooms_) {
    for (auto& [identity, p] : r.members) {
      p.pub = Peer{};
      p.sub = Peer{};
      p.tracks.clear();
      p.out.clear();
      p.offered.clear();
      p.awaiting = false;
      p.dirty = false;
      p.next_mid = 0;  // the client's next subscriber connection is a new one
      if (!p.resource.empty()) {
        resources.push_back(p.resource);
      } else if (p.detached) {
        p.detached_until = now;
      } else {
        told.emplace_back(name, identity);
      }
    }
  }
  sessions_.clear();
  for (const auto& id : resources) {
    end_resource(id);
  }
  changed_ = true;
  return told;
}

void Orchestrator::start(const std::string& room, const std::string& identity) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p != nullptr && p->dirty) {
    renegotiate(room, *r, *p);
  }
}

void Orchestrator::detach(const std::string& room, const std::string& identity) {
  if (Participant* p = find(room, identity)) {
    p->detached = true;
    p->detached_until = std::chrono::steady_clock::now() + config_.resume_grace;
    changed_ = true;
  }
}

std::vector<std::pair<std::string, std::string>> Orchestrator::expire(
    std::chrono::steady_clock::time_point now) {
  std::vector<std::pair<std::string, std::string>> gone;
  std::vector<std::pair<std::string, std::string>> announced;  // WHEP viewers leave unannounced
  for (const auto& [name, r] : rooms_) {
    for (const auto& [identity, p] : r.members) {
      if (p.detached && now >= p.detached_until) {
        gone.emplace_back(name, identity);
        if (!p.viewer) {
          announced.emplace_back(name, identity);
        }
      }
    }
  }
  for (const auto& [room, identity] : gone) {
    spdlog::info("participant {} of room {} did not come back: its media ends", identity, room);
    leave(room, identity);
  }
  return announced;
}

std::optional<unsigned> Orchestrator::hosted_worker(const std::string& room) const {
  auto it = rooms_.find(room);
  return it == rooms_.end() ? std::nullopt : std::optional<unsigned>(it->second.worker);
}

bool Orchestrator::has_members(const std::string& room) const {
  return rooms_.count(room) != 0;
}

bool Orchestrator::has_participant(const std::string& room, const std::string& identity) const {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    return false;
  }
  auto m = it->second.members.find(identity);
  return m != it->second.members.end() && m->second.resource.empty();
}

void Orchestrator::leave(const std::string& room, const std::string& identity) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return;
  }
  while (!p->tracks.empty()) {
    remove_track(room, *r, *p, p->tracks.back().id);
  }
  for (Peer* peer : {&p->pub, &p->sub}) {
    if (peer->created) {
      if (!link_.push(r->worker, shm::Command::kSessionClose,
                      shm::encode(shm::SessionClose{shm::SessionId{peer->session}}))) {
        ++push_failures_;
      }
      sessions_.erase(session_key(r->worker, peer->session));
    }
  }
  r->members.erase(identity);
  if (r->members.empty()) {
    emptied_.push_back(room);
    rooms_.erase(room);
  }
  changed_ = true;
}

bool Orchestrator::ensure_session(Room& r, Participant& p, Peer& peer, const DataPlaneInfo&,
                                  const std::array<std::uint8_t, shm::kFingerprintBytes>& fp,
                                  bool dtls_client) {
  if (peer.created) {
    return true;
  }
  shm::SessionCreate c;
  c.session = shm::SessionId{peer.session};
  c.dtls_client = dtls_client;
  c.ice_ufrag = peer.ufrag;
  c.ice_pwd = peer.pwd;
  c.remote_fingerprint = fp;
  if (!link_.push(r.worker, shm::Command::kSessionCreate, shm::encode(c))) {
    ++push_failures_;
    return false;
  }
  peer.created = true;
  sessions_[session_key(r.worker, peer.session)] = {std::string(), p.identity};
  return true;
}

sdp::LocalIce Orchestrator::local_ice(const Room& r, const Peer& peer,
                                      const DataPlaneInfo& info) const {
  sdp::LocalIce l;
  l.ufrag = peer.ufrag;
  l.pwd = peer.pwd;
  l.fingerprint = info.fingerprint;
  auto port = static_cast<std::uint16_t>(info.media_port + r.worker);
  for (const auto& ip : config_.candidate_ips) {
    l.candidates.emplace_back(ip.to_string(), port);
  }
  return l;
}

bool Orchestrator::restart_peer(const Room& r, Peer& peer) {
  shm::SessionIceRestart c{shm::SessionId{peer.session}, ice_token(8), ice_token(24)};
  if (!link_.push(r.worker, shm::Command::kSessionIceRestart, shm::encode(c))) {
    ++push_failures_;
    return false;
  }
  peer.ufrag = c.ice_ufrag;
  peer.pwd = c.ice_pwd;
  ++ice_restarts_;
  changed_ = true;
  return true;
}

Reply Orchestrator::restart_ice(const std::string& room, const std::string& identity) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "join a room first");
  }
  if (!p->sub.created) {
    return Reply::error("bad_message", "there is no subscriber connection to restart yet");
  }
  if (!restart_peer(*r, p->sub)) {
    return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
  }
  // The next offer carries the new credentials: now, or once the one outstanding is answered.
  renegotiate(room, *r, *p);
  Reply ok;
  ok.body["type"] = "ice_restarted";
  return ok;
}

Reply Orchestrator::publish(const std::string& room, const std::string& identity,
                            const std::string& text, const signaling::PublishHints& hints) {
  const auto& layers = hints.layers;
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "join a room before publishing");
  }
  auto info = link_.info();
  if (!info) {
    return Reply::error("media_unavailable", "the data plane is not running; retry shortly", true);
  }
  sdp::ParseError perr;
  auto offer = sdp::parse(text, perr);
  std::optional<sdp::PublishAnswer> answer;
  if (offer) {
    if (p->pub.session == 0) {
      p->pub.session = next_session();
      p->pub.ufrag = ice_token(8);
      p->pub.pwd = ice_token(24);
    }
    answer = sdp::answer_publish(*offer, local_ice(*r, p->pub, *info), perr);
  }
  auto fp = answer ? shm::fingerprint_bytes(answer->remote_fingerprint) : std::nullopt;
  if (!answer || !fp) {
    ++sdp_errors_;
    return Reply::error("bad_sdp", answer ? "the offer's fingerprint is not SHA-256" : perr.reason);
  }
  if (p->pub.created && answer->remote_ufrag != p->pub.remote_ufrag) {
    // An ICE restart (RFC 8445 §9.1.1.1: new credentials in a re-offer): the session and its
    // tracks stay; the answer carries our new credentials too (RFC 8839 §4.4.1.1.1).
    if (!restart_peer(*r, p->pub)) {
      return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
    }
    answer = sdp::answer_publish(*offer, local_ice(*r, p->pub, *info), perr);
    if (!answer) {
      ++sdp_errors_;
      return Reply::error("bad_sdp", perr.reason);
    }
  }
  if (!ensure_session(*r, *p, p->pub, *info, *fp, answer->remote_setup == "passive")) {
    return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
  }
  p->pub.remote_ufrag = answer->remote_ufrag;
  ++publishes_;
  changed_ = true;
  // A simulcast track has no SSRC in the SDP: its name on the data plane is a number chosen
  // here, kept across re-offers that send the same rids in the same section.
  for (auto& a : answer->tracks) {
    if (a.ssrc != 0 || a.rids.empty()) {
      continue;
    }
    auto kept = std::find_if(p->tracks.begin(), p->tracks.end(), [&](const PubTrack& t) {
      return t.desc.mid == a.mid && t.desc.rids == a.rids;
    });
    a.ssrc = kept != p->tracks.end() ? kept->desc.ssrc : random_ssrc();
  }
  // Tracks by mid: kept when unchanged, replaced when the SSRC changed, removed when gone.
  std::vector<std::string> gone;
  for (const auto& t : p->tracks) {
    auto now = std::find_if(answer->tracks.begin(), answer->tracks.end(),
                            [&](const sdp::PublishedTrack& a) { return a.mid == t.desc.mid; });
    if (now == answer->tracks.end() || now->ssrc != t.desc.ssrc) {
      gone.push_back(t.id);
    }
  }
  for (const auto& id : gone) {
    remove_track(room, *r, *p, id);
  }
  json::array listed;
  for (const auto& a : answer->tracks) {
    auto kept = std::find_if(p->tracks.begin(), p->tracks.end(),
                             [&](const PubTrack& t) { return t.desc.mid == a.mid; });
    auto sized = std::find_if(layers.begin(), layers.end(),
                              [&](const signaling::SectionLayers& l) { return l.mid == a.mid; });
    if (kept != p->tracks.end()) {
      if (sized != layers.end() && sized->sizes != kept->sizes) {
        // The publisher's layers changed size (a new camera): the subscribers' rendered sizes
        // map anew.
        kept->sizes = sized->sizes;
        for (auto& [name, other] : r->members) {
          for (const auto& o : other.out) {
            if (o.publisher == identity && o.track_id == kept->id && o.routed && o.rendered) {
              push_layer(*r, other, o);
            }
          }
        }
      }
      json::object o;
      o["track"] = kept->id;
      o["mid"] = a.mid;
      o["kind"] = a.kind;
      listed.push_back(std::move(o));
      continue;
    }
    PubTrack t;
    t.id = "TR_" + ice_token(12);
    t.desc = a;
    t.order = ++publish_counter_;
    if (sized != layers.end() && a.kind == "video") {
      t.sizes = sized->sizes;
    }
    t.screen = a.kind == "video" &&
               std::find(hints.screen.begin(), hints.screen.end(), a.mid) != hints.screen.end();
    if (a.ssrc != 0) {
      shm::TrackAdd add;
      add.session = shm::SessionId{p->pub.session};
      add.ssrc = a.ssrc;
      add.rtx_ssrc = a.rtx_ssrc;
      add.kind = a.kind == "video" ? shm::MediaKind::kVideo : shm::MediaKind::kAudio;
      add.payload_type = a.codec.pt;
      add.rtx_payload_type = a.rtx_pt.value_or(0);
      add.clock_rate = a.codec.clock;
      add.codec = codec_of(a.codec.name);
      add.rids = a.rids;
      add.mid = a.mid.substr(0, shm::kMaxMid);
      add.red_payload_type = a.red_pt.value_or(0);
      for (const auto& e : a.extensions) {
        std::uint8_t id = e.id <= 14 ? static_cast<std::uint8_t>(e.id) : 0;
        if (e.uri == sdp::kRidUri) {
          add.rid_extension = id;
        } else if (e.uri == sdp::kRepairedRidUri) {
          add.repaired_rid_extension = id;
        } else if (e.uri == sdp::kTransportCcUri) {
          add.transport_cc_extension = id;
        } else if (e.uri == sdp::kMidUri) {
          add.mid_extension = id;
        } else if (e.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level") {
          add.audio_level_extension = id;
        } else if (e.uri == sdp::kDependencyDescriptorUri) {
          add.dependency_descriptor_extension = id;
        }
      }
      // REMB where the answer took goog-remb (negotiate.cpp: only without transport-cc).
      add.remb = add.transport_cc_extension == 0 &&
                 std::find(a.codec.rtcp_fb.begin(), a.codec.rtcp_fb.end(), "goog-remb") !=
                     a.codec.rtcp_fb.end();
      if (!link_.push(r->worker, shm::Command::kTrackAdd, shm::encode(add))) {
        ++push_failures_;
        continue;
      }
      shm::TrackPriority first{add.session, add.ssrc, kScreenPriority};
      if (t.screen && !link_.push(r->worker, shm::Command::kTrackPriority, shm::encode(first))) {
        ++push_failures_;
      }
    }
    json::object o;
    o["track"] = t.id;
    o["mid"] = a.mid;
    o["kind"] = a.kind;
    listed.push_back(std::move(o));
    p->tracks.push_back(t);
    broadcast(room, *r, identity, [&] {
      json::object e = track_json(identity, t.id, a.kind, false, t.screen);
      e["type"] = "track_published";
      return e;
    }());
    for (auto& [name, other] : r->members) {
      if (name != identity && other.auto_subscribe && a.ssrc != 0) {
        add_out(other, *p, t);
        renegotiate(room, *r, other);
      }
    }
  }
  Reply reply;
  reply.body["type"] = "answer";
  reply.body["sdp"] = answer->sdp;
  reply.body["tracks"] = std::move(listed);
  return reply;
}

void Orchestrator::add_out(Participant& subscriber, const Participant& publisher,
                           const PubTrack& t) {
  for (const auto& o : subscriber.out) {
    if (o.track_id == t.id && o.offered.active) {
      return;
    }
  }
  auto codec = sdp::subscriber_codec(t.desc.codec);
  if (!codec || t.desc.ssrc == 0) {
    return;
  }
  OutTrack o;
  o.publisher = publisher.identity;
  o.track_id = t.id;
  o.offered.mid = std::to_string(subscriber.next_mid++);
  o.offered.kind = t.desc.kind;
  o.offered.codec = *codec;
  if (t.desc.red_pt) {
    o.offered.red_pt = sdp::kSubscriberRedPt;  // RFC 2198: kept if the answer keeps it
  }
  o.offered.ssrc = random_ssrc();
  // A simulcast track names no RTX SSRC in the SDP (its layers' come with repaired-rid), but
  // has RTX as much as a plain one; the subscriber's RTX stream also carries the probes' padding.
  if (t.desc.rtx_pt && (t.desc.rtx_ssrc != 0 || !t.desc.rids.empty())) {
    o.offered.rtx_pt = sdp::subscriber_rtx_pt(codec->name);
    if (o.offered.rtx_pt) {
      o.offered.rtx_ssrc = random_ssrc();
    }
  }
  // The stream is the publisher: the browser groups a participant's audio and video into one
  // MediaStream (and syncs them through the shared cname).
  o.offered.cname = publisher.identity;
  o.offered.msid_stream = publisher.identity;
  o.offered.msid_track = t.id;
  for (const auto& e : t.desc.extensions) {
    if (auto id = sdp::subscriber_extension_id(e.uri)) {
      sdp::Extension x;
      x.id = *id;
      x.uri = e.uri;
      o.offered.extensions.push_back(std::move(x));
    }
  }
  subscriber.out.push_back(std::move(o));
}

void Orchestrator::renegotiate(const std::string& room, Room& r, Participant& p) {
  // A WHEP viewer is never renegotiated (no server offers): its sections go quiet instead.
  if (p.out.empty() || p.viewer) {
    return;
  }
  if (p.awaiting) {
    p.dirty = true;  // one offer at a time: the next goes out when this one is answered
    return;
  }
  auto info = link_.info();
  if (!info) {
    p.dirty = true;
    return;
  }
  if (p.sub.session == 0) {
    p.sub.session = next_session();
    p.sub.ufrag = ice_token(8);
    p.sub.pwd = ice_token(24);
  }
  // Created before the browser answers, so its first checks find the session; the client's
  // fingerprint and DTLS role follow with the answer (kSessionRemote).
  if (!ensure_session(r, p, p.sub, *info, {}, false)) {
    p.dirty = true;
    return;
  }
  p.offered.clear();
  for (const auto& o : p.out) {
    p.offered.push_back(o.offered);
  }
  std::string text = sdp::offer_subscribe(p.offered, local_ice(r, p.sub, *info), ++p.version,
                                          std::to_string(p.sub.session));
  p.awaiting = true;
  p.dirty = false;
  ++offers_;
  changed_ = true;
  json::object o;
  o["type"] = "offer";
  o["seq"] = ++p.seq;
  o["sdp"] = text;
  send_(room, p.identity, json::serialize(o));
}

Reply Orchestrator::answer(const std::string& room, const std::string& identity, std::uint64_t seq,
                           const std::string& text) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  if (!p->awaiting || seq != p->seq) {
    return Reply::error("bad_message",
                        "no offer with seq " + std::to_string(seq) + " awaits an answer");
  }
  sdp::ParseError perr;
  auto parsed = sdp::parse(text, perr);
  auto a = parsed ? sdp::read_subscribe_answer(*parsed, p->offered, perr) : std::nullopt;
  auto fp = a ? shm::fingerprint_bytes(a->remote_fingerprint) : std::nullopt;
  if (!a || !fp) {
    ++sdp_errors_;
    return Reply::error("bad_sdp", a ? "the answer's fingerprint is not SHA-256" : perr.reason);
  }
  ++answers_;
  p->awaiting = false;
  changed_ = true;
  if (!p->sub.remote_set) {
    shm::SessionRemote remote{shm::SessionId{p->sub.session}, a->remote_setup == "passive", *fp};
    if (!link_.push(r->worker, shm::Command::kSessionRemote, shm::encode(remote))) {
      ++push_failures_;
      return Reply::error("media_busy", "the data plane's command ring is full; retry", true);
    }
    p->sub.remote_set = true;
  }
  for (auto& o : p->out) {
    bool accepted = std::find(a->accepted_mids.begin(), a->accepted_mids.end(), o.offered.mid) !=
                    a->accepted_mids.end();
    if (o.offered.active && accepted && !o.routed) {
      // Publisher id -> the id the subscriber kept for the same URI; anything else is removed.
      const std::vector<sdp::Extension>* kept = nullptr;
      for (const auto& [mid, list] : a->extensions) {
        if (mid == o.offered.mid) {
          kept = &list;
        }
      }
      // An answer without our RED format gets plain Opus (the SFU strips RED, RFC 2198).
      if (std::find(a->red_mids.begin(), a->red_mids.end(), o.offered.mid) == a->red_mids.end()) {
        o.offered.red_pt.reset();
      }
      route(room, *r, *p, o, kept);
    } else if ((!o.offered.active || !accepted) && o.routed) {
      if (link_.push(
              r->worker, shm::Command::kUnsubscribe,
              shm::encode(shm::Unsubscribe{shm::SessionId{p->sub.session}, o.offered.ssrc}))) {
        o.routed = false;
      } else {
        ++push_failures_;
      }
    }
  }
  if (p->dirty) {
    renegotiate(room, *r, *p);
  }
  return {};
}

bool Orchestrator::route(const std::string& room, Room& r, Participant& p, OutTrack& o,
                         const std::vector<sdp::Extension>* ids) {
  Participant* pub = find(room, o.publisher);
  if (pub == nullptr) {
    return true;
  }
  auto t = std::find_if(pub->tracks.begin(), pub->tracks.end(),
                        [&](const PubTrack& x) { return x.id == o.track_id; });
  if (t == pub->tracks.end()) {
    return true;
  }
  shm::Subscribe s;
  s.subscriber = shm::SessionId{p.sub.session};
  s.publisher = shm::SessionId{pub->pub.session};
  s.publisher_ssrc = t->desc.ssrc;
  s.ssrc = o.offered.ssrc;
  s.rtx_ssrc = o.offered.rtx_ssrc;
  s.payload_type = o.offered.codec.pt;
  s.rtx_payload_type = o.offered.rtx_pt.value_or(0);
  s.red_payload_type = o.offered.red_pt.value_or(0);
  for (const auto& e : t->desc.extensions) {
    if (ids == nullptr || e.id >= shm::kExtensionMap) {
      continue;
    }
    for (const auto& k : *ids) {
      if (k.uri == e.uri && k.id < 15) {
        s.extensions[e.id] = k.id;
      }
    }
  }
  if (ids != nullptr) {
    for (const auto& k : *ids) {
      if (k.uri == sdp::kTransportCcUri && k.id >= 1 && k.id <= 14) {
        s.transport_cc_extension = static_cast<std::uint8_t>(k.id);
      }
    }
  }
  if (!link_.push(r.worker, shm::Command::kSubscribe, shm::encode(s))) {
    ++push_failures_;
    return false;
  }
  o.routed = true;
  if (o.max_spatial != 2 || o.paused || o.max_temporal != shm::RouteLayer::kAllTemporal ||
      o.rendered) {
    push_layer(r, p, o);
  }
  return true;
}

std::uint8_t spatial_for_size(const std::vector<signaling::LayerSize>& sizes, std::uint32_t width,
                              std::uint32_t height) {
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i].width >= width && sizes[i].height >= height) {
      return static_cast<std::uint8_t>(i);
    }
  }
  return static_cast<std::uint8_t>(sizes.empty() ? 2 : sizes.size() - 1);
}

Orchestrator::Wanted Orchestrator::wanted(const Room& r, const OutTrack& o) const {
  Wanted w{o.max_spatial, o.paused};
  if (!o.rendered) {
    return w;
  }
  if (o.render_width == 0 || o.render_height == 0) {
    w.paused = true;  // not shown
    return w;
  }
  auto pub = r.members.find(o.publisher);
  if (pub == r.members.end()) {
    return w;
  }
  for (const auto& t : pub->second.tracks) {
    if (t.id == o.track_id && !t.sizes.empty()) {
      w.spatial = std::min(w.spatial, spatial_for_size(t.sizes, o.render_width, o.render_height));
    }
  }
  return w;
}

void Orchestrator::push_layer(Room& r, const Participant& p, const OutTrack& o) {
  Wanted w = wanted(r, o);
  shm::RouteLayer m;
  m.subscriber = shm::SessionId{p.sub.session};
  m.ssrc = o.offered.ssrc;
  m.max_spatial = w.spatial;
  m.paused = w.paused;
  m.max_temporal = o.max_temporal;
  if (!link_.push(r.worker, shm::Command::kRouteLayer, shm::encode(m))) {
    ++push_failures_;
  }
}

Reply Orchestrator::layer(const std::string& room, const std::string& identity,
                          const std::string& track, std::uint64_t spatial, bool paused,
                          std::optional<std::uint64_t> temporal) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  for (auto& o : p->out) {
    if (o.track_id == track && o.offered.active) {
      o.max_spatial = static_cast<std::uint8_t>(std::min<std::uint64_t>(spatial, 2));
      o.paused = paused;
      // Without `temporal` (a client from before it): every temporal layer, as before.
      o.max_temporal = temporal ? static_cast<std::uint8_t>(std::min<std::uint64_t>(*temporal, 2))
                                : shm::RouteLayer::kAllTemporal;
      if (o.routed) {
        push_layer(*r, *p, o);
      }
      Reply ok;
      ok.body["type"] = "layer";
      ok.body["track"] = track;
      ok.body["spatial"] = o.max_spatial;
      if (temporal) {
        ok.body["temporal"] = o.max_temporal;
      }
      ok.body["paused"] = paused;
      return ok;
    }
  }
  return Reply::error("unknown_track", "not receiving a track \"" + track + "\"");
}

Reply Orchestrator::render_size(const std::string& room, const std::string& identity,
                                const std::string& track, std::uint32_t width,
                                std::uint32_t height) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  for (auto& o : p->out) {
    if (o.track_id == track && o.offered.active) {
      bool changed = !o.rendered || o.render_width != width || o.render_height != height;
      o.rendered = true;
      o.render_width = width;
      o.render_height = height;
      if (o.routed && changed) {
        push_layer(*r, *p, o);
      }
      Wanted w = wanted(*r, o);
      Reply ok;
      ok.body["type"] = "layer";
      ok.body["track"] = track;
      ok.body["width"] = width;
      ok.body["height"] = height;
      ok.body["spatial"] = w.spatial;  // what the wish and the size allow together
      ok.body["paused"] = w.paused;
      return ok;
    }
  }
  return Reply::error("unknown_track", "not receiving a track \"" + track + "\"");
}

void Orchestrator::remove_track(const std::string& room, Room& r, Participant& p,
                                const std::string& id) {
  auto it =
      std::find_if(p.tracks.begin(), p.tracks.end(), [&](const PubTrack& t) { return t.id == id; });
  if (it == p.tracks.end()) {
    return;
  }
  if (it->desc.ssrc != 0 &&
      !link_.push(r.worker, shm::Command::kTrackRemove,
                  shm::encode(shm::TrackRemove{shm::SessionId{p.pub.session}, it->desc.ssrc}))) {
    ++push_failures_;
  }
  p.tracks.erase(it);
  changed_ = true;
  json::object e;
  e["type"] = "track_unpublished";
  e["participant"] = p.identity;
  e["track"] = id;
  broadcast(room, r, p.identity, e);
  // The worker dropped the routes with the track; subscribers get the m-line made inactive.
  for (auto& [name, other] : r.members) {
    bool touched = false;
    for (auto& o : other.out) {
      if (o.track_id == id && o.offered.active) {
        o.offered.active = false;
        o.routed = false;
        touched = true;
      }
    }
    if (touched) {
      renegotiate(room, r, other);
    }
  }
}

Reply Orchestrator::unpublish(const std::string& room, const std::string& identity,
                              const std::string& track) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  if (!track.empty() && std::none_of(p->tracks.begin(), p->tracks.end(),
                                     [&](const PubTrack& t) { return t.id == track; })) {
    return Reply::error("unknown_track", "no published track \"" + track + "\"");
  }
  std::vector<std::string> ids;
  for (const auto& t : p->tracks) {
    if (track.empty() || t.id == track) {
      ids.push_back(t.id);
    }
  }
  for (const auto& id : ids) {
    remove_track(room, *r, *p, id);
  }
  Reply reply;
  reply.body["type"] = "unpublished";
  return reply;
}

Reply Orchestrator::mute(const std::string& room, const std::string& identity,
                         const std::string& track, bool muted) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  for (auto& t : p->tracks) {
    if (t.id == track) {
      t.muted = muted;
      changed_ = true;
      json::object e = track_json(identity, t.id, t.desc.kind, muted, t.screen);
      e["type"] = "track_muted";
      broadcast(room, *r, identity, e);
      return {};
    }
  }
  return Reply::error("unknown_track", "no published track \"" + track + "\"");
}

Reply Orchestrator::subscribe(const std::string& room, const std::string& identity,
                              const std::string& participant, const std::string& track) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  json::array added;
  for (const auto& [name, other] : r->members) {
    if (name == identity || (!participant.empty() && name != participant)) {
      continue;
    }
    for (const auto& t : other.tracks) {
      if (track.empty() || t.id == track) {
        std::size_t before = p->out.size();
        add_out(*p, other, t);
        if (p->out.size() > before) {
          added.push_back(json::value(t.id));
        }
      }
    }
  }
  if (added.empty() && (!participant.empty() || !track.empty())) {
    return Reply::error("unknown_track", "nothing published matches");
  }
  renegotiate(room, *r, *p);
  Reply reply;
  reply.body["type"] = "subscribed";
  reply.body["tracks"] = std::move(added);
  return reply;
}

Reply Orchestrator::unsubscribe(const std::string& room, const std::string& identity,
                                const std::string& track) {
  Room* r = nullptr;
  Participant* p = find(room, identity, &r);
  if (p == nullptr) {
    return Reply::error("not_joined", "not in a room");
  }
  bool found = false;
  for (auto& o : p->out) {
    if (o.track_id == track && o.offered.active) {
      o.offered.active = false;
      found = true;
      if (o.routed && link_.push(r->worker, shm::Command::kUnsubscribe,
                                 shm::encode(shm::Unsubscribe{shm::SessionId{p->sub.session},
                                                              o.offered.ssrc}))) {
        o.routed = false;
      }
    }
  }
  if (!found) {
    return Reply::error("unknown_track", "not subscribed to \"" + track + "\"");
  }
  renegotiate(room, *r, *p);
  Reply reply;
  reply.body["type"] = "unsubscribed";
  return reply;
}

void Orchestrator::broadcast(const std::string& room, const Room& r, const std::string& except,
                             const json::object& event) {
  std::string text = json::serialize(event);
  for (const auto& [name, p] : r.members) {
    // WHIP/WHEP participants have no connection to hear it.
    if (name != except && p.resource.empty()) {
      send_(room, name, text);
    }
  }
}

void Orchestrator::on_session_event(unsigned worker, std::span<const std::uint8_t> payload) {
  auto e = shm::decode_session_event(payload);
  if (!e) {
    return;
  }
  static const char* const kNames[] = {"", "ice_connected", "dtls_connected", "failed", "closed"};
  const char* name = kNames[static_cast<int>(e->state)];
  ++session_events_[name];
  auto it = sessions_.find(session_key(worker, e->session.value));
  if (it == sessions_.end()) {
    return;
  }
  spdlog::debug("worker {} session {} ({}): {} after {} ms", worker, e->session.value,
                it->second.second, name, e->elapsed_ms);
  if (e->state == shm::SessionState::kClosed || e->state == shm::SessionState::kFailed) {
    spdlog::info("worker {} session {} of {}: {}", worker, e->session.value, it->second.second,
                 name);
    // A WHIP/WHEP client has no WebSocket to say it left: its session's end is its end, carried
    // out (and announced) by the next expire().
    Participant* p = find(it->second.first, it->second.second);
    if (p != nullptr && !p->resource.empty() && !p->detached) {
      p->detached = true;
      p->detached_until = std::chrono::steady_clock::now();
    }
  }
}

void Orchestrator::on_route_report(unsigned worker, std::span<const std::uint8_t> payload) {
  auto r = shm::decode_route_report(payload);
  if (!r) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  route_stats_[{session_key(worker, r->subscriber.value), r->ssrc}] = RouteStat{*r, now};
  // Reports of routes that ended stop coming: forget what is older than a few intervals.
  if (++route_reports_ % 256 == 0) {
    std::erase_if(route_stats_, [&](const auto& kv) { return now - kv.second.at > kRouteStale; });
  }
}

void Orchestrator::on_audio_levels(unsigned worker, std::span<const std::uint8_t> payload) {
  // Loudness 0-127 (127 - RFC 6464 level; the peak of each 300 ms report). Speech sits around
  // 90-110 (-37 to -17 dBov); a muted or silent microphone near 0. A participant speaks while
  // a report was this loud in the last kHold (the pauses between words do not end it), ranked
  // by the smoothed loudness.
  constexpr double kSpeaking = 60;
  constexpr double kSmoothing = 0.5;
  constexpr auto kHold = std::chrono::milliseconds(1500);
  constexpr auto kMinInterval = std::chrono::milliseconds(300);
  auto m = shm::decode_audio_levels(payload);
  if (!m) {
    return;
  }
  std::vector<std::string> rooms;
  auto now = std::chrono::steady_clock::now();
  for (const shm::AudioLevel& l : m->tracks) {
    std::uint64_t key = session_key(worker, l.publisher.value);
    Loudness& v = loudness_[key];
    v.smoothed = kSmoothing * v.smoothed + (1 - kSmoothing) * l.level;
    if (l.level >= kSpeaking) {
      v.loud_at = now;
    }
    for (const auto& [name, r] : rooms_) {
      if (r.worker != worker) {
        continue;
      }
      for (const auto& [identity, p] : r.members) {
        if (p.pub.session == l.publisher.value &&
            std::find(rooms.begin(), rooms.end(), name) == rooms.end()) {
          rooms.push_back(name);
        }
      }
    }
  }
  for (const auto& name : rooms) {
    Room& r = rooms_.at(name);
    std::vector<std::pair<double, std::string>> loud;
    for (const auto& [identity, p] : r.members) {
      auto it = p.pub.session != 0 ? loudness_.find(session_key(r.worker, p.pub.session))
                                   : loudness_.end();
      if (it != loudness_.end() && now - it->second.loud_at < kHold) {
        loud.emplace_back(it->second.smoothed, identity);
      }
    }
    std::sort(loud.begin(), loud.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<std::string> order;
    for (const auto& [level, identity] : loud) {
      order.push_back(identity);
    }
    Speakers& s = speakers_[name];
    if (order == s.order || now - s.told < kMinInterval) {
      continue;
    }
    s.order = order;
    s.told = now;
    json::object e;
    e["type"] = "speakers";
    e["room"] = name;
    json::array list;
    for (const auto& [level, identity] : loud) {
      json::object o;
      o["participant"] = identity;
      o["level"] = static_cast<int>(level);
      list.push_back(std::move(o));
    }
    e["speakers"] = std::move(list);
    broadcast(name, r, std::string(), e);
    // The loudest keeps its video first in the allocation until another is louder.
    if (!order.empty() && order.front() != s.prioritized) {
      if (!s.prioritized.empty()) {
        set_priority(r, s.prioritized, 0);
      }
      set_priority(r, order.front(), 1);
      s.prioritized = order.front();
    }
  }
}

void Orchestrator::on_layers_active(unsigned worker, std::span<const std::uint8_t> payload) {
  auto m = shm::decode_layers_active(payload);
  if (!m) {
    return;
  }
  for (auto& [name, r] : rooms_) {
    if (r.worker != worker) {
      continue;
    }
    for (auto& [identity, p] : r.members) {
      if (p.pub.session != m->publisher.value) {
        continue;
      }
      for (const auto& t : p.tracks) {
        if (t.desc.ssrc != m->ssrc || !p.resource.empty()) {
          continue;  // a WHIP publisher has no connection to be told on
        }
        json::object e;
        e["type"] = "layers";
        e["track"] = t.id;
        if (t.desc.rids.empty()) {
          // Layers inside one stream (SVC): the highest spatial layer to encode.
          int spatial = 0;
          while (spatial < 7 && ((m->mask >> (spatial + 1)) & 1u) != 0) {
            ++spatial;
          }
          e["spatial"] = spatial;
          send_(name, identity, json::serialize(e));
          ++dynacast_told_;
          continue;
        }
        json::array active;
        for (std::size_t i = 0; i < t.desc.rids.size(); ++i) {
          if ((m->mask >> i) & 1u) {
            active.emplace_back(t.desc.rids[i]);
          }
        }
        e["active"] = std::move(active);
        send_(name, identity, json::serialize(e));
        ++dynacast_told_;
      }
      return;
    }
  }
}

void Orchestrator::set_priority(Room& r, const std::string& identity, std::uint8_t priority) {
  auto it = r.members.find(identity);
  if (it == r.members.end() || it->second.pub.session == 0) {
    return;
  }
  for (const auto& t : it->second.tracks) {
    if (t.desc.kind != "video" || t.desc.ssrc == 0 || t.screen) {
      continue;  // a screen share keeps kScreenPriority
    }
    shm::TrackPriority m{shm::SessionId{it->second.pub.session}, t.desc.ssrc, priority};
    if (!link_.push(r.worker, shm::Command::kTrackPriority, shm::encode(m))) {
      ++push_failures_;
    }
  }
}

namespace {

// Prometheus label values (text format): backslash, double quote and line feed escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

double p95(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[(v.size() * 95 + 99) / 100 - 1];
}

}  // namespace

// Per subscriber and track, from the workers' RouteReports: the layer, bitrate, frame rate,
// layer changes, freezes, loss and jitter the subscriber reports, and its transport's estimate
// and round trip; then the quality KPIs over every route.
std::string Orchestrator::quality_metrics() const {
  auto now = std::chrono::steady_clock::now();
  std::string layer = "# TYPE ringlane_sfu_route_layer gauge\n";
  std::string target = "# TYPE ringlane_sfu_route_layer_target gauge\n";
  std::string temporal = "# TYPE ringlane_sfu_route_temporal_layer gauge\n";
  std::string temporal_target = "# TYPE ringlane_sfu_route_temporal_layer_target gauge\n";
  std::string bitrate = "# TYPE ringlane_sfu_route_bitrate_bps gauge\n";
  std::string fps = "# TYPE ringlane_sfu_route_frame_rate gauge\n";
  std::string switches = "# TYPE ringlane_sfu_route_layer_switches_total counter\n";
  std::string freezes = "# TYPE ringlane_sfu_route_freezes_total counter\n";
  std::string loss = "# TYPE ringlane_sfu_route_loss_fraction gauge\n";
  std::string jitter = "# TYPE ringlane_sfu_route_jitter_ms gauge\n";
  std::string estimate = "# TYPE ringlane_sfu_subscriber_estimate_bps gauge\n";
  std::string rtt = "# TYPE ringlane_sfu_subscriber_rtt_ms gauge\n";
  std::vector<double> video_bitrates;
  std::vector<double> video_fps;
  std::vector<double> audio_loss;
  std::vector<double> latency;
  for (const auto& [room, r] : rooms_) {
    for (const auto& [identity, p] : r.members) {
      if (p.sub.session == 0) {
        continue;
      }
      std::uint64_t key = session_key(r.worker, p.sub.session);
      const shm::RouteReport* any = nullptr;
      for (const auto& o : p.out) {
        auto it = route_stats_.find({key, o.offered.ssrc});
        if (!o.offered.active || it == route_stats_.end() || now - it->second.at > kRouteStale) {
          continue;
        }
        const shm::RouteReport& m = it->second.report;
        any = &m;
        std::string l = "{room=\"" + room + "\",participant=\"" + label(identity) +
                        "\",publisher=\"" + label(o.publisher) + "\",track=\"" + o.track_id +
                        "\",kind=\"" + o.offered.kind + "\"} ";
        bitrate += "ringlane_sfu_route_bitrate_bps" + l + std::to_string(m.bitrate_bps) + "\n";
        loss +=
            "ringlane_sfu_route_loss_fraction" + l + std::to_string(m.fraction_lost / 256.0) + "\n";
        jitter += "ringlane_sfu_route_jitter_ms" + l + std::to_string(m.jitter_ms) + "\n";
        double one_way = m.rtt_ms / 2.0 + m.jitter_ms;
        latency.push_back(one_way);
        if (m.kind == shm::MediaKind::kVideo) {
          fps += "ringlane_sfu_route_frame_rate" + l + std::to_string(m.frame_rate_milli / 1000.0) +
                 "\n";
          freezes += "ringlane_sfu_route_freezes_total" + l + std::to_string(m.freezes) + "\n";
          video_bitrates.push_back(m.bitrate_bps);
          video_fps.push_back(m.frame_rate_milli / 1000.0);
          if (m.target != 0xFF) {
            // The layer sent now (simulcast, or VP9's spatial layer; -1 while waiting for the
            // first keyframe), the allocation's, and the switches: down and up for the
            // bandwidth, by the subscriber's wish, and those made at a keyframe they waited for.
            layer += "ringlane_sfu_route_layer" + l +
                     (m.layer == 0xFF ? std::string("-1") : std::to_string(m.layer)) + "\n";
            target += "ringlane_sfu_route_layer_target" + l + std::to_string(m.target) + "\n";
            std::string base = l.substr(0, l.size() - 2);
            for (auto [reason, n] : {std::pair{"down", m.layer_downs}, std::pair{"up", m.layer_ups},
                                     std::pair{"preference", m.preference_changes},
                                     std::pair{"keyframe_wait", m.keyframe_switches}}) {
              switches += "ringlane_sfu_route_layer_switches_total" + base + ",reason=\"" + reason +
                          "\"} " + std::to_string(n) + "\n";
            }
          }
          if (m.temporal != 0xFF) {
            temporal += "ringlane_sfu_route_temporal_layer" + l + std::to_string(m.temporal) + "\n";
            temporal_target += "ringlane_sfu_route_temporal_layer_target" + l +
                               std::to_string(m.temporal_target) + "\n";
          }
        } else {
          audio_loss.push_back(m.fraction_lost / 256.0);
        }
      }
      if (any != nullptr) {
        std::string l = "{room=\"" + room + "\",participant=\"" + label(identity) + "\"} ";
        if (any->estimate_bps != 0) {
          estimate +=
              "ringlane_sfu_subscriber_estimate_bps" + l + std::to_string(any->estimate_bps) + "\n";
        }
        if (any->rtt_ms != 0) {
          rtt += "ringlane_sfu_subscriber_rtt_ms" + l + std::to_string(any->rtt_ms) + "\n";
        }
      }
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) {
      sum += x;
    }
    return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
  };
  std::string kpi;
  auto gauge = [&](const char* name, const char* help, double v) {
    kpi += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           " " + std::to_string(v) + "\n";
  };
  gauge("video_bitrate_avg", "mean bitrate (bit/s) of the video routes to subscribers",
        mean(video_bitrates));
  gauge("video_frame_rate_avg", "mean frame rate of the video routes to subscribers",
        mean(video_fps));
  gauge("audio_packet_loss_p95",
        "95th percentile of the loss fraction subscribers report for audio", p95(audio_loss));
  gauge("end_to_end_latency_p95",
        "95th percentile over routes of a one-way estimate (ms): half the subscriber's round trip "
        "plus the jitter it reports",
        p95(latency));
  return layer + target + temporal + temporal_target + bitrate + fps + switches + freezes + loss +
         jitter + estimate + rtt + kpi;
}

std::string Orchestrator::metrics() const {
  std::uint64_t publishers = 0;
  std::uint64_t subscribers = 0;
  std::uint64_t tracks = 0;
  for (const auto& [name, r] : rooms_) {
    for (const auto& [id, p] : r.members) {
      publishers += p.pub.created ? 1 : 0;
      subscribers += p.sub.created ? 1 : 0;
      tracks += p.tracks.size();
    }
  }
  std::string out;
  // Per room and worker (room names are 1-128 of [A-Za-z0-9_.:-]: safe as label values).
  std::string per_room = "# TYPE ringlane_sfu_room_participants gauge\n";
  std::string per_room_tracks = "# TYPE ringlane_sfu_room_tracks gauge\n";
  for (const auto& [name, r] : rooms_) {
    std::size_t n = 0;
    for (const auto& [id, p] : r.members) {
      n += p.tracks.size();
    }
    std::string labels = "{room=\"" + name + "\",worker=\"" + std::to_string(r.worker) + "\"} ";
    per_room += "ringlane_sfu_room_participants" + labels + std::to_string(r.members.size()) + "\n";
    per_room_tracks += "ringlane_sfu_room_tracks" + labels + std::to_string(n) + "\n";
  }
  out += per_room + per_room_tracks;
  auto line = [&](const char* metric, const char* type, std::uint64_t v) {
    out += std::string("# TYPE ") + metric + " " + type + "\n" + metric + " " + std::to_string(v) +
           "\n";
  };
  line("ringlane_sfu_rooms", "gauge", rooms_.size());
  line("ringlane_sfu_publishers", "gauge", publishers);
  line("ringlane_sfu_subscribers", "gauge", subscribers);
  line("ringlane_sfu_published_tracks", "gauge", tracks);
  line("ringlane_sfu_publishes_total", "counter", publishes_);
  line("ringlane_sfu_offers_total", "counter", offers_);
  line("ringlane_sfu_answers_total", "counter", answers_);
  line("ringlane_sfu_sdp_errors_total", "counter", sdp_errors_);
  line("ringlane_sfu_command_push_failures_total", "counter", push_failures_);
  line("ringlane_sfu_resumed_total", "counter", resumed_);
  line("ringlane_sfu_dynacast_told_total", "counter", dynacast_told_);
  line("ringlane_sfu_ice_restarts_total", "counter", ice_restarts_);
  line("ringlane_sfu_restored_participants_total", "counter", restored_);
  std::uint64_t whip = 0;
  std::uint64_t whep = 0;
  for (const auto& [name, r] : rooms_) {
    for (const auto& [id, p] : r.members) {
      whip += !p.resource.empty() && !p.viewer ? 1 : 0;
      whep += p.viewer ? 1 : 0;
    }
  }
  line("ringlane_sfu_whip_resources", "gauge", whip);
  line("ringlane_sfu_whep_resources", "gauge", whep);
  line("ringlane_sfu_whip_created_total", "counter", whip_total_);
  line("ringlane_sfu_whep_created_total", "counter", whep_total_);
  out += "# TYPE ringlane_sfu_session_events_total counter\n";
  for (const auto& [state, n] : session_events_) {
    out += "ringlane_sfu_session_events_total{state=\"" + state + "\"} " + std::to_string(n) + "\n";
  }
  return out + quality_metrics();
}

}  // namespace ringlane::control::media
