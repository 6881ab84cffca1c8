#pragma once
// One signaling WebSocket connection. Internal to the signaling server.
//
// Memory per idle connection is what lets one process hold tens of thousands of them
// (bench/ws_bench.py measures it): no permessage-deflate, reads land in a 64-byte array in the
// session (a message in progress is gathered into `in_`, freed when it is handled), and idle
// pings are sent by the server's sweep rather than by a timer armed per connection.
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/controlplane/http_server.hpp"

namespace ringlane::control::signaling {

class SignalingServer;

// Echoes a request's id (its JSON text) into a reply.
inline void with_id(boost::json::object& o, std::string_view id) {
  if (!id.empty()) {
    boost::system::error_code ec;
    o["id"] = boost::json::parse(id, ec);
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(SignalingServer& server, HttpStream stream, std::string peer);

  // Completes the upgrade; `refuse` (a code) sends that error and closes right after.
  void start(Request req, std::string refuse);
  void send(std::string text);
  // Counts the error by code and sends it.
  void send_error(std::string_view code, std::string_view message, bool retryable,
                  std::string_view id = {});
  // Sends an error and then closes with a WebSocket close code.
  void fail_and_close(std::string_view code, std::string_view message, std::uint16_t close,
                      bool retryable);
  void close(std::uint16_t code, const char* reason);

  const std::string& peer() const { return peer_; }
  const std::string& identity() const { return identity_; }
  const std::string& granted_room() const { return granted_room_; }
  const std::string& room() const { return room_; }
  bool authenticated() const { return authenticated_; }

 private:
  friend class SignalingServer;
  void on_accept(boost::beast::error_code ec, const std::string& token, std::string refuse);
  void authenticate(const std::string& token, const std::string& id);
  void read();
  void on_read(boost::beast::error_code ec, std::size_t n);
  void handle(std::string_view text);
  void flush();
  // Called by the server's sweep: auth timeout for a connection that sent no token; a ping for
  // one silent for half the idle timeout, the end for one that left the ping unanswered.
  void sweep(std::chrono::steady_clock::time_point now);
  void finish();
  bool allow_message();

  SignalingServer& server_;
  boost::beast::websocket::stream<HttpStream, false> ws_;  // ws:// or wss://
  std::array<char, 64> chunk_;
  std::string in_;  // the message being received; empty (no heap) between messages
  std::string peer_;
  std::string identity_;
  std::string granted_room_;
  std::string room_;
  std::vector<std::string> outbox_;
  std::chrono::steady_clock::time_point created_;
  std::chrono::steady_clock::time_point bucket_at_;
  std::chrono::steady_clock::time_point last_heard_;
  Session* prev_ = nullptr;  // the server's list of live sessions, for the idle sweep
  Session* next_ = nullptr;
  double tokens_ = 0;
  std::uint16_t close_after_flush_ = 0;
  bool authenticated_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool counted_ = false;  // holds a slot in the per-address connection count
  bool pinged_ = false;
  bool joining_ = false;  // a join waits for the placement store
  bool listed_ = false;
  bool auto_subscribe_ = true;  // join option: subscribe to every track of the room
};

}  // namespace ringlane::control::signaling
