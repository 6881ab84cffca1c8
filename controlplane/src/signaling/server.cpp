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

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The token a browser passes in the URL: /ws?access_token=JWT (JWTs are URL-safe).
std::string query_token(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) {
    return {};
  }
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.starts_with("access_token=")) {
      return std::string(pair.substr(13));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return {};
}

void with_id(json::object& o, std::string_view id) {
  if (!id.empty()) {
    boost::system::error_code ec;
    o["id"] = json::parse(id, ec);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(SignalingServer& server, tcp::socket socket, std::string peer)
    : server_(server),
      ws_(std::move(socket)),
      peer_(std::move(peer)),
      created_(std::chrono::steady_clock::now()),
      bucket_at_(created_),
      last_heard_(created_),
      tokens_(2 * server.config().messages_per_s_per_conn) {}

void Session::start(Request req, std::string refuse) {
  const auto& c = server_.config();
  websocket::stream_base::timeout t;
  t.handshake_timeout = std::chrono::seconds(10);
  t.idle_timeout = websocket::stream_base::none();  // the server's sweep does it (check_idle)
  t.keep_alive_pings = false;
  ws_.set_option(t);
  // Any frame, pongs included, proves the peer alive. A capture this small needs no heap.
  ws_.control_callback([this](websocket::frame_type, boost::beast::string_view) {
    last_heard_ = std::chrono::steady_clock::now();
    pinged_ = false;
  });
  // Hard stop for a single frame header announcing something huge; smaller oversize messages
  // are caught in on_read so the client gets a "frame_too_large" error before the close.
  ws_.read_message_max(std::max<std::size_t>(c.max_frame_bytes * 4, 64 * 1024));
  ws_.auto_fragment(false);
  std::string token = query_token(req.target());
  auto request = std::make_shared<Request>(std::move(req));
  ws_.async_accept(*request, [self = shared_from_this(), request, token = std::move(token),
                              refuse = std::move(refuse)](boost::beast::error_code ec) mutable {
    self->on_accept(ec, token, std::move(refuse));
  });
}

void Session::on_accept(boost::beast::error_code ec, const std::string& token, std::string refuse) {
  if (ec) {
    return finish();
  }
  server_.link(*this);
  if (!refuse.empty()) {
    fail_and_close(refuse, "too many connections from this address or in total; retry later",
                   static_cast<std::uint16_t>(websocket::close_code::try_again_later));
    return read();
  }
  if (!token.empty()) {
    authenticate(token, {});
  } else {
    server_.pending_auth_.emplace(this, weak_from_this());
  }
  read();
}

void Session::authenticate(const std::string& token, const std::string& id) {
  if (authenticated_) {
    server_.count_error("already_authenticated");
    send(error_reply("already_authenticated", "this connection is already authenticated", false,
                     id));
    return;
  }
  TokenError error;
  auto grant = verify_token(token, server_.config().jwt_secrets, unix_now(), error);
  if (!grant) {
    fail_and_close(error.code, error.message, 4001);
    return;
  }
  authenticated_ = true;
  identity_ = std::move(grant->identity);
  granted_room_ = std::move(grant->room);
  server_.pending_auth_.erase(this);
  server_.on_authenticated(*this);
  json::object o;
  o["type"] = "welcome";
  with_id(o, id);
  o["protocol"] = kProtocolVersion;
  o["participant"] = identity_;
  o["room"] = granted_room_;
  o["node"] = server_.config().node_id;
  json::object limits;
  limits["max_frame_bytes"] = server_.config().max_frame_bytes;
  limits["idle_timeout_ms"] = server_.config().idle_timeout.count();
  limits["max_room_participants"] = server_.config().max_room_participants;
  o["limits"] = std::move(limits);
  send(json::serialize(o));
}

void Session::read() {
  if (finished_) {
    return;
  }
  ws_.async_read_some(boost::asio::buffer(chunk_),
                      [self = shared_from_this()](boost::beast::error_code ec, std::size_t n) {
                        self->on_read(ec, n);
                      });
}

void Session::on_read(boost::beast::error_code ec, std::size_t n) {
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      server_.count_error("frame_too_large");
    }
    return finish();
  }
  last_heard_ = std::chrono::steady_clock::now();
  pinged_ = false;
  if (closing_ || close_after_flush_ != 0) {
    std::string().swap(in_);  // closing: what arrives now is not answered
    return read();
  }
  in_.append(chunk_.data(), std::min(n, chunk_.size()));
  if (in_.size() > server_.config().max_frame_bytes) {
    std::string().swap(in_);
    fail_and_close(
        "frame_too_large",
        "messages are limited to " + std::to_string(server_.config().max_frame_bytes) + " bytes",
        static_cast<std::uint16_t>(websocket::close_code::too_big));
    return read();  // keep reading: the peer's close frame arrives through the read
  }
  if (ws_.is_message_done()) {
    if (!ws_.got_text()) {
      server_.count_error("bad_message");
      send(error_reply("bad_message", "signaling messages are JSON text frames", false));
    } else if (allow_message()) {
      std::string text = std::move(in_);
      handle(text);
    }
    std::string().swap(in_);  // idle again: hold no heap
  }
  read();
}

void Session::check_idle(std::chrono::steady_clock::time_point now,
                         std::chrono::milliseconds idle) {
  if (finished_ || closing_) {
    return;
  }
  auto silent = now - last_heard_;
  // Dropped only after a ping went unanswered: a sweep that first sees a connection already
  // silent past the whole timeout pings it and gives it one more sweep.
  if (pinged_ && silent >= idle) {
    server_.count_error("idle_timeout");
    // A peer that ignored our ping gets no close handshake: the connection is dropped.
    boost::beast::error_code ec;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    ws_.next_layer().cancel(ec);
    return;
  }
  if (silent >= idle / 2 && !pinged_) {
    pinged_ = true;
    ws_.async_ping({}, [self = shared_from_this()](boost::beast::error_code) {});
  }
}

bool Session::allow_message() {
  double rate = server_.config().messages_per_s_per_conn;
  auto now = std::chrono::steady_clock::now();
  tokens_ =
      std::min(2 * rate, tokens_ + rate * std::chrono::duration<double>(now - bucket_at_).count());
  bucket_at_ = now;
  if (tokens_ < 1) {
    server_.count_error("rate_limited");
    send(error_reply("rate_limited", "too many messages on this connection; slow down", true));
    return false;
  }
  tokens_ -= 1;
  return true;
}

void Session::handle(std::string_view text) {
  auto parsed = parse_client_message(text);
  if (auto* e = std::get_if<ParseError>(&parsed)) {
    server_.count_error(e->code);
    send(error_reply(e->code, e->message, false, e->id));
    return;
  }
  auto& m = std::get<ClientMessage>(parsed);
  if (m.type == ClientType::kAuth) {
    return authenticate(m.token, m.id);
  }
  if (!authenticated_) {
    server_.count_error("unauthenticated");
    send(error_reply("unauthenticated",
                     "authenticate first: ?access_token=JWT or {\"type\":\"auth\",\"token\":JWT}",
                     false, m.id));
    return;
  }
  switch (m.type) {
    case ClientType::kJoin:
      return server_.join(shared_from_this(), m.room.empty() ? granted_room_ : m.room, m.id);
    case ClientType::kLeave:
      return server_.leave(*this, m.id, "requested");
    case ClientType::kPing: {
      json::object o;
      o["type"] = "pong";
      with_id(o, m.id);
      o["time_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
      return send(json::serialize(o));
    }
    case ClientType::kMedia:
      server_.count_error("not_supported");
      return send(error_reply(
          "not_supported",
          "\"" + m.media_type + "\" needs the SFU, which this node does not run yet", false, m.id));
    case ClientType::kAuth:
      break;
  }
}

void Session::send(std::string text) {
  if (closing_ || finished_) {
    return;
  }
  if (outbox_.size() >= server_.config().max_queued_messages) {
    server_.count_error("slow_consumer");
    outbox_.clear();
    close(static_cast<std::uint16_t>(websocket::close_code::policy_error), "slow consumer");
    return;
  }
  outbox_.push_back(std::move(text));
  flush();
}

void Session::flush() {
  if (writing_ || finished_) {
    return;
  }
  if (outbox_.empty()) {
    if (close_after_flush_ != 0) {
      auto code = close_after_flush_;
      close_after_flush_ = 0;
      close(code, "");
    }
    return;
  }
  writing_ = true;
  ws_.text(true);
  ws_.async_write(boost::asio::buffer(outbox_.front()),
                  [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
                    self->writing_ = false;
                    if (ec) {
                      return self->finish();
                    }
                    self->outbox_.erase(self->outbox_.begin());
                    if (self->outbox_.empty()) {
                      std::vector<std::string>().swap(self->outbox_);  // idle: hold no memory
                    }
                    self->flush();
                  });
}

void Session::fail_and_close(const std::string& code, const std::string& message,
                             std::uint16_t close_code) {
  server_.count_error(code);
  send(error_reply(code, message, code == "too_many_connections"));
  close_after_flush_ = close_code;
  flush();
}

void Session::close(std::uint16_t code, const char* reason) {
  if (closing_ || finished_) {
    return;
  }
  if (writing_) {
    close_after_flush_ = code;
    return;
  }
  closing_ = true;
  websocket::close_reason why(code);
  why.reason = reason;
  ws_.async_close(why, [self = shared_from_this()](boost::beast::error_code) { self->finish(); });
}

// The one way out: leaves the room, frees the address slot, and drops the socket.
void Session::finish() {
  if (finished_) {
    return;
  }
  finished_ = true;
  server_.on_closed(*this);
  boost::beast::error_code ec;
  ws_.next_layer().close(ec);
}

// ---------------------------------------------------------------------------------------------
// SignalingServer

SignalingServer::SignalingServer(boost::asio::io_context& io, SignalingConfig config,
                                 std::unique_ptr<placement::Store> store)
    : config_(std::move(config)), store_(io, std::move(store)), timer_(io) {
  heartbeat();
  tick();
}

SignalingServer::~SignalingServer() {
  timer_.cancel();
}

void SignalingServer::upgrade(tcp::socket socket, Request req,
                              const boost::asio::ip::address& peer) {
  std::string ip = peer.to_string();
  auto session = std::make_shared<Session>(*this, std::move(socket), ip);
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
  pending_auth_.erase(&s);
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
  auto error = [&](const char* code, const std::string& message, bool retryable) {
    count_error(code);
    s->send(error_reply(code, message, retryable, id));
  };
  if (room_name != s->granted_room_) {
    return error("room_not_granted", "the token grants room \"" + s->granted_room_ + "\" only",
                 false);
  }
  if (!s->room_.empty() || s->joining_) {
    return error("already_joined",
                 s->joining_ ? "a join is in progress" : "leave room \"" + s->room_ + "\" first",
                 false);
  }
  if (!take(join_buckets_, s->peer_, config_.joins_per_s_per_ip)) {
    return error("rate_limited", "too many joins from this address; retry shortly", true);
  }
  if (auto local = rooms_.find(room_name); local != rooms_.end()) {
    return complete_join(s, room_name, id, local->second.placement);
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
      count_error(code);
      return s->send(error_reply(
          code,
          perr == placement::PlaceError::kNoCapacity
              ? "no node has room for a new room; retry later"
              : "the placement store is unreachable; calls in progress continue, retry the join",
          true, id));
    }
    // Another join may have created the room here meanwhile: the local room wins.
    auto local = rooms_.find(room_name);
    complete_join(s, room_name, id, local != rooms_.end() ? local->second.placement : *placed);
  });
}

void SignalingServer::complete_join(const std::shared_ptr<Session>& s, const std::string& room_name,
                                    const std::string& id, const placement::Placement& where) {
  auto error = [&](const char* code, const std::string& message, bool retryable) {
    count_error(code);
    s->send(error_reply(code, message, retryable, id));
  };
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
    return error("room_full",
                 "room \"" + room_name + "\" has its " +
                     std::to_string(config_.max_room_participants) + " participants",
                 false);
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
  r.members.emplace(s->identity_, s);
  s->room_ = room_name;
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
  s->send(json::serialize(o));
  json::object event;
  event["type"] = "participant_joined";
  event["room"] = room_name;
  event["participant"] = s->identity_;
  broadcast(r, json::serialize(event), s.get());
}

void SignalingServer::leave(Session& s, const std::string& id, const char* reason,
                            bool release_if_empty) {
  auto it = rooms_.find(s.room_);
  if (s.room_.empty() || it == rooms_.end()) {
    count_error("not_joined");
    s.send(error_reply("not_joined", "not in a room", false, id));
    return;
  }
  Room& room = it->second;
  std::string name = s.room_;
  auto member = room.members.find(s.identity_);
  std::shared_ptr<Session> keep_alive;
  if (member != room.members.end() && member->second.get() == &s) {
    keep_alive = member->second;
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
  json::object event;
  event["type"] = "participant_left";
  event["room"] = name;
  event["participant"] = s.identity_;
  broadcast(room, json::serialize(event), &s);
  if (room.members.empty() && release_if_empty) {
    store_.release(name, config_.node_id);
    rooms_.erase(it);
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
  // Connections that never authenticated get auth_timeout.
  std::vector<std::shared_ptr<Session>> expired;
  for (auto& [raw, weak] : pending_auth_) {
    auto s = weak.lock();
    if (s && now - s->created() >= config_.auth_timeout) {
      expired.push_back(s);
    }
  }
  for (auto& s : expired) {
    pending_auth_.erase(s.get());
    s->fail_and_close("auth_timeout", "no token within the authentication timeout", 4001);
  }
  if (now >= next_idle_sweep_) {
    // Pings for the quiet, the end for the silent, at least 4 times per idle timeout (check_idle
    // never unlinks during the walk; a dropped connection leaves when its read fails).
    next_idle_sweep_ = now + std::min<std::chrono::steady_clock::duration>(
                                 std::chrono::seconds(1), config_.idle_timeout / 4);
    for (Session* s = sessions_; s != nullptr; s = s->next_) {
      s->check_idle(now, config_.idle_timeout);
    }
  }
  if (now >= next_heartbeat_) {
    heartbeat();
    // A bucket idle long enough to be full again says nothing: forget it (bounds the map by
    // the addresses active in the last few seconds).
    std::erase_if(join_buckets_,
                  [&](const auto& kv) { return now - kv.second.at > std::chrono::seconds(10); });
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
    for (auto& [identity, m] : members) {
      m->room_.clear();
      --participants_;
      count_error("room_moved");
      m->send(error_reply("room_moved", "room \"" + name + "\" moved to another node; join again",
                          true));
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
  out += "# TYPE ringlane_placement_store_up gauge\n";
  out += "ringlane_placement_store_up{store=\"" + std::string(store_.kind()) + "\"} " +
         std::string(store_.connected() ? "1" : "0") + "\n";
  return out;
}

}  // namespace ringlane::control::signaling
