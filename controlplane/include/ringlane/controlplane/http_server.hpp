#pragma once
// A small HTTP/1.1 server on Boost.Beast: one io_context thread, keep-alive, bounded request
// size and header read time. The handler turns a request into a response; errors never escape.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>

namespace ringlane::control {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
// The peer's address is passed so handlers can rate-limit per source.
using Handler = std::function<Response(const Request&, const boost::asio::ip::address& peer)>;
// Takes over the connection of a WebSocket upgrade request for /ws.
using UpgradeHandler = std::function<void(boost::asio::ip::tcp::socket, Request,
                                          const boost::asio::ip::address& peer)>;
// Sends the response to a request taken by a DeferHandler: once, on the io_context thread, now
// or later (the connection reads its next request after that).
using Respond = std::function<void(Response)>;
// Takes the requests it answers itself through `respond`, for those that wait on something (a
// WHIP offer waits for its room's placement); false leaves the request to the Handler.
using DeferHandler = std::function<bool(const Request&, const boost::asio::ip::address& peer,
                                        const Respond& respond)>;

// The value of `name` in a request target's query string ("" if absent), %-escapes decoded.
std::string query_param(std::string_view target, std::string_view name);

class HttpServer {
 public:
  static constexpr std::size_t kMaxRequestBytes = 64 * 1024;

  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& at, Handler handler,
             UpgradeHandler upgrade = {}, DeferHandler defer = {});
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept();
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_{io_};
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<UpgradeHandler> upgrade_;
  std::shared_ptr<DeferHandler> defer_;
};

}  // namespace ringlane::control
