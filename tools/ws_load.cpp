// ws_load: a signaling load client. Holds N authenticated, idle WebSocket connections to a
// control plane (spread over several 127.0.0.x source addresses so the ports last), reads the
// server's resident memory before and after, then drives joins at a fixed rate and measures
// each join's latency (send -> "joined"), then joins as fast as the server answers.
//
//   ws_load --port P --secret S --connections 50000 --sources 127.0.0.2-127.0.0.21
//           --server-pid PID [--rate 1000] [--joins 5000] [--burst 5000] [--out FILE]
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ringlane/controlplane/signaling/token.hpp"

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  std::string secret;
  unsigned connections = 1000;
  std::vector<std::string> sources = {"127.0.0.1"};
  int server_pid = 0;
  unsigned concurrency = 256;
  double rate = 1000;
  unsigned joins = 5000;
  unsigned burst = 5000;
  double settle_s = 2;
  double time_limit_s = 300;
  std::string out;
};

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

class Load;

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Load& l, asio::io_context& io, unsigned i) : load(l), ws(io), index(i) {}
  void start(const std::string& source);
  void read();
  void on_message();
  void send_join();

  Load& load;
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer in;
  unsigned index;
  bool welcomed = false;
  bool failed = false;
  Clock::time_point join_sent{};
  std::string join_text;
};

class Load {
 public:
  Load(asio::io_context& io, Options o) : io_(io), o_(std::move(o)), timer_(io) {}

  int run();
  void connected(Conn& c, bool ok);
  void joined(Conn& c, bool ok);
  std::string token_for(unsigned i) const {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return ringlane::control::signaling::issue_token(
        {"load-" + std::to_string(i), "bench-" + std::to_string(i), now + 3600}, o_.secret, now);
  }
  const Options& options() const { return o_; }

 private:
  void open_more();
  void pace();
  void run_until(const std::function<bool()>& done, double limit_s);

  asio::io_context& io_;
  Options o_;
  asio::steady_timer timer_;
  std::vector<std::shared_ptr<Conn>> conns_;
  unsigned next_ = 0;
  unsigned in_flight_ = 0;
  unsigned up_ = 0;
  unsigned failed_ = 0;
  unsigned join_next_ = 0;
  unsigned join_end_ = 0;
  unsigned joins_done_ = 0;
  unsigned joins_failed_ = 0;
  std::vector<double> latencies_ms_;
  bool paced_ = true;
  Clock::time_point pace_start_{};
};

void Conn::start(const std::string& source) {
  auto self = shared_from_this();
  beast::error_code ec;
  auto& sock = ws.next_layer();
  sock.open(tcp::v4(), ec);
  sock.set_option(tcp::no_delay(true), ec);
  sock.bind(tcp::endpoint(asio::ip::make_address(source), 0), ec);
  if (ec) {
    failed = true;
    return load.connected(*this, false);
  }
  const auto& o = load.options();
  tcp::endpoint to(asio::ip::make_address(o.host), o.port);
  sock.async_connect(to, [self](beast::error_code cec) {
    if (cec) {
      self->failed = true;
      return self->load.connected(*self, false);
    }
    std::string target = "/ws?access_token=" + self->load.token_for(self->index);
    std::string host = self->load.options().host + ":" + std::to_string(self->load.options().port);
    self->ws.async_handshake(host, target, [self](beast::error_code hec) {
      if (hec) {
        self->failed = true;
        return self->load.connected(*self, false);
      }
      self->read();
    });
  });
}

void Conn::read() {
  ws.async_read(in, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      if (!self->welcomed) {
        self->failed = true;
        self->load.connected(*self, false);
      } else if (self->join_sent != Clock::time_point{}) {
        self->load.joined(*self, false);
      }
      return;
    }
    self->on_message();
    self->in.clear();
    self->read();
  });
}

void Conn::on_message() {
  std::string_view text(static_cast<const char*>(in.data().data()), in.size());
  if (!welcomed && text.find("\"type\":\"welcome\"") != std::string_view::npos) {
    welcomed = true;
    return load.connected(*this, true);
  }
  if (join_sent != Clock::time_point{}) {
    bool ok = text.find("\"type\":\"joined\"") != std::string_view::npos;
    if (ok || text.find("\"type\":\"error\"") != std::string_view::npos) {
      load.joined(*this, ok);
    }
  }
}

void Conn::send_join() {
  join_sent = Clock::now();
  join_text = R"({"type":"join","id":)" + std::to_string(index) + "}";
  ws.async_write(asio::buffer(join_text),
                 [self = shared_from_this()](beast::error_code ec, std::size_t) {
                   if (ec) {
                     self->load.joined(*self, false);
                   }
                 });
}

void Load::connected(Conn& c, bool ok) {
  --in_flight_;
  if (ok) {
    ++up_;
  } else {
    ++failed_;
    if (failed_ <= 5) {
      std::fprintf(stderr, "ws_load: connection %u failed\n", c.index);
    }
  }
  open_more();
}

void Load::open_more() {
  while (in_flight_ < o_.concurrency && next_ < o_.connections) {
    unsigned i = next_++;
    auto c = std::make_shared<Conn>(*this, io_, i);
    conns_.push_back(c);
    ++in_flight_;
    c->start(o_.sources[i % o_.sources.size()]);
  }
}

void Load::joined(Conn& c, bool ok) {
  if (c.join_sent == Clock::time_point{}) {
    return;
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - c.join_sent).count();
  c.join_sent = {};
  ++joins_done_;
  if (ok) {
    latencies_ms_.push_back(ms);
  } else {
    ++joins_failed_;
  }
  if (!paced_) {
    // Unpaced: a window of joins in flight, the next one leaves as one completes.
    while (join_next_ < join_end_ && join_next_ - joins_done_ < o_.concurrency) {
      conns_[join_next_++]->send_join();
    }
  }
}

// Sends the joins that are due at `rate` since the start of the paced phase, every millisecond.
void Load::pace() {
  double elapsed = std::chrono::duration<double>(Clock::now() - pace_start_).count();
  auto due = std::min<unsigned>(
      join_end_, static_cast<unsigned>(elapsed * o_.rate) + 1 + (join_end_ - o_.joins));
  while (join_next_ < due) {
    conns_[join_next_++]->send_join();
  }
  if (join_next_ < join_end_) {
    timer_.expires_after(std::chrono::milliseconds(1));
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        pace();
      }
    });
  }
}

void Load::run_until(const std::function<bool()>& done, double limit_s) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(limit_s));
  while (!done() && Clock::now() < deadline) {
    io_.run_for(std::chrono::milliseconds(20));
  }
}

int Load::run() {
  auto t0 = Clock::now();
  long rss_before = rss_kib(o_.server_pid);
  open_more();
  run_until([this] { return up_ + failed_ >= o_.connections; }, o_.time_limit_s);
  double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Let the server settle (freed handshake buffers, pending writes) before reading its memory.
  run_until([] { return false; }, o_.settle_s);
  long rss_after = rss_kib(o_.server_pid);
  double per_conn = up_ > 0 ? static_cast<double>(rss_after - rss_before) * 1024.0 / up_ : 0;
  std::printf("connections        %u up, %u failed, in %.1f s (%.0f/s)\n", up_, failed_, connect_s,
              up_ / connect_s);
  std::printf("server RSS         %ld KiB -> %ld KiB: %.0f bytes per connection\n", rss_before,
              rss_after, per_conn);

  // Paced joins: `joins` of the held connections, `rate` per second.
  std::erase_if(conns_, [](const auto& c) { return !c->welcomed; });
  auto usable = static_cast<unsigned>(conns_.size());
  unsigned paced_n = std::min(o_.joins, usable);
  join_end_ = paced_n;
  o_.joins = paced_n;
  pace_start_ = Clock::now();
  pace();
  run_until([&] { return joins_done_ >= paced_n; }, 60);
  double paced_s = std::chrono::duration<double>(Clock::now() - pace_start_).count();
  auto paced_lat = latencies_ms_;
  unsigned paced_failed = joins_failed_;
  std::printf(
      "paced joins        %u at %.0f/s target: %.0f/s achieved, p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms, %u failed\n",
      paced_n, o_.rate, paced_n / paced_s, percentile(paced_lat, 0.5), percentile(paced_lat, 0.99),
      percentile(paced_lat, 1.0), paced_failed);

  // Unpaced: as fast as the server answers, `concurrency` in flight.
  unsigned burst_n = std::min(o_.burst, usable - paced_n);
  latencies_ms_.clear();
  joins_failed_ = 0;
  joins_done_ = 0;
  paced_ = false;
  unsigned base = join_next_;
  join_end_ = base + burst_n;
  auto b0 = Clock::now();
  while (join_next_ < join_end_ && join_next_ - base < o_.concurrency) {
    conns_[join_next_++]->send_join();
  }
  // joins_done_ counts from 0 while join_next_ started at `base`: shift the window.
  joins_done_ = base;
  run_until([&] { return joins_done_ >= join_end_; }, 60);
  double burst_s = std::chrono::duration<double>(Clock::now() - b0).count();
  double burst_rate = burst_n / burst_s;
  std::printf("unpaced joins      %u in %.2f s: %.0f joins/s, p99 %.2f ms, %u failed\n", burst_n,
              burst_s, burst_rate, percentile(latencies_ms_, 0.99), joins_failed_);

  if (!o_.out.empty()) {
    std::ofstream f(o_.out);
    f << "{\n  \"ws_connections\": " << up_ << ",\n  \"ws_failed\": " << failed_
      << ",\n  \"ws_bytes_per_connection\": " << static_cast<long>(per_conn)
      << ",\n  \"server_rss_kib_before\": " << rss_before
      << ",\n  \"server_rss_kib_after\": " << rss_after << ",\n  \"connect_seconds\": " << connect_s
      << ",\n  \"paced_joins\": {\"count\": " << paced_n << ", \"target_per_s\": " << o_.rate
      << ", \"achieved_per_s\": " << paced_n / paced_s
      << ", \"p50_ms\": " << percentile(paced_lat, 0.5)
      << ", \"p99_ms\": " << percentile(paced_lat, 0.99)
      << ", \"max_ms\": " << percentile(paced_lat, 1.0) << ", \"failed\": " << paced_failed
      << "},\n  \"unpaced_joins\": {\"count\": " << burst_n << ", \"per_s\": " << burst_rate
      << ", \"p99_ms\": " << percentile(latencies_ms_, 0.99) << ", \"failed\": " << joins_failed_
      << "}\n}\n";
  }
  return failed_ == 0 && paced_failed == 0 ? 0 : 1;
}

std::vector<std::string> source_range(const std::string& spec) {
  // A.B.C.X-A.B.C.Y or a single address.
  auto dash = spec.find('-');
  if (dash == std::string::npos) {
    return {spec};
  }
  std::string lo = spec.substr(0, dash);
  std::string hi = spec.substr(dash + 1);
  auto prefix = lo.substr(0, lo.rfind('.') + 1);
  int a = std::stoi(lo.substr(lo.rfind('.') + 1));
  int b = std::stoi(hi.substr(hi.rfind('.') + 1));
  std::vector<std::string> out;
  for (int x = a; x <= b; ++x) {
    out.push_back(prefix + std::to_string(x));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--host") {
      o.host = v;
    } else if (k == "--port") {
      o.port = static_cast<unsigned short>(std::stoi(v));
    } else if (k == "--secret") {
      o.secret = v;
    } else if (k == "--connections") {
      o.connections = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--sources") {
      o.sources = source_range(v);
    } else if (k == "--server-pid") {
      o.server_pid = std::stoi(v);
    } else if (k == "--concurrency") {
      o.concurrency = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--rate") {
      o.rate = std::stod(v);
    } else if (k == "--joins") {
      o.joins = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--burst") {
      o.burst = static_cast<unsigned>(std::stoul(v));
    } else if (k == "--settle") {
      o.settle_s = std::stod(v);
    } else if (k == "--time-limit") {
      o.time_limit_s = std::stod(v);
    } else if (k == "--out") {
      o.out = v;
    } else {
      std::fprintf(stderr, "ws_load: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.secret.empty() || o.server_pid <= 0) {
    std::fputs(
        "usage: ws_load --port P --secret S --server-pid PID [--connections N] "
        "[--sources A-B] [--rate R] [--joins N] [--burst N] [--out FILE]\n",
        stderr);
    return 2;
  }
  // Two descriptors per connection would be the server's; ours is one each, plus slack.
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  rlim_t want = o.connections + 64;
  if (r.rlim_cur < want) {
    r.rlim_cur = std::min(std::max(r.rlim_max, want), want);
    r.rlim_max = std::max(r.rlim_max, want);
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
      std::fprintf(stderr, "ws_load: cannot raise the descriptor limit to %lu\n",
                   static_cast<unsigned long>(want));
      return 1;
    }
  }
  boost::asio::io_context io(1);
  Load load(io, o);
  return load.run();
}
