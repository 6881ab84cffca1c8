// TURN over TCP and TLS on the worker (RFC 8656 §3.1): the listeners, the connection table,
// framing with StreamFramer, and the way back (replies, Data indications, ChannelData) onto the
// stream. A TLS connection's bytes go through its crypto::TlsEndpoint before the framer, and
// everything sent on it through the endpoint into transmit buffers before the backend.
// The allocation of a TCP client is keyed by its connection's SocketId and its address, so
// the 5-tuple includes the transport; it is deleted when the connection closes
// (turn/connections.hpp says why).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "ringlane/common/log.hpp"
#include "ringlane/dataplane/io/buffer_pool.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"
#include "ringlane/dataplane/worker.hpp"

namespace ringlane {
namespace {

// The largest frame a transmit buffer holds with the backends' room in front (2 x headroom)
// and the ChannelData padding behind.
constexpr std::size_t kMaxStreamFrame = io::BufferPool::kSlotSize - 2 * kPacketHeadroom - 4;
constexpr int kListenBacklog = 1024;
// How often the connection timers are looked at: the granularity of the timeouts.
constexpr std::uint64_t kStreamTimerMs = 100;

int open_tcp_listener(const Endpoint& ep) {
  int fd = socket(ep.family() == Family::kV4 ? AF_INET : AF_INET6,
                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (ep.family() == Family::kV6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  sockaddr_in6 sa{};
  socklen_t len = io::to_sockaddr(ep, sa);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || listen(fd, kListenBacklog) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

Endpoint bound_address(int fd) {
  sockaddr_in6 sa{};
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return io::from_sockaddr(reinterpret_cast<sockaddr*>(&sa));
}

}  // namespace

bool Worker::init_streams(std::string& error) {
  turn::ConnectionLimits limits = config_.tcp_limits;
  limits.max_frame = std::min(limits.max_frame, kMaxStreamFrame);
  connections_ = std::make_unique<turn::ConnectionTable>(limits, config_.tcp_per_ip,
                                                         framer_counters_, stats_.tcp);
  if (!open_stream_listeners(config_.listen_tcp, config_.listen_tcp_optional, Role::kTcpListener,
                             tcp_bound_, error)) {
    return false;
  }
  // TURN over TLS only with a certificate (the dataplane refuses --listen-tls without one).
  return !config_.tls || open_stream_listeners(config_.listen_tls, config_.listen_tls_optional,
                                               Role::kTlsListener, tls_bound_, error);
}

bool Worker::open_stream_listeners(const std::vector<Endpoint>& eps, bool optional, Role role,
                                   std::vector<Endpoint>& bound, std::string& error) {
  std::string tag = "worker " + std::to_string(config_.index);
  const char* kind = role == Role::kTlsListener ? "TLS" : "TCP";
  for (const auto& ep : eps) {
    int fd = open_tcp_listener(ep);
    if (fd < 0) {
      std::string why = std::strerror(errno);
      if (optional) {
        if (config_.index == 0) {
          spdlog::warn("TURN over {} not on {}: {}", kind, ep.to_string(), why);
        }
        continue;
      }
      error = tag + ": cannot listen on " + kind + " " + ep.to_string() + ": " + why;
      return false;
    }
    Endpoint at = bound_address(fd);
    if (!adopt(fd, role)) {
      ::close(fd);
      error = tag + ": cannot register " + kind + " listener " + ep.to_string();
      return false;
    }
    bound.push_back(at);
  }
  return true;
}

bool Worker::on_accept(SocketId listener, int fd, const Endpoint& peer) {
  Role role = sockets_[listener.value].role;
  if (role != Role::kTcpListener && (role != Role::kTlsListener || !config_.tls)) {
    return false;
  }
  if (connections_->admit(peer, now_.mono_ms) != turn::ConnectionTable::Admit::kOk) {
    return false;  // counted; the backend closes it
  }
  // Media over TCP: a ChannelData message waits for nothing (Nagle would hold it for an ACK).
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto id = adopt(fd, Role::kStream);
  if (!id) {
    connections_->refund(peer);
    ++stats_.tcp.refused_total;
    return false;
  }
  std::unique_ptr<crypto::TlsEndpoint> tls;
  if (role == Role::kTlsListener) {
    // The context's current certificate: one reloaded on SIGHUP serves connections from here.
    tls = std::make_unique<crypto::TlsEndpoint>(*config_.tls);
  }
  connections_->insert(*id, peer, now_.mono_ms, std::move(tls));
  return true;
}

void Worker::on_accept_error(SocketId, int error) {
  ++stats_.tcp.accept_errors;
  (void)error;
}

void Worker::on_stream_data(SocketId stream, PacketBuffer& chunk, io::BufferId id) {
  turn::Connection* c = connections_->find(stream);
  if (c == nullptr || c->doomed) {
    backend_->release(id);
    return;
  }
  stats_.tcp.bytes_in += chunk.length;
  c->last_input_ms = now_.mono_ms;
  if (c->tls) {
    tls_input(*c, chunk, id);
  } else {
    frame_chunk(*c, chunk, id);
  }
}

void Worker::frame_chunk(turn::Connection& conn, PacketBuffer& chunk, io::BufferId id) {
  turn::Connection* c = &conn;
  c->framer.push(chunk.bytes(), now_.mono_ms);
  bool kept = false;
  // A frame whole in the chunk is a view into it; the server edits what it is handed in place
  // and the backend sends from it, so every frame but the chunk's last ChannelData is copied
  // into a transmit buffer first, and that last one is relayed from the receive buffer itself.
  auto f = c->framer.next();
  while (f && !c->doomed) {
    if (f->kind == turn::FrameKind::kStun) {
      c->got_stun = true;
    }
    if (f->kind == turn::FrameKind::kChannelData && !f->reassembled) {
      auto g = c->framer.next();  // a view stays valid past next(); a reassembled one does not
      if (!g) {
        chunk.narrow(static_cast<std::uint32_t>(f->bytes.data() - chunk.data()),
                     static_cast<std::uint32_t>(f->bytes.size()));
        ++stats_.tcp.zero_copy_frames;
        kept = true;
        deliver(*c, chunk, id);
        break;
      }
      deliver_copy(*c, f->bytes);
      f = g;
      continue;
    }
    deliver_copy(*c, f->bytes);
    f = c->framer.next();
  }
  if (c->framer.failed() && !c->doomed) {
    // Garbage, or a length past the frame limit: the stream is out of sync for good (counted
    // by reason in the framer counters).
    doom(*c, turn::CloseReason::kStream);
  }
  if (!kept) {
    backend_->release(id);
  }
}

void Worker::tls_input(turn::Connection& c, PacketBuffer& chunk, io::BufferId id) {
  crypto::TlsEndpoint& tls = *c.tls;
  bool was_handshaking = tls.state() == crypto::TlsState::kHandshaking;
  tls.feed(chunk.bytes());
  backend_->release(id);
  if (was_handshaking && tls.established()) {
    ++stats_.tcp.tls_handshakes;
  }
  flush_tls(c);  // the handshake's flights (or an alert)
  // TLS necessarily copies: each read decrypts into a transmit buffer, which then goes through
  // the framer as a received chunk would (and its last ChannelData is relayed from it).
  while (tls.established() && !c.doomed) {
    PacketBuffer plain;
    auto bid = backend_->acquire(plain);
    if (!bid) {
      // The plaintext waits in the endpoint for the next chunk of this stream.
      ++stats_.tcp.no_buffer;
      break;
    }
    std::size_t n = tls.read({plain.data(), plain.tailroom()});
    if (n == 0) {
      backend_->release(*bid);
      break;
    }
    plain.length = static_cast<std::uint32_t>(n);
    frame_chunk(c, plain, *bid);
  }
  if (c.doomed) {
    return;
  }
  if (tls.state() == crypto::TlsState::kFailed) {
    // A ClientHello we refuse, bytes that are no TLS (a plain-TCP client on the TLS port), or
    // a record that does not decrypt: counted, and the connection closed.
    if (!was_handshaking) {
      ++stats_.tcp.tls_failures;
    } else if (tls.old_protocol()) {
      ++stats_.tcp.tls_old_protocol;  // TLS 1.0/1.1 (coturn's uclient tries them at random)
    } else {
      ++stats_.tcp.tls_handshake_failures;
    }
    flush_tls(c);
    doom(c, turn::CloseReason::kStream);
  } else if (tls.state() == crypto::TlsState::kClosed) {
    ++stats_.tcp.tls_closed_by_peer;
    doom(c, turn::CloseReason::kPeer);
  }
}

void Worker::flush_tls(turn::Connection& c) {
  crypto::TlsEndpoint& tls = *c.tls;
  while (tls.pending() > 0 && !c.doomed) {
    PacketBuffer out;
    auto bid = backend_->acquire(out);
    if (!bid) {
      // Stays queued in the endpoint, in order, until the next flush (and counts towards the
      // send cap meanwhile).
      ++stats_.tcp.no_buffer;
      return;
    }
    std::size_t n = tls.take({out.data(), out.tailroom()});
    out.length = static_cast<std::uint32_t>(n);
    // The send cap is on the ciphertext backlog: what the backend holds plus what waits here.
    if (backend_->stream_backlog(c.id) + tls.pending() + n >
        connections_->limits().send_cap_bytes) {
      ++stats_.tcp.send_cap_closed;
      backend_->release(*bid);
      doom(c, turn::CloseReason::kSendCap);
      return;
    }
    stats_.tcp.bytes_out += n;
    backend_->send_stream(c.id, out, *bid);
  }
}

void Worker::deliver_copy(turn::Connection& c, Bytes frame) {
  PacketBuffer out;
  auto bid = backend_->acquire(out);
  if (!bid) {
    ++stats_.tcp.no_buffer;
    return;
  }
  // Fits: frames are bounded by kMaxStreamFrame.
  out.assign(frame);
  ++stats_.tcp.frame_copies;
  deliver(c, out, *bid);
}

void Worker::deliver(turn::Connection& c, PacketBuffer& pkt, io::BufferId id) {
  SendDecision d = server_->on_client_packet(c.id, c.peer, pkt, now_);
  if (d.send) {
    route(d, pkt, id);
  } else {
    backend_->release(id);
  }
}

void Worker::send_on_stream(SocketId stream, PacketBuffer& pkt, io::BufferId id) {
  turn::Connection* c = connections_->find(stream);
  if (c == nullptr || c->doomed) {
    backend_->release(id);
    return;
  }
  // RFC 8656 §12.5: over TCP a ChannelData message is padded to a multiple of 4 bytes (STUN
  // messages always are one).
  if ((pkt.data()[0] & 0xC0) == 0x40) {
    std::uint32_t pad = (4 - pkt.length % 4) % 4;
    if (pkt.tailroom() < pad) {
      ++stats_.tcp.no_room;
      backend_->release(id);
      return;
    }
    std::memset(pkt.data() + pkt.length, 0, pad);
    pkt.length += pad;
  }
  if (c->tls) {
    // One TLS record per frame, encrypted into transmit buffers by flush_tls().
    bool written = c->tls->write(pkt.bytes());
    backend_->release(id);
    if (!written) {
      ++stats_.tcp.tls_write_refused;
      return;
    }
    flush_tls(*c);
    return;
  }
  // A client that does not read: its bytes pile up here once the kernel's buffers are full.
  // Past the cap it is disconnected, so that it holds no more of the worker's buffers.
  if (backend_->stream_backlog(stream) + pkt.length > connections_->limits().send_cap_bytes) {
    ++stats_.tcp.send_cap_closed;
    backend_->release(id);
    doom(*c, turn::CloseReason::kSendCap);
    return;
  }
  stats_.tcp.bytes_out += pkt.length;
  backend_->send_stream(stream, pkt, id);
}

void Worker::on_stream_closed(SocketId stream, int) {
  turn::Connection* c = connections_->find(stream);
  if (c == nullptr) {
    return;
  }
  if (!c->doomed) {
    ++stats_.tcp.closed_by_peer;
    doom(*c, turn::CloseReason::kPeer);
  }
}

void Worker::doom(turn::Connection& c, turn::CloseReason reason) {
  if (!c.doomed) {
    c.doomed = reason;
    doomed_.push_back(c.id);
  }
}

void Worker::stream_timers() {
  if (now_.mono_ms >= next_stream_timer_ms_) {
    next_stream_timer_ms_ = now_.mono_ms + kStreamTimerMs;
    connections_->expire(
        now_.mono_ms,
        [&](const turn::Connection& c) { return server_->has_allocation(c.id, c.peer); },
        [&](turn::Connection& c) { doomed_.push_back(c.id); });
  }
  close_doomed();
}

void Worker::close_doomed() {
  for (std::size_t i = 0; i < doomed_.size(); ++i) {
    if (turn::Connection* c = connections_->find(doomed_[i])) {
      close_connection(*c);
    }
  }
  doomed_.clear();
}

void Worker::say_close_notify(turn::Connection& c) {
  // RFC 8446 §6.1: a close of ours is announced, so the client tells it from a truncation.
  // Only when nothing else waits to go out on the stream (the alert must come last), and
  // written straight to the socket without waiting: it is one small record, on a close.
  if (backend_->stream_backlog(c.id) != 0 || c.tls->pending() != 0) {
    return;
  }
  c.tls->close();
  std::array<std::uint8_t, 256> alert;
  std::size_t n = c.tls->take(alert);
  if (n != 0 && c.tls->pending() == 0 &&
      ::send(sockets_[c.id.value].fd, alert.data(), n, MSG_DONTWAIT | MSG_NOSIGNAL) ==
          static_cast<ssize_t>(n)) {
    ++stats_.tcp.tls_close_notify_sent;
  }
}

void Worker::close_connection(turn::Connection& c) {
  // RFC 8656 §3.1 (RFC 6062 §4.1): the allocation lives as long as its connection.
  if (server_->close_transport(c.id, c.peer)) {
    ++stats_.tcp.allocations_closed;
  }
  if (c.tls && c.tls->established() && c.doomed != turn::CloseReason::kPeer &&
      c.doomed != turn::CloseReason::kSendCap) {
    say_close_notify(c);
  }
  SocketId id = c.id;
  connections_->erase(id);
  close(id);
}

}  // namespace ringlane
