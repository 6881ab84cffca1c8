#pragma once
// One data plane worker: a pinned thread with its own io backend, sockets, TURN server and
// buffer pool on its NUMA node. It owns every allocation whose client lands on its listener
// (SO_REUSEPORT spreads client 5-tuples over workers) and every relay socket it opened.
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/tls.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/reservations.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "ringlane/dataplane/turn/connections.hpp"
#include "ringlane/dataplane/turn/relay_ports.hpp"
#include "ringlane/dataplane/turn/server.hpp"
#include "ringlane/shm/messages.hpp"
#include "ringlane/shm/ring.hpp"
#include "ringlane/shm/stats.hpp"
#include "ringlane/turn/policy_codec.hpp"

namespace ringlane {

struct WorkerConfig {
  std::uint32_t index = 0;
  int cpu = -1;                  // pin to this CPU; -1 = no pinning
  std::string io = "uring";      // uring | mmsg
  std::vector<Endpoint> listen;  // TURN listeners (SO_REUSEPORT)
  std::vector<Endpoint> media;   // this worker's own SFU media ports (IPv4, IPv6)
  // TURN over TCP (RFC 8656 §3.1): listeners (SO_REUSEPORT, one socket per worker, so the
  // kernel spreads connections over workers), their limits and the per-IP counts shared by the
  // workers of a process. With listen_tcp_optional, a listener that cannot bind is skipped with
  // a warning (the default one, which follows --listen) instead of failing the start.
  std::vector<Endpoint> listen_tcp;
  bool listen_tcp_optional = false;
  // TURN over TLS (`turns:`): listeners opened like the TCP ones, only with a certificate
  // context (loaded once per process and shared; reloaded on SIGHUP for new connections). The
  // TCP limits, timeouts and per-IP counts cover these connections too.
  std::vector<Endpoint> listen_tls;
  bool listen_tls_optional = false;
  std::shared_ptr<const crypto::TlsServerContext> tls;
  turn::ConnectionLimits tcp_limits;
  std::shared_ptr<turn::ConnectionsPerIp> tcp_per_ip;
  std::shared_ptr<const crypto::DtlsCertificate> certificate;  // one per process
  std::optional<IpAddress> relay_v4;                           // bind address of IPv4 relay sockets
  std::optional<IpAddress> relay_v6;
  std::optional<IpAddress> external_v4;  // advertised instead of the bind address (NAT)
  std::optional<IpAddress> external_v6;
  std::uint16_t relay_port_min = 40000;  // this worker's slice of the relay range
  std::uint16_t relay_port_max = 65535;
  io::BackendOptions backend;
  int listener_buffer = 4 << 20;
  int relay_buffer = 512 << 10;
  std::shared_ptr<ReservationRegistry> reservations;  // shared by the workers of a process
  // The worker's rings in the shared region, and the eventfd the control side rings after
  // pushing commands (the worker waits on it inside its io backend). Optional for tests.
  std::optional<shm::SpscRing> commands;
  std::optional<shm::SpscRing> events;
  int doorbell_fd = -1;
};

class Worker final : public turn::RelayPorts, public io::Handler, public sfu::Output {
 public:
  Worker(WorkerConfig config, turn::ServerConfig server_config, StatsPage& stats);
  ~Worker() override;

  // Starts the thread and waits until its sockets are bound; false with `error` otherwise.
  bool start(std::string& error);
  void request_stop();
  void join();
  // The backend that actually runs (after any fallback) and why.
  const std::string& backend_name() const { return backend_name_; }
  const std::string& backend_detail() const { return backend_detail_; }

  // turn::RelayPorts
  std::optional<Opened> open(const Request& request) override;
  std::optional<turn::RelaySocket> claim(std::uint64_t token) override;
  void close(SocketId id) override;
  bool supports(Family family) const override;
  // io::Handler
  void on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt,
                   io::BufferId id) override;
  void on_wakeup() override;
  bool on_accept(SocketId listener, int fd, const Endpoint& peer) override;
  void on_stream_data(SocketId stream, PacketBuffer& chunk, io::BufferId id) override;
  void on_stream_closed(SocketId stream, int error) override;
  void on_accept_error(SocketId listener, int error) override;
  // The TCP listeners this worker bound (tests ask for port 0 and read the port here).
  const std::vector<Endpoint>& tcp_listeners() const { return tcp_bound_; }
  const std::vector<Endpoint>& tls_listeners() const { return tls_bound_; }
  // sfu::Output
  std::optional<io::BufferId> acquire(PacketBuffer& out) override;
  void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, io::BufferId id) override;
  void release(io::BufferId id) override;
  void event(shm::Event type, std::span<const std::uint8_t> payload) override;

 private:
  enum class Role : std::uint8_t {
    kNone,
    kListener,
    kRelay,
    kMedia,
    kTcpListener,
    kTlsListener,
    kStream
  };
  struct SocketEntry {
    int fd = -1;
    Role role = Role::kNone;
  };
  bool init(std::string& error);
  void run();
  void tick();
  void log_drops();
  void run_commands();
  void emit(shm::Event type, Bytes payload);
  std::optional<SocketId> adopt(int fd, Role role);
  int bind_relay_fd(Family family, std::uint16_t port, bool dont_fragment);
  Endpoint advertised(Family family, std::uint16_t port) const;
  // TURN over TCP (worker_streams.cpp).
  bool init_streams(std::string& error);
  bool open_stream_listeners(const std::vector<Endpoint>& eps, bool optional, Role role,
                             std::vector<Endpoint>& bound, std::string& error);
  // A stream's bytes (plaintext) through the framer to the server; takes the buffer.
  void frame_chunk(turn::Connection& c, PacketBuffer& chunk, io::BufferId id);
  // TURN over TLS: ciphertext in, decrypted into transmit buffers and framed; and ciphertext
  // waiting in the endpoint out onto the stream (under the send cap).
  void tls_input(turn::Connection& c, PacketBuffer& chunk, io::BufferId id);
  void flush_tls(turn::Connection& c);
  void stream_timers();
  // A decision's bytes go out on a UDP socket, or on the stream it names.
  void route(const SendDecision& d, PacketBuffer& pkt, io::BufferId id);
  void send_on_stream(SocketId stream, PacketBuffer& pkt, io::BufferId id);
  void deliver(turn::Connection& c, PacketBuffer& pkt, io::BufferId id);
  void deliver_copy(turn::Connection& c, Bytes frame);
  void doom(turn::Connection& c, turn::CloseReason reason);
  void close_doomed();
  void say_close_notify(turn::Connection& c);
  void close_connection(turn::Connection& c);

  WorkerConfig config_;
  turn::ServerConfig server_config_;
  StatsPage& stats_page_;
  std::unique_ptr<io::Backend> backend_;
  std::unique_ptr<turn::Server> server_;
  std::unique_ptr<sfu::Engine> sfu_;
  std::uint64_t next_sfu_timer_ms_ = 0;
  sfu::Counters sfu_logged_;  // SFU counters as of the last drop log line
  std::string backend_name_;
  std::string backend_detail_;
  std::vector<SocketEntry> sockets_;
  std::deque<std::uint32_t> free_ids_;
  std::uint32_t next_id_ = 0;
  std::uint32_t port_cursor_ = 0;
  int wakeup_fd_ = -1;
  std::atomic<bool> stop_{false};
  turn::PolicyAssembler policy_assembler_;
  std::thread thread_;
  Now now_;
  std::uint64_t next_timer_ms_ = 0;
  std::uint64_t next_publish_ms_ = 0;
  WorkerStats stats_;
  turn::Counters logged_;  // counters as of the last drop log line
  int numa_node_ = -1;
  turn::StreamFramerCounters framer_counters_;
  std::unique_ptr<turn::ConnectionTable> connections_;
  std::vector<SocketId> doomed_;  // connections to close at the end of this turn
  std::vector<Endpoint> tcp_bound_;
  std::vector<Endpoint> tls_bound_;
  std::uint64_t next_stream_timer_ms_ = 0;
};

}  // namespace ringlane
