#include "ringlane/controlplane/http_server.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <type_traits>

#include "ringlane/common/bytes.hpp"

namespace ringlane::control {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
namespace ssl = boost::asio::ssl;

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

// ALPN (RFC 7301): HTTP/1.1 is what this server speaks; a client that offers only others gets
// no ALPN answer and may still go on.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof(kHttp11), in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<IpAddress> to_ip(const boost::asio::ip::address& a) {
  auto ip = IpAddress::parse(a.to_string());
  return ip ? std::optional<IpAddress>(ip->unmapped()) : std::nullopt;
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const std::string& cert_file,
                                               const std::string& key_file, std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    error = "cannot use the certificate " + cert_file + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    error = "cannot use the private key " + key_file + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    error = "the private key " + key_file + " does not belong to the certificate " + cert_file;
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_alpn, nullptr);
  return ctx;
}

std::string tls_fingerprint(ssl::context& context) {
  X509* cert = SSL_CTX_get0_certificate(context.native_handle());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &n) != 1) {
    return "?";
  }
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    if (i > 0) {
      out += ':';
    }
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

boost::asio::ip::address forwarded_client(Request& req, const boost::asio::ip::address& peer,
                                          const std::vector<Cidr>& trusted, bool tls) {
  static constexpr std::string_view kFor = "X-Forwarded-For";
  static constexpr std::string_view kProto = "X-Forwarded-Proto";
  auto peer_ip = to_ip(peer);
  boost::asio::ip::address client = peer;
  if (peer_ip && any_contains(trusted, *peer_ip)) {
    // Each proxy appends the address it heard from: read from the right, past our own proxies.
    std::vector<std::string_view> hops;
    for (auto [f, end] = req.equal_range(kFor); f != end; ++f) {
      std::string_view v = f->value();
      while (true) {
        auto comma = v.find(',');
        hops.push_back(trim(v.substr(0, comma)));
        if (comma == std::string_view::npos) {
          break;
        }
        v.remove_prefix(comma + 1);
      }
    }
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
      std::string_view hop = *it;
      if (hop.size() > 2 && hop.front() == '[' && hop.back() == ']') {
        hop = hop.substr(1, hop.size() - 2);
      }
      boost::system::error_code ec;
      auto addr = boost::asio::ip::make_address(std::string(hop), ec);
      auto ip = ec ? std::nullopt : to_ip(addr);
      if (!ip) {
        break;  // unreadable (a port, a name, "unknown"): trust stops at the last known hop
      }
      client = addr;
      if (!any_contains(trusted, *ip)) {
        break;
      }
    }
    std::string_view proto = req[kProto];
    if (proto != "http" && proto != "https") {
      req.erase(kProto);
    }
  } else {
    req.erase(kFor);
    req.erase(kProto);
  }
  if (tls && req.find(kProto) == req.end()) {
    req.set(kProto, "https");
  }
  return client;
}

namespace {

using TlsStream = HttpStream::TlsStream;

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Session(Stream stream, std::shared_ptr<const HttpServer::Routes> routes,
          std::shared_ptr<ssl::context> tls = nullptr, beast::flat_buffer buffer = {})
      : stream_(std::move(stream)),
        buffer_(std::move(buffer)),
        routes_(std::move(routes)),
        tls_(std::move(tls)) {}

  void start() {
    if constexpr (kTls) {
      // The bytes the TLS detection read are the start of the ClientHello.
      lowest().expires_after(std::chrono::seconds(10));
      stream_.async_handshake(
          ssl::stream_base::server, buffer_.data(),
          [self = this->shared_from_this()](beast::error_code ec, std::size_t used) {
            if (ec) {
              ++self->routes_->counters->handshake_failures;
              return;  // a failed handshake: nothing to say in a protocol the peer speaks
            }
            ++self->routes_->counters->handshakes;
            self->buffer_.consume(used);
            self->read();
          });
    } else {
      read();
    }
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read() {
    parser_.emplace();
    parser_->body_limit(HttpServer::kMaxRequestBytes);
    parser_->header_limit(16 * 1024);
    // A client gets 30 s to send a request; idle keep-alive connections end then too.
    lowest().expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == boost::asio::error::eof || ec == ssl::error::stream_truncated) {
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
    auto peer = forwarded_client(req, lowest().socket().remote_endpoint(peer_ec).address(),
                                 routes_->trusted_proxies, kTls);
    std::string_view path = req.target();
    path = path.substr(0, path.find('?'));
    if (routes_->upgrade && path == "/ws" && beast::websocket::is_upgrade(req)) {
      lowest().expires_never();
      if constexpr (kTls) {
        ++routes_->counters->wss_upgrades;
        routes_->upgrade(HttpStream(std::move(stream_), tls_), std::move(req), peer);
      } else {
        routes_->upgrade(HttpStream(stream_.release_socket()), std::move(req), peer);
      }
      return;
    }
    if (routes_->defer && deferred(req, peer)) {
      return;
    }
    Response r;
    try {
      r = routes_->handler(req, peer);
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
    Respond respond = [self = this->shared_from_this(), sent, version = req.version(),
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
      self->lowest().expires_after(std::chrono::seconds(30));
      self->write(std::move(r), false);
    };
    try {
      return routes_->defer(req, peer, respond);
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
                      [self = this->shared_from_this(), shared](beast::error_code ec, std::size_t) {
                        if (ec || !shared->keep_alive()) {
                          return self->close();
                        }
                        self->read();
                      });
  }

  void close() {
    if constexpr (kTls) {
      // close_notify (RFC 8446 §6.1), with a deadline for a peer that never answers it.
      lowest().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ec;
        self->lowest().socket().close(ec);
      });
    } else {
      beast::error_code ec;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<const HttpServer::Routes> routes_;
  std::shared_ptr<ssl::context> tls_;  // the certificate this connection was accepted with
};

// The first bytes on a TLS port: a ClientHello goes on to the handshake; anything else (plain
// HTTP sent to the HTTPS port) gets a plain 400 saying so, and the close.
class TlsDetect : public std::enable_shared_from_this<TlsDetect> {
 public:
  TlsDetect(tcp::socket socket, std::shared_ptr<const HttpServer::Routes> routes,
            std::shared_ptr<ssl::context> tls)
      : stream_(std::move(socket)), routes_(std::move(routes)), tls_(std::move(tls)) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](beast::error_code ec, bool is_tls) {
                              self->on_detect(ec, is_tls);
                            });
  }

 private:
  void on_detect(beast::error_code ec, bool is_tls) {
    if (ec) {
      ++routes_->counters->handshake_failures;  // closed or silent before a ClientHello
      return;
    }
    if (is_tls) {
      ssl::context& context = *tls_;
      std::make_shared<Session<TlsStream>>(TlsStream(std::move(stream_), context),
                                           std::move(routes_), std::move(tls_), std::move(buffer_))
          ->start();
      return;
    }
    ++routes_->counters->plain_requests;
    auto r = std::make_shared<Response>(http::status::bad_request, 11);
    r->set(http::field::content_type, "application/json");
    r->body() =
        R"({"error":{"code":"tls_required","message":"this port speaks HTTPS: use https:// or wss://"}})";
    r->keep_alive(false);
    r->prepare_payload();
    http::async_write(stream_, *r, [self = shared_from_this(), r](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<const HttpServer::Routes> routes_;
  std::shared_ptr<ssl::context> tls_;
};

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, const tcp::endpoint& at, Handler handler,
                       UpgradeHandler upgrade, DeferHandler defer, Options options)
    : io_(io),
      acceptor_(io, at),
      routes_(std::make_shared<const Routes>(
          Routes{std::move(handler), std::move(upgrade), std::move(defer),
                 std::move(options.trusted_proxies), counters_})),
      tls_(std::move(options.tls)) {
  // Tens of thousands of signaling connections arrive in bursts: a deep accept queue.
  acceptor_.listen(4096);
  accept();
}

void HttpServer::accept() {
  // One thread runs the io_context: connections need no strand (and save its memory).
  acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (tls_) {
        std::make_shared<TlsDetect>(std::move(socket), routes_, tls_)->start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), routes_)
            ->start();
      }
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
