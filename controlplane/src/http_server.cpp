#include "ringlane/controlplane/http_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

namespace ringlane::control {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Handler> handler)
      : stream_(std::move(socket)), handler_(std::move(handler)) {}

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
    write(std::move(r));
  }

  void write(Response r) {
    auto shared = std::make_shared<Response>(std::move(r));
    shared->prepare_payload();
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
};

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, const tcp::endpoint& at, Handler handler)
    : io_(io), acceptor_(io, at), handler_(std::make_shared<Handler>(std::move(handler))) {
  accept();
}

void HttpServer::accept() {
  acceptor_.async_accept(boost::asio::make_strand(io_),
                         [this](beast::error_code ec, tcp::socket socket) {
                           if (!ec) {
                             std::make_shared<Session>(std::move(socket), handler_)->start();
                           }
                           accept();
                         });
}

}  // namespace ringlane::control
