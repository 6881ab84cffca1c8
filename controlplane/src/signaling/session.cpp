#include "session.hpp"

#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/signaling/message.hpp"
#include "ringlane/controlplane/signaling/server.hpp"
#include "ringlane/controlplane/signaling/token.hpp"

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

}  // namespace

Session::Session(SignalingServer& server, HttpStream stream, std::string peer)
    : server_(server),
      ws_(std::move(stream)),
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
  // The token a browser passes in the URL: /ws?access_token=JWT.
  std::string token = query_param(req.target(), "access_token");
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
                   static_cast<std::uint16_t>(websocket::close_code::try_again_later), true);
    return read();
  }
  if (!token.empty()) {
    authenticate(token, {});
  }
  read();
}

void Session::authenticate(const std::string& token, const std::string& id) {
  if (authenticated_) {
    send_error("already_authenticated", "this connection is already authenticated", false, id);
    return;
  }
  TokenError error;
  auto grant = verify_token(token, server_.config().jwt_secrets, unix_now(), error);
  if (!grant) {
    fail_and_close(error.code, error.message, 4001, false);
    return;
  }
  authenticated_ = true;
  identity_ = std::move(grant->identity);
  granted_room_ = std::move(grant->room);
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
        static_cast<std::uint16_t>(websocket::close_code::too_big), false);
    return read();  // keep reading: the peer's close frame arrives through the read
  }
  if (ws_.is_message_done()) {
    if (!ws_.got_text()) {
      send_error("bad_message", "signaling messages are JSON text frames", false);
    } else if (allow_message()) {
      std::string text = std::move(in_);
      handle(text);
    }
    std::string().swap(in_);  // idle again: hold no heap
  }
  read();
}

void Session::sweep(std::chrono::steady_clock::time_point now) {
  if (finished_ || closing_ || close_after_flush_ != 0) {
    return;
  }
  const auto& c = server_.config();
  if (!authenticated_ && now - created_ >= c.auth_timeout) {
    return fail_and_close("auth_timeout", "no token within the authentication timeout", 4001,
                          false);
  }
  auto idle = c.idle_timeout;
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
    send_error("rate_limited", "too many messages on this connection; slow down", true);
    return false;
  }
  tokens_ -= 1;
  return true;
}

void Session::handle(std::string_view text) {
  auto parsed = parse_client_message(text);
  if (auto* e = std::get_if<ParseError>(&parsed)) {
    send_error(e->code, e->message, false, e->id);
    return;
  }
  auto& m = std::get<ClientMessage>(parsed);
  if (m.type == ClientType::kAuth) {
    return authenticate(m.token, m.id);
  }
  if (!authenticated_) {
    send_error("unauthenticated",
               "authenticate first: ?access_token=JWT or {\"type\":\"auth\",\"token\":JWT}", false,
               m.id);
    return;
  }
  switch (m.type) {
    case ClientType::kJoin:
      auto_subscribe_ = m.auto_subscribe.value_or(true);
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
      return server_.media(*this, m);
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

void Session::send_error(std::string_view code, std::string_view message, bool retryable,
                         std::string_view id) {
  server_.count_error(std::string(code));
  send(error_reply(code, message, retryable, id));
}

void Session::fail_and_close(std::string_view code, std::string_view message,
                             std::uint16_t close_code, bool retryable) {
  send_error(code, message, retryable);
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

}  // namespace ringlane::control::signaling
