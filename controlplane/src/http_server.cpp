#include "ringlane/controlplane/http_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "ringlane/common/bytes.hpp"

namespace ringlane::control {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

std::string query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return "";
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name && eq != std::string_view::npos) {
      std::string out;
      std::string_view v = pair.substr(eq + 1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        int hi = i + 2 < v.size() ? hex_digit(v[i + 1]) : -1;
        int lo = i + 2 < v.size() ? hex_digit(v[i + 2]) : -1;
        if (v[i] == '%' && hi >= 0 && lo >= 0) {
          out.push_back(static_cast<char>(hi * 16 + lo));
          i += 2;
        } else {
          out.push_back(v[i] == '+' ? ' ' : v[i]);
        }
      }
      return out;
    }
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
  }
  return "";
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Handler> handler,
          std::shared_ptr<UpgradeHandler> upgrade, std::shared_ptr<DeferHandler> defer)
      : stream_(std::move(socket)),
        handler_(std::move(handler)),
        upgrade_(std::move(upgrade)),
        defer_(std::move(defer)) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(HttpServer::kMaxRequestBytes);
    parser_->header_limit(16 * 1024);
    // A client gets 30 s to send a request; idle keep-alive connections end then too.
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == boost::asio::error::eof) {
      return close();
    }
    if (ec) {
      // Oversized or malformed: a clear 4xx, then close.
      Response r{ec == http::error::body_limit || ec == http::error::header_limit
                     ? http::status::payload_too_large
                     : http::status::bad_request,
                 11};
      r.set(http::field::content_type, "application/json");
      r.body() = R"({"error":{"code":"bad_request","message":")" + ec.message() + "\"}}";
      r.keep_alive(false);
      return write(std::move(r));
    }
    Request req = parser_->release();
    boost::system::error_code peer_ec;
    auto peer = stream_.socket().remote_endpoint(peer_ec).address();
    std::string_view path = req.target();
    path = path.substr(0, path.find('?'));
    if (*upgrade_ && path == "/ws" && beast::websocket::is_upgrade(req)) {
      stream_.expires_never();
      (*upgrade_)(stream_.release_socket(), std::move(req), peer);
      return;
    }
    if (*defer_ && deferred(req, peer)) {
      return;
    }
    Response r;
    try {
      r = (*handler_)(req, peer);
    } catch (const std::exception& e) {
      r = Response{http::status::internal_server_error, req.version()};
      r.set(http::field::content_type, "application/json");
      r.body() = R"({"error":{"code":"internal","message":"internal error"}})";
    }
    r.version(req.version());
    r.keep_alive(req.keep_alive());
    r.prepare_payload();
    if (req.method() == http::verb::head) {
      // RFC 9110 §9.3.2: the headers a GET would get, Content-Length included, and no body.
      r.body().clear();
    }
    write(std::move(r), false);
  }

  // Offers the request to the DeferHandler; true when it took it. Its response may come after
  // the read's deadline: the write gets a deadline of its own.
  bool deferred(const Request& req, const boost::asio::ip::address& peer) {
    auto sent = std::make_shared<bool>(false);
    Respond respond = [self = shared_from_this(), sent, version = req.version(),
                       keep = req.keep_alive()](Response r) {
      if (*sent) {
        return;
      }
      *sent = true;
      r.version(version);
      r.keep_alive(keep);
      r.prepare_payload();
      if (r.result() == http::status::no_content) {
        r.erase(http::field::content_length);  // RFC 9110 §8.6: never in a 204
      }
      self->stream_.expires_after(std::chrono::seconds(30));
      self->write(std::move(r), false);
    };
    try {
      return (*defer_)(req, peer, respond);
    } catch (const std::exception& e) {
      Response r{http::status::internal_server_error, req.version()};
      r.set(http::field::content_type, "application/json");
      r.body() = R"({"error":{"code":"internal","message":"internal error"}})";
      respond(std::move(r));
      return true;
    }
  }

  void write(Response r, bool prepare = true) {
    auto shared = std::make_shared<Response>(std::move(r));
    if (prepare) {
      shared->prepare_payload();
    }
    http::async_write(stream_, *shared,
                      [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
                        if (ec || !shared->keep_alive()) {
                          return self->close();
                        }
                        self->read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<UpgradeHandler> upgrade_;
  std::shared_ptr<DeferHandler> defer_;
};

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, const tcp::endpoint& at, Handler handler,
                       UpgradeHandler upgrade, DeferHandler defer)
    : io_(io),
      acceptor_(io, at),
      handler_(std::make_shared<Handler>(std::move(handler))),
      upgrade_(std::make_shared<UpgradeHandler>(std::move(upgrade))),
      defer_(std::make_shared<DeferHandler>(std::move(defer))) {
  // Tens of thousands of signaling connections arrive in bursts: a deep accept queue.
  acceptor_.listen(4096);
  accept();
}

void HttpServer::accept() {
  // One thread runs the io_context: connections need no strand (and save its memory).
  acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), handler_, upgrade_, defer_)->start();
      accept();
    } else if (ec != boost::asio::error::operation_aborted) {
      // Out of descriptors (EMFILE) or similar: back off briefly instead of spinning.
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) {
          accept();
        }
      });
    }
  });
}

}  // namespace ringlane::control
