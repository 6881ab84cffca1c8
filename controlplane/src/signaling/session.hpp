#pragma once
// One signaling WebSocket connection. Internal to the signaling server.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/controlplane/http_server.hpp"

namespace ringlane::control::signaling {

class SignalingServer;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(SignalingServer& server, boost::asio::ip::tcp::socket socket, std::string peer);

  // Completes the upgrade; `refuse` (a code) sends that error and closes right after.
  void start(Request req, std::string refuse);
  void send(std::string text);
  // Sends an error and then closes with a WebSocket close code.
  void fail_and_close(const std::string& code, const std::string& message, std::uint16_t close);
  void close(std::uint16_t code, const char* reason);

  const std::string& peer() const { return peer_; }
  const std::string& identity() const { return identity_; }
  const std::string& granted_room() const { return granted_room_; }
  const std::string& room() const { return room_; }
  bool authenticated() const { return authenticated_; }
  std::chrono::steady_clock::time_point created() const { return created_; }

 private:
  friend class SignalingServer;
  void on_accept(boost::beast::error_code ec, const std::string& token, std::string refuse);
  void authenticate(const std::string& token, const std::string& id);
  void read();
  void on_read(boost::beast::error_code ec);
  void handle(std::string_view text);
  void flush();
  void finish();
  bool allow_message();

  SignalingServer& server_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::beast::flat_buffer in_;
  std::string peer_;
  std::string identity_;
  std::string granted_room_;
  std::string room_;
  std::vector<std::string> outbox_;
  std::chrono::steady_clock::time_point created_;
  std::chrono::steady_clock::time_point bucket_at_;
  double tokens_ = 0;
  std::uint16_t close_after_flush_ = 0;
  bool authenticated_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool counted_ = false;  // holds a slot in the per-address connection count
};

}  // namespace ringlane::control::signaling
