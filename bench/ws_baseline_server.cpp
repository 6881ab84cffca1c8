// The baseline for bench/ws_bench.py: a WebSocket server written the way Boost.Beast's own
// examples (websocket_server_async) write one: beast::tcp_stream with a strand per connection,
// a flat_buffer read always pending, Beast's suggested server timeouts (idle pings). It
// greets each connection with {"type":"welcome"} and answers a join with {"type":"joined"},
// so ws_load can hold and drive it exactly as it does ringlane-control.
//   ws_baseline_server PORT
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <memory>
#include <string>

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket s) : ws_(std::move(s)) {}
  void start() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        self->send(R"({"type":"welcome"})");
        self->read();
      }
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        return;
      }
      std::string_view text(static_cast<const char*>(self->buffer_.data().data()),
                            self->buffer_.size());
      if (text.find("\"join\"") != std::string_view::npos) {
        self->send(R"({"type":"joined"})");
      }
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }
  void send(std::string text) {
    auto out = std::make_shared<std::string>(std::move(text));
    ws_.text(true);
    ws_.async_write(asio::buffer(*out),
                    [self = shared_from_this(), out](beast::error_code, std::size_t) {});
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

void accept(asio::io_context& io, tcp::acceptor& acceptor) {
  acceptor.async_accept(asio::make_strand(io),
                        [&io, &acceptor](beast::error_code ec, tcp::socket s) {
                          if (!ec) {
                            std::make_shared<Session>(std::move(s))->start();
                          }
                          accept(io, acceptor);
                        });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: ws_baseline_server PORT\n", stderr);
    return 2;
  }
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                           static_cast<unsigned short>(std::stoi(argv[1]))));
  acceptor.listen(4096);
  accept(io, acceptor);
  io.run();
  return 0;
}
