#pragma once
// sfu_load's signaling side on Boost.Beast: a join token from the node's HTTP API (or signed
// here), then one WebSocket per participant speaking controlplane/PROTOCOL.md. Everything runs
// on the caller's io_context, which the media loop polls; every operation has a deadline.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sfu_load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

struct Url {
  std::string scheme, host, port, target;
};

// "scheme://host[:port][/target]"; nullopt when it is not of that form.
inline std::optional<Url> parse_url(const std::string& s) {
  auto sep = s.find("://");
  if (sep == std::string::npos) {
    return std::nullopt;
  }
  Url u;
  u.scheme = s.substr(0, sep);
  std::string rest = s.substr(sep + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  if (colon == std::string::npos || authority.back() == ']') {
    u.host = authority;
    u.port = u.scheme == "https" || u.scheme == "wss" ? "443" : "80";
  } else {
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
  }
  if (u.host.size() > 2 && u.host.front() == '[') {
    u.host = u.host.substr(1, u.host.size() - 2);
  }
  if (u.host.empty() || u.port.empty()) {
    return std::nullopt;
  }
  return u;
}

inline std::string url_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// One HTTP/1.1 request (GET, or POST/PATCH/DELETE with a body) from a given source address.
class HttpRequest : public std::enable_shared_from_this<HttpRequest> {
 public:
  using Done =
      std::function<void(int status, std::string body, std::string location, std::string error)>;
  HttpRequest(asio::io_context& io, std::string source) : stream_(io), source_(std::move(source)) {}

  void run(const Url& u, http::verb verb, std::string target, std::string bearer,
           std::string content_type, std::string body, std::chrono::milliseconds timeout,
           Done done) {
    done_ = std::move(done);
    req_ = {verb, target, 11};
    req_.set(http::field::host, u.host + ":" + u.port);
    req_.set(http::field::user_agent, "ringlane-sfu_load");
    if (!bearer.empty()) {
      req_.set(http::field::authorization, "Bearer " + bearer);
    }
    if (!content_type.empty()) {
      req_.set(http::field::content_type, content_type);
    }
    if (!body.empty() || verb == http::verb::post) {
      req_.body() = std::move(body);
      req_.prepare_payload();
    }
    beast::error_code ec;
    auto address = asio::ip::make_address(u.host, ec);
    if (ec) {
      return finish(0, "the URL's host must be an IP address");
    }
    tcp::endpoint to(address, static_cast<unsigned short>(std::stoi(u.port)));
    auto& sock = stream_.socket();
    sock.open(to.protocol(), ec);
    if (!ec && !source_.empty() && address.is_v4()) {
      sock.bind(tcp::endpoint(asio::ip::make_address(source_), 0), ec);
    }
    if (ec) {
      return finish(0, "socket: " + ec.message());
    }
    stream_.expires_after(timeout);
    auto self = shared_from_this();
    stream_.async_connect(to, [self](beast::error_code e) {
      if (e) {
        return self->finish(0, "connect: " + e.message());
      }
      http::async_write(self->stream_, self->req_, [self](beast::error_code we, std::size_t) {
        if (we) {
          return self->finish(0, "write: " + we.message());
        }
        http::async_read(self->stream_, self->buffer_, self->res_,
                         [self](beast::error_code re, std::size_t) {
                           if (re) {
                             return self->finish(0, "read: " + re.message());
                           }
                           self->finish(self->res_.result_int(), {});
                         });
      });
    });
  }

 private:
  void finish(int status, std::string error) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    if (done_) {
      auto d = std::move(done_);
      done_ = nullptr;
      d(status, res_.body(), std::string(res_[http::field::location]), std::move(error));
    }
  }

  beast::tcp_stream stream_;
  std::string source_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Done done_;
};

// One signaling WebSocket: messages in order, writes queued (Beast allows one at a time).
class SignalSocket : public std::enable_shared_from_this<SignalSocket> {
 public:
  using OnMessage = std::function<void(const json::object&)>;
  using OnClosed = std::function<void(const std::string& why)>;

  SignalSocket(asio::io_context& io, std::string source) : ws_(io), source_(std::move(source)) {}

  void connect(const Url& u, const std::string& token, std::chrono::milliseconds timeout,
               OnMessage on_message, OnClosed on_closed) {
    on_message_ = std::move(on_message);
    on_closed_ = std::move(on_closed);
    beast::error_code ec;
    auto address = asio::ip::make_address(u.host, ec);
    if (ec) {
      return closed("the ws URL's host must be an IP address");
    }
    tcp::endpoint to(address, static_cast<unsigned short>(std::stoi(u.port)));
    auto& sock = beast::get_lowest_layer(ws_).socket();
    sock.open(to.protocol(), ec);
    if (!ec && !source_.empty() && address.is_v4()) {
      sock.bind(tcp::endpoint(asio::ip::make_address(source_), 0), ec);
    }
    if (!ec) {
      sock.set_option(tcp::no_delay(true), ec);
    }
    if (ec) {
      return closed("socket: " + ec.message());
    }
    beast::get_lowest_layer(ws_).expires_after(timeout);
    std::string host = u.host + ":" + u.port;
    std::string target =
        u.target + (u.target.find('?') == std::string::npos ? "?" : "&") + "access_token=" + token;
    auto self = shared_from_this();
    beast::get_lowest_layer(ws_).async_connect(to, [self, host, target](beast::error_code e) {
      if (e) {
        return self->closed("connect: " + e.message());
      }
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      self->ws_.async_handshake(host, target, [self](beast::error_code he) {
        if (he) {
          return self->closed("handshake: " + he.message());
        }
        self->open_ = true;
        self->read();
        self->write_next();
      });
    });
  }

  void send(std::string text) {
    if (closing_) {
      return;
    }
    out_.push_back(std::move(text));
    if (open_ && out_.size() == 1) {
      write_next();
    }
  }
  void send(const json::object& o) { send(json::serialize(o)); }

  // Sends a close frame after what is queued; the socket ends when the server answers.
  void close() {
    if (closing_ || !open_) {
      closing_ = true;
      if (!open_) {
        beast::error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
      }
      return;
    }
    closing_ = true;
    if (out_.empty()) {
      do_close();
    }
  }
  bool is_open() const { return open_; }
  // Drops the callbacks: the owner is going away.
  void detach() {
    on_message_ = nullptr;
    on_closed_ = nullptr;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  void read() {
    auto self = shared_from_this();
    ws_.async_read(in_, [self](beast::error_code ec, std::size_t) {
      if (ec) {
        return self->closed(ec == websocket::error::closed ? "closed" : "read: " + ec.message());
      }
      std::string_view text(static_cast<const char*>(self->in_.data().data()), self->in_.size());
      boost::system::error_code jec;
      json::value v = json::parse(text, jec);
      self->in_.consume(self->in_.size());
      if (!jec && v.is_object() && self->on_message_) {
        self->on_message_(v.as_object());
      }
      self->read();
    });
  }

  void write_next() {
    if (out_.empty() || writing_) {
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()), [self](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) {
        return self->closed("write: " + ec.message());
      }
      self->out_.pop_front();
      if (!self->out_.empty()) {
        self->write_next();
      } else if (self->closing_) {
        self->do_close();
      }
    });
  }

  void do_close() {
    auto self = shared_from_this();
    ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
  }

  void closed(const std::string& why) {
    open_ = false;
    if (on_closed_) {
      auto c = std::move(on_closed_);
      on_closed_ = nullptr;
      c(why);
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::string source_;
  beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  OnMessage on_message_;
  OnClosed on_closed_;
};

}  // namespace sfu_load
