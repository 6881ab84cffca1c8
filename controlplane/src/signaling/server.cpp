#include "ringlane/controlplane/signaling/server.hpp"

#include <boost/json.hpp>

#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/controlplane/signaling/token.hpp"
#include "session.hpp"

namespace ringlane::control::signaling {
namespace json = boost::json;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

SignalingServer::SignalingServer(boost::asio::io_context& io, SignalingConfig config,
                                 std::unique_ptr<placement::Store> store)
    : config_(std::move(config)), store_(io, std::move(store)), timer_(io) {
  if (config_.media != nullptr) {
    media::OrchestratorConfig mc;
    mc.candidate_ips = config_.candidate_ips;
    mc.state_file = config_.media_state_file;
    mc.resume_grace = config_.media_resume_grace;
    media_ = std::make_unique<media::Orchestrator>(
        *config_.media, mc,
        [this](const std::string& room, const std::string& identity, std::string text) {
          auto r = rooms_.find(room);
          if (r == rooms_.end()) {
            return;
          }
          auto m = r->second.members.find(identity);
          if (m != r->second.members.end()) {
            m->second->send(std::move(text));
          }
        });
    if (config_.media_restore) {
      std::size_t n = media_->restore();
      spdlog::info("media state restored from {}: {} participant(s) await their clients",
                   config_.media_state_file, n);
      // WHIP/WHEP resources have no client to come back and join: their rooms are hosted now.
      for (const auto& [room, worker] : media_->resource_rooms()) {
        rooms_.emplace(
            room, Room{placement::Placement{config_.node_id, config_.ws_url, worker, false}, {}});
      }
    }
  }
  heartbeat();
  tick();
}

SignalingServer::~SignalingServer() {
  timer_.cancel();
}

void SignalingServer::upgrade(HttpStream stream, Request req,
                              const boost::asio::ip::address& peer) {
  std::string ip = peer.to_string();
  auto session = std::make_shared<Session>(*this, std::move(stream), ip);
  std::string refuse;
  unsigned& from_ip = per_ip_[ip];
  if (connections_ >= config_.max_connections || from_ip >= config_.max_connections_per_ip) {
    refuse = "too_many_connections";
    ++refused_total_;
    if (from_ip == 0) {
      per_ip_.erase(ip);
    }
  } else {
    ++from_ip;
    ++connections_;
    ++accepted_total_;
    session->counted_ = true;
  }
  session->start(std::move(req), std::move(refuse));
}

void SignalingServer::on_authenticated(Session&) {
  ++authenticated_;
}

void SignalingServer::link(Session& s) {
  s.listed_ = true;
  s.next_ = sessions_;
  if (sessions_ != nullptr) {
    sessions_->prev_ = &s;
  }
  sessions_ = &s;
}

void SignalingServer::on_closed(Session& s) {
  if (s.listed_) {
    s.listed_ = false;
    (s.prev_ != nullptr ? s.prev_->next_ : sessions_) = s.next_;
    if (s.next_ != nullptr) {
      s.next_->prev_ = s.prev_;
    }
    s.prev_ = s.next_ = nullptr;
  }
  if (!s.room_.empty()) {
    leave(s, {}, "disconnected");
  }
  if (s.authenticated_) {
    --authenticated_;
  }
  if (s.counted_) {
    s.counted_ = false;
    --connections_;
    auto it = per_ip_.find(s.peer_);
    if (it != per_ip_.end() && --it->second == 0) {
      per_ip_.erase(it);
    }
  }
}

bool SignalingServer::take(std::unordered_map<std::string, Bucket>& buckets, const std::string& key,
                           double rate) {
  auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = buckets.try_emplace(key, Bucket{2 * rate, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens =
        std::min(2 * rate, b.tokens + rate * std::chrono::duration<double>(now - b.at).count());
    b.at = now;
  }
  if (b.tokens < 1) {
    return false;
  }
  b.tokens -= 1;
  return true;
}

void SignalingServer::join(const std::shared_ptr<Session>& s, const std::string& room_name,
                           const std::string& id) {
  if (room_name != s->granted_room_) {
    return s->send_error("room_not_granted",
                         "the token grants room \"" + s->granted_room_ + "\" only", false, id);
  }
  if (!s->room_.empty() || s->joining_) {
    return s->send_error(
        "already_joined",
        s->joining_ ? "a join is in progress" : "leave room \"" + s->room_ + "\" first", false, id);
  }
  if (!take(join_buckets_, s->peer_, config_.joins_per_s_per_ip)) {
    return s->send_error("rate_limited", "too many joins from this address; retry shortly", true,
                         id);
  }
  if (auto local = rooms_.find(room_name); local != rooms_.end()) {
    return complete_join(s, room_name, id, local->second.placement);
  }
  if (auto worker = media_ ? media_->hosted_worker(room_name) : std::nullopt) {
    // Media of this room still runs here (members reconnecting, or state restored after a
    // restart): the room stays on its worker.
    return complete_join(s, room_name, id,
                         placement::Placement{config_.node_id, config_.ws_url, *worker, false});
  }
  // A room this node does not host yet: ask the store (on its own thread when it is Redis).
  s->joining_ = true;
  store_.place(room_name, [this, s, room_name, id](std::optional<placement::Placement> placed,
                                                   placement::PlaceError perr) {
    s->joining_ = false;
    if (s->finished_) {
      // Gone while the store answered: a room created for it alone is released again.
      if (placed && placed->created && placed->node_id == config_.node_id &&
          rooms_.find(room_name) == rooms_.end()) {
        store_.release(room_name, config_.node_id);
      }
      return;
    }
    if (!placed) {
      const char* code =
          perr == placement::PlaceError::kNoCapacity ? "no_capacity" : "placement_unavailable";
      return s->send_error(
          code,
          perr == placement::PlaceError::kNoCapacity
              ? "no node has room for a new room; retry later"
              : "the placement store is unreachable; calls in progress continue, retry the join",
          true, id);
    }
    // Another join may have created the room here meanwhile: the local room wins.
    auto local = rooms_.find(room_name);
    complete_join(s, room_name, id, local != rooms_.end() ? local->second.placement : *placed);
  });
}

void SignalingServer::complete_join(const std::shared_ptr<Session>& s, const std::string& room_name,
                                    const std::string& id, const placement::Placement& where) {
  auto local = rooms_.find(room_name);
  json::object node;
  node["id"] = where.node_id;
  node["ws_url"] = where.ws_url;
  if (where.node_id != config_.node_id) {
    ++redirects_;
    json::object o;
    o["type"] = "redirect";
    with_id(o, id);
    o["room"] = room_name;
    o["node"] = std::move(node);
    o["worker"] = where.worker;
    return s->send(json::serialize(o));
  }
  if (local == rooms_.end()) {
    local = rooms_.emplace(room_name, Room{where, {}}).first;
  }
  Room& room = local->second;
  auto existing = room.members.find(s->identity_);
  if (existing == room.members.end() && room.members.size() >= config_.max_room_participants) {
    if (room.members.empty()) {
      rooms_.erase(local);
    }
    return s->send_error("room_full",
                         "room \"" + room_name + "\" has its " +
                             std::to_string(config_.max_room_participants) + " participants",
                         false, id);
  }
  if (existing != room.members.end()) {
    // The same identity again (a reconnect from another network, as LiveKit handles it): the
    // newer connection wins; the older one is told why it left.
    std::shared_ptr<Session> old = existing->second;
    leave(*old, {}, "replaced", false);
  }
  Room& r = local->second;
  json::array others;
  for (const auto& [identity, member] : r.members) {
    others.emplace_back(identity);
  }
  if (media_) {
    for (const auto& identity : media_->whip_publishers(room_name)) {
      if (identity != s->identity_) {
        others.emplace_back(identity);
      }
    }
  }
  r.members.emplace(s->identity_, s);
  s->room_ = room_name;
  json::array tracks;
  bool resumed = media_ && media_->has_participant(room_name, s->identity_);
  if (media_) {
    tracks = media_->join(room_name, where.worker, s->identity_, s->auto_subscribe_);
  }
  ++joins_;
  ++participants_;
  json::object o;
  o["type"] = "joined";
  with_id(o, id);
  o["room"] = room_name;
  o["participant"] = s->identity_;
  o["node"] = std::move(node);
  o["worker"] = where.worker;
  o["participants"] = std::move(others);
  o["protocol"] = kProtocolVersion;
  o["tracks"] = std::move(tracks);
  // The participant's media (sessions, tracks, subscriptions) went on from before: the client
  // keeps its peer connections instead of starting over.
  o["resumed"] = resumed;
  s->send(json::serialize(o));
  json::object event;
  event["type"] = "participant_joined";
  event["room"] = room_name;
  event["participant"] = s->identity_;
  broadcast(r, json::serialize(event), s.get());
  if (media_) {
    media_->start(room_name, s->identity_);  // the subscriber offer follows `joined`
  }
}

void SignalingServer::leave(Session& s, const std::string& id, const char* reason,
                            bool release_if_empty) {
  auto it = rooms_.find(s.room_);
  if (s.room_.empty() || it == rooms_.end()) {
    s.send_error("not_joined", "not in a room", false, id);
    return;
  }
  Room& room = it->second;
  std::string name = s.room_;
  auto member = room.members.find(s.identity_);
  std::shared_ptr<Session> keep_alive;
  // Media: a requested leave ends it; a dropped connection keeps it for a reconnect to resume
  // (participant_left is said when that grace ends); a replacing connection takes it over.
  bool detached = false;
  if (member != room.members.end() && member->second.get() == &s) {
    keep_alive = member->second;
    if (media_ && std::string_view(reason) == "requested") {
      media_->leave(name, s.identity_);
    } else if (media_ && std::string_view(reason) == "disconnected") {
      media_->detach(name, s.identity_);
      detached = true;
    }
    room.members.erase(member);
    --participants_;
  }
  s.room_.clear();
  ++leaves_;
  json::object o;
  o["type"] = "left";
  with_id(o, id);
  o["room"] = name;
  o["reason"] = reason;
  s.send(json::serialize(o));
  if (!detached) {
    json::object event;
    event["type"] = "participant_left";
    event["room"] = name;
    event["participant"] = s.identity_;
    broadcast(room, json::serialize(event), &s);
  }
  if (room.members.empty() && release_if_empty && !(media_ && media_->has_members(name))) {
    store_.release(name, config_.node_id);
    rooms_.erase(it);
  }
}

// Participants whose connection dropped and who did not come back: now they have left.
void SignalingServer::expire_media() {
  for (const auto& [name, identity] : media_->expire(std::chrono::steady_clock::now())) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) {
      if (!media_->has_members(name)) {
        store_.release(name, config_.node_id);
      }
      continue;
    }
    json::object event;
    event["type"] = "participant_left";
    event["room"] = name;
    event["participant"] = identity;
    broadcast(it->second, json::serialize(event), nullptr);
    if (it->second.members.empty() && !media_->has_members(name)) {
      store_.release(name, config_.node_id);
      rooms_.erase(it);
    }
  }
}

void SignalingServer::broadcast(const Room& room, const std::string& text, const Session* except) {
  for (const auto& [identity, member] : room.members) {
    if (member.get() != except) {
      member->send(text);
    }
  }
}

void SignalingServer::tick() {
  auto now = std::chrono::steady_clock::now();
  if (now >= next_sweep_) {
    // Auth timeouts, pings for the quiet, the end for the silent: at least 4 times per timeout
    // (sweep() never unlinks during the walk; a dropped connection leaves when its read fails).
    next_sweep_ =
        now + std::min<std::chrono::steady_clock::duration>(
                  {std::chrono::seconds(1), config_.idle_timeout / 4, config_.auth_timeout / 4});
    for (Session* s = sessions_; s != nullptr; s = s->next_) {
      s->sweep(now);
    }
  }
  if (now >= next_heartbeat_) {
    heartbeat();
    // A bucket idle long enough to be full again says nothing: forget it (bounds the map by
    // the addresses active in the last few seconds).
    std::erase_if(join_buckets_,
                  [&](const auto& kv) { return now - kv.second.at > std::chrono::seconds(10); });
  }
  if (media_) {
    expire_media();
    for (const auto& room : media_->take_emptied_rooms()) {
      http_done(room);
    }
    media_->save();
  }
  timer_.expires_after(std::chrono::milliseconds(250));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      tick();
    }
  });
}

void SignalingServer::heartbeat() {
  next_heartbeat_ = std::chrono::steady_clock::now() + config_.heartbeat;
  if (heartbeat_in_flight_) {
    return;  // the store is slow (Redis unreachable): one heartbeat at a time
  }
  placement::NodeInfo self;
  self.id = config_.node_id;
  self.ws_url = config_.ws_url;
  self.workers = config_.workers;
  self.max_rooms = config_.max_rooms;
  self.rooms = rooms_.size();
  self.participants = participants_;
  if (config_.load) {
    NodeLoad l = config_.load();
    self.allocations = l.allocations;
    self.packets_per_s = l.packets_per_s;
    self.cpu = l.cpu;
  }
  std::vector<placement::HostedRoom> hosted;
  for (const auto& [name, room] : rooms_) {
    hosted.push_back({name, room.placement.worker});
  }
  heartbeat_in_flight_ = true;
  store_.heartbeat(std::move(self), std::move(hosted),
                   [this](bool ok, std::vector<std::string> lost) {
                     heartbeat_in_flight_ = false;
                     if (!ok) {
                       ++heartbeat_failures_;
                       return;
                     }
                     rooms_lost(lost);
                   });
}

// Rooms placed elsewhere while this node was away: their members here are told to join again
// (they will be redirected to the room's node).
void SignalingServer::rooms_lost(const std::vector<std::string>& lost) {
  for (const auto& name : lost) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) {
      continue;
    }
    spdlog::warn("room {} is now hosted by another node; its {} member(s) here must rejoin", name,
                 it->second.members.size());
    auto members = std::move(it->second.members);
    rooms_.erase(it);
    if (media_) {
      for (auto& [identity, m] : members) {
        media_->leave(name, identity);
      }
    }
    for (auto& [identity, m] : members) {
      m->room_.clear();
      --participants_;
      m->send_error("room_moved", "room \"" + name + "\" moved to another node; join again", true);
    }
  }
}

void SignalingServer::shutdown() {
  std::vector<placement::HostedRoom> hosted;
  for (const auto& [name, room] : rooms_) {
    hosted.push_back({name, room.placement.worker});
  }
  spdlog::info("leaving the placement registry ({} room(s) released)", hosted.size());
  store_.deregister(config_.node_id, std::move(hosted), std::chrono::seconds(1));
}

void SignalingServer::media(Session& s, const ClientMessage& m) {
  if (!media_) {
    return s.send_error("not_supported",
                        "\"" + m.media_type + "\" needs the SFU, which this node does not run",
                        false, m.id);
  }
  if (s.room_.empty()) {
    return s.send_error("not_joined", "join a room first", false, m.id);
  }
  const std::string& t = m.media_type;
  media::Reply reply;
  if (t == "publish") {
    if (m.sdp.empty()) {
      return s.send_error("bad_message", "publish needs \"sdp\" (the client's offer)", false, m.id);
    }
    reply = media_->publish(s.room_, s.identity_, m.sdp, m.hints);
  } else if (t == "unpublish") {
    reply = media_->unpublish(s.room_, s.identity_, m.track);
  } else if (t == "answer") {
    if (m.sdp.empty() || !m.seq) {
      return s.send_error("bad_message", "answer needs \"seq\" and \"sdp\"", false, m.id);
    }
    reply = media_->answer(s.room_, s.identity_, *m.seq, m.sdp);
  } else if (t == "mute") {
    if (m.track.empty() || !m.muted) {
      return s.send_error("bad_message", "mute needs \"track\" and \"muted\"", false, m.id);
    }
    reply = media_->mute(s.room_, s.identity_, m.track, *m.muted);
  } else if (t == "subscribe") {
    reply = media_->subscribe(s.room_, s.identity_, m.participant, m.track);
  } else if (t == "unsubscribe") {
    if (m.track.empty()) {
      return s.send_error("bad_message", "unsubscribe needs \"track\"", false, m.id);
    }
    reply = media_->unsubscribe(s.room_, s.identity_, m.track);
  } else if (t == "restart_ice") {
    reply = media_->restart_ice(s.room_, s.identity_);
  } else if (t == "layer") {
    bool wish = m.spatial || m.temporal || m.paused;
    bool size = m.width && m.height;
    if (m.track.empty() || (!wish && !size) || (m.width.has_value() != m.height.has_value())) {
      return s.send_error("bad_message",
                          "layer needs \"track\" and \"spatial\", \"temporal\" or \"paused\", "
                          "or \"width\" and \"height\"",
                          false, m.id);
    }
    if (wish) {
      reply = media_->layer(s.room_, s.identity_, m.track, m.spatial.value_or(2),
                            m.paused.value_or(false), m.temporal);
    }
    if (size && reply.code.empty()) {
      // The rendered size, on its own or with a wish: it limits what the wish allows.
      reply =
          media_->render_size(s.room_, s.identity_, m.track, static_cast<std::uint32_t>(*m.width),
                              static_cast<std::uint32_t>(*m.height));
    }
  } else if (t == "candidate") {
    return;  // ICE-lite: the server learns the client's address from its checks
  } else {
    return s.send_error("unknown_type", "no media message \"" + t + "\"", false, m.id);
  }
  if (!reply.code.empty()) {
    return s.send_error(reply.code, reply.message, reply.retryable, m.id);
  }
  if (!reply.body.empty()) {
    with_id(reply.body, m.id);
    s.send(json::serialize(reply.body));
  }
}

void SignalingServer::place_http(const std::string& room_name,
                                 std::function<void(HttpPlacement)> done) {
  if (auto local = rooms_.find(room_name); local != rooms_.end()) {
    return done(HttpPlacement{local->second.placement.worker, {}, {}});
  }
  if (auto worker = media_ ? media_->hosted_worker(room_name) : std::nullopt) {
    rooms_.emplace(room_name,
                   Room{placement::Placement{config_.node_id, config_.ws_url, *worker, false}, {}});
    return done(HttpPlacement{*worker, {}, {}});
  }
  store_.place(room_name, [this, room_name, done = std::move(done)](
                              std::optional<placement::Placement> placed,
                              placement::PlaceError perr) {
    if (auto local = rooms_.find(room_name); local != rooms_.end()) {
      return done(HttpPlacement{local->second.placement.worker, {}, {}});
    }
    if (!placed) {
      return done(HttpPlacement{
          std::nullopt,
          {},
          perr == placement::PlaceError::kNoCapacity ? "no_capacity" : "placement_unavailable"});
    }
    if (placed->node_id != config_.node_id) {
      return done(HttpPlacement{std::nullopt, placed->ws_url, {}});
    }
    rooms_.emplace(room_name, Room{*placed, {}});
    done(HttpPlacement{placed->worker, {}, {}});
  });
}

void SignalingServer::http_done(const std::string& room_name) {
  auto it = rooms_.find(room_name);
  if (it != rooms_.end() && it->second.members.empty() &&
      !(media_ && media_->has_members(room_name))) {
    store_.release(room_name, config_.node_id);
    rooms_.erase(it);
  }
}

void SignalingServer::media_reset() {
  if (!media_) {
    return;
  }
  json::object event;
  event["type"] = "media_reset";
  std::string text = json::serialize(event);
  std::size_t told = 0;
  for (const auto& [name, identity] : media_->reset()) {
    auto room = rooms_.find(name);
    if (room == rooms_.end()) {
      continue;
    }
    if (auto member = room->second.members.find(identity); member != room->second.members.end()) {
      member->second->send(text);
      ++told;
    }
  }
  spdlog::warn(
      "the data plane was restarted and lost its sessions: {} participant(s) told to "
      "publish again",
      told);
}

void SignalingServer::on_session_event(unsigned worker, std::span<const std::uint8_t> payload) {
  if (media_) {
    media_->on_session_event(worker, payload);
  }
}

void SignalingServer::on_media_report(unsigned worker, shm::Event type,
                                      std::span<const std::uint8_t> payload) {
  if (media_ && type == shm::Event::kRouteReport) {
    media_->on_route_report(worker, payload);
  } else if (media_ && type == shm::Event::kAudioLevels) {
    media_->on_audio_levels(worker, payload);
  } else if (media_ && type == shm::Event::kLayersActive) {
    media_->on_layers_active(worker, payload);
  }
}

std::string SignalingServer::metrics() const {
  struct Metric {
    const char* name;
    const char* type;
    std::uint64_t value;
  };
  const Metric plain[] = {
      {"ringlane_ws_connections", "gauge", connections_},
      {"ringlane_ws_authenticated", "gauge", authenticated_},
      {"ringlane_ws_accepted_total", "counter", accepted_total_},
      {"ringlane_ws_refused_total", "counter", refused_total_},
      {"ringlane_rooms", "gauge", rooms_.size()},
      {"ringlane_participants", "gauge", participants_},
      {"ringlane_joins_total", "counter", joins_},
      {"ringlane_join_redirects_total", "counter", redirects_},
      {"ringlane_leaves_total", "counter", leaves_},
      {"ringlane_placement_heartbeat_failures_total", "counter", heartbeat_failures_},
  };
  std::string out;
  for (const auto& m : plain) {
    out += std::string("# TYPE ") + m.name + " " + m.type + "\n" + m.name + " " +
           std::to_string(m.value) + "\n";
  }
  out += "# TYPE ringlane_signaling_errors_total counter\n";
  for (const auto& [code, n] : errors_) {
    out += "ringlane_signaling_errors_total{code=\"" + code + "\"} " + std::to_string(n) + "\n";
  }
  if (media_) {
    out += media_->metrics();
  }
  out += "# TYPE ringlane_placement_store_up gauge\n";
  out += "ringlane_placement_store_up{store=\"" + std::string(store_.kind()) + "\"} " +
         std::string(store_.connected() ? "1" : "0") + "\n";
  return out;
}

}  // namespace ringlane::control::signaling
