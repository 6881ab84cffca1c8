#pragma once
// A small HTTP/1.1 server on Boost.Beast: one io_context thread, keep-alive, bounded request
// size and header read time. The handler turns a request into a response; errors never escape.
// The same routes are served over plain TCP and over TLS (HTTPS, and WSS for /ws): a server
// given a TLS context speaks only TLS on its port.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "ringlane/common/cidr.hpp"

namespace ringlane::control {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// A connection's byte stream after the HTTP server is done with it: a plain TCP socket, or TLS
// over one. What a /ws upgrade hands on, so one WebSocket session type serves ws:// and wss://
// (boost::beast::websocket::stream<HttpStream>). A plain connection costs a null pointer more
// than its socket; the TLS state lives on the heap only for TLS connections.
class HttpStream {
 public:
  using TlsStream = boost::asio::ssl::stream<boost::beast::tcp_stream>;
  using executor_type = boost::asio::any_io_executor;

  explicit HttpStream(boost::asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}
  // `context` is kept alive with the connection (a reloaded certificate replaces it for new
  // connections only).
  HttpStream(TlsStream tls, std::shared_ptr<boost::asio::ssl::context> context)
      : plain_(tls.get_executor()),
        tls_(std::make_unique<Tls>(Tls{std::move(context), std::move(tls)})) {}

  bool tls() const { return tls_ != nullptr; }
  executor_type get_executor() { return plain_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() {
    return tls_ ? tls_->stream.next_layer().socket() : plain_;
  }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_) {
            tls_->stream.async_read_some(b, std::move(handler));
          } else {
            plain_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_) {
            tls_->stream.async_write_some(b, std::move(handler));
          } else {
            plain_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // On the TCP socket underneath (no TLS close_notify): for dropping a connection.
  void shutdown(boost::asio::ip::tcp::socket::shutdown_type what, boost::system::error_code& ec) {
    socket().shutdown(what, ec);
  }
  void cancel(boost::system::error_code& ec) { socket().cancel(ec); }
  void close(boost::system::error_code& ec) { socket().close(ec); }

  // The WebSocket close handshake ends with the stream's own teardown (TLS: close_notify first).
  friend void teardown(boost::beast::role_type role, HttpStream& s, boost::system::error_code& ec) {
    using boost::beast::websocket::teardown;
    if (s.tls_) {
      teardown(role, s.tls_->stream, ec);
    } else {
      teardown(role, s.plain_, ec);
    }
  }
  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type role, HttpStream& s,
                             TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    if (s.tls_) {
      async_teardown(role, s.tls_->stream, std::forward<TeardownHandler>(handler));
    } else {
      async_teardown(role, s.plain_, std::forward<TeardownHandler>(handler));
    }
  }
  friend void beast_close_socket(HttpStream& s) {
    boost::system::error_code ec;
    s.socket().close(ec);
  }

 private:
  struct Tls {
    std::shared_ptr<boost::asio::ssl::context> context;
    TlsStream stream;
  };
  boost::asio::ip::tcp::socket plain_;
  std::unique_ptr<Tls> tls_;
};

// The peer's address is passed so handlers can rate-limit per source: the client's own, or the
// one a trusted proxy names in X-Forwarded-For (HttpServer::Options::trusted_proxies).
using Handler = std::function<Response(const Request&, const boost::asio::ip::address& peer)>;
// Takes over the connection of a WebSocket upgrade request for /ws.
using UpgradeHandler =
    std::function<void(HttpStream stream, Request, const boost::asio::ip::address& peer)>;
// Sends the response to a request taken by a DeferHandler: once, on the io_context thread, now
// or later (the connection reads its next request after that).
using Respond = std::function<void(Response)>;
// Takes the requests it answers itself through `respond`, for those that wait on something (a
// WHIP offer waits for its room's placement); false leaves the request to the Handler.
using DeferHandler = std::function<bool(const Request&, const boost::asio::ip::address& peer,
                                        const Respond& respond)>;

// The value of `name` in a request target's query string ("" if absent), %-escapes decoded.
std::string query_param(std::string_view target, std::string_view name);

// A TLS server context from PEM files (the certificate chain and its private key): TLS 1.2 and
// 1.3, ALPN http/1.1. Null with `error` set when a file is missing or bad or the key does not
// match the certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file,
                                                            const std::string& key_file,
                                                            std::string& error);
// The SHA-256 fingerprint of a context's certificate ("AB:CD:..."), for logs.
std::string tls_fingerprint(boost::asio::ssl::context& context);

// What a request's handlers see of X-Forwarded-For / X-Forwarded-Proto: from a peer in
// `trusted` the client is the rightmost X-Forwarded-For address that is not itself a trusted
// proxy (the peer when the header is absent or unreadable) and X-Forwarded-Proto (http or https)
// is kept; from anyone else both headers are dropped. Over TLS the proto is "https" unless a
// trusted proxy said otherwise. Returns the client's address; `req` is rewritten to match.
boost::asio::ip::address forwarded_client(Request& req, const boost::asio::ip::address& peer,
                                          const std::vector<Cidr>& trusted, bool tls);

class HttpServer {
 public:
  static constexpr std::size_t kMaxRequestBytes = 64 * 1024;

  struct Options {
    std::vector<Cidr> trusted_proxies;
    // Set: the port speaks TLS only (a plain HTTP request gets a clear 400 and the close).
    std::shared_ptr<boost::asio::ssl::context> tls;
  };

  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& at, Handler handler,
             UpgradeHandler upgrade = {}, DeferHandler defer = {}, Options options = {});
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // A new certificate for the connections accepted from now on (a TLS server only); those
  // already open keep theirs.
  void set_tls_context(std::shared_ptr<boost::asio::ssl::context> tls) { tls_ = std::move(tls); }
  boost::asio::ssl::context* tls_context() const { return tls_.get(); }

  // What a TLS port saw (on the io_context thread): for /metrics.
  struct TlsCounters {
    std::uint64_t handshakes = 0;          // completed
    std::uint64_t handshake_failures = 0;  // failed or timed out
    std::uint64_t plain_requests = 0;      // plain HTTP sent to the TLS port (a 400)
    std::uint64_t wss_upgrades = 0;        // /ws upgraded over TLS
  };
  const TlsCounters& tls_counters() const { return *counters_; }

  struct Routes {
    Handler handler;
    UpgradeHandler upgrade;
    DeferHandler defer;
    std::vector<Cidr> trusted_proxies;
    std::shared_ptr<TlsCounters> counters;
  };

 private:
  void accept();
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_{io_};
  std::shared_ptr<TlsCounters> counters_ = std::make_shared<TlsCounters>();
  std::shared_ptr<const Routes> routes_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace ringlane::control
