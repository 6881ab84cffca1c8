#pragma once
// The one seam between the data plane and the kernel's packet I/O. Two implementations:
// `uring` (default) and `mmsg` (fallback and baseline). Workers and protocol code cannot
// tell which one runs.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/shm/io_stats.hpp"

namespace ringlane::io {

// Index of a buffer in the backend's pool. A received buffer belongs to the caller from the
// receive callback until it is passed to send() or release(), exactly once.
struct BufferId {
  std::uint32_t value = 0;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt,
                           BufferId id) = 0;
  // The wakeup eventfd fired (control commands waiting); the backend has drained it.
  virtual void on_wakeup() {}

  // Stream sockets (TURN over TCP), for handlers that add listeners; the defaults refuse.
  // A listener accepted a connection: `fd` is the new non-blocking socket. True: the handler
  // owns it now (add_stream() it, close it after remove_socket()); false: the backend closes it.
  virtual bool on_accept(SocketId listener, int fd, const Endpoint& peer) {
    (void)listener, (void)fd, (void)peer;
    return false;
  }
  // The next bytes of a stream, in order, in a pool buffer the handler owns from here on (as
  // on_datagram's). Only streams added with add_stream() deliver these.
  virtual void on_stream_data(SocketId stream, PacketBuffer& chunk, BufferId id) {
    (void)stream, (void)chunk, (void)id;
  }
  // The peer closed the stream (EOF) or it failed (`error`, an errno; 0 for EOF). Nothing more
  // arrives on it; the handler removes it with remove_socket() and closes the fd.
  virtual void on_stream_closed(SocketId stream, int error) { (void)stream, (void)error; }
  // An accept failed (EMFILE, ENFILE, ...): counted by the handler; the listener goes on.
  virtual void on_accept_error(SocketId listener, int error) { (void)listener, (void)error; }
};

struct BackendOptions {
  std::uint32_t buffers = 4096;  // receive buffers in the pool (a power of two)
  // Transmit buffers beside them, for packets the data plane makes itself (one per SFU
  // subscriber of a received packet, DTLS flights, RTCP): taken with acquire().
  std::uint32_t tx_buffers = 4096;
  std::uint32_t max_sockets = 32768;
  int numa_node = -1;        // allocate the pool on this node; -1 = local
  std::uint32_t batch = 32;  // mmsg: datagrams per recvmmsg/sendmmsg
  // UDP GSO: the datagrams queued in one loop turn from one socket to one destination leave,
  // in their order, as sendmsg calls with UDP_SEGMENT (runs of equal length, the last of a run
  // may be shorter), even when sends to other destinations come in between; the iovecs point
  // at each datagram's own buffer.
  bool gso = false;
  // uring: IORING_OP_SENDMSG_ZC; a buffer returns to the pool on the kernel's notification.
  bool zerocopy = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Starts receiving on a bound, non-blocking UDP socket. The caller keeps the fd and closes
  // it after remove_socket().
  virtual bool add_socket(int fd, SocketId id) = 0;
  virtual void remove_socket(SocketId id) = 0;
  // A bound, listening, non-blocking TCP socket: connections it accepts go to
  // Handler::on_accept (uring: multishot accept, else a plain accept re-armed; mmsg: accept4
  // on epoll). Removed with remove_socket() like a UDP socket.
  virtual bool add_listener(int fd, SocketId id) = 0;
  // A connected, non-blocking stream socket: its bytes go to Handler::on_stream_data (uring:
  // multishot recv on the provided buffers, else a recv re-armed; mmsg: recv on epoll).
  // remove_socket() stops it and drops what is still queued for it.
  virtual bool add_stream(int fd, SocketId id) = 0;
  // Queues the buffer's current view on the stream, after everything queued on it before; the
  // buffer returns to the pool once the kernel took all of it. Short writes are resumed by the
  // backend; the sends of one loop turn go out in its one submit (one sendmsg per stream with
  // the stream's queued buffers as its iovecs).
  virtual void send_stream(SocketId stream, const PacketBuffer& pkt, BufferId id) = 0;
  // Bytes queued on the stream that the kernel has not taken yet (the handler's send cap).
  virtual std::size_t stream_backlog(SocketId stream) const = 0;
  // Watches an eventfd; Handler::on_wakeup runs when it becomes readable.
  virtual void set_wakeup_fd(int fd) = 0;
  // Waits up to timeout_ms for input and hands every datagram to the handler. Sends queued
  // since the last call are submitted first. Returns the datagrams delivered.
  virtual int poll(int timeout_ms, Handler& handler) = 0;
  // Queues the buffer's current view to be sent; the buffer returns to the pool afterwards.
  virtual void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, BufferId id) = 0;
  virtual void release(BufferId id) = 0;
  // A free transmit buffer, its view empty with at least kPacketHeadroom in front and room for
  // a full datagram behind; nullopt (counted in tx_exhausted) when all are in flight. It goes
  // back through send() or release(), like a received one.
  virtual std::optional<BufferId> acquire(PacketBuffer& out) = 0;
  // Pushes queued sends to the kernel now.
  virtual void flush() = 0;
  virtual const BackendStats& stats() const = 0;
};

// Creates the uring backend, or returns nullptr with `why` set when io_uring (or a feature it
// needs: provided-buffer rings, multishot recvmsg) is unavailable here.
std::unique_ptr<Backend> make_uring_backend(const BackendOptions& options, std::string& why);
std::unique_ptr<Backend> make_mmsg_backend(const BackendOptions& options, std::string& why);

}  // namespace ringlane::io
