#pragma once
// The TURN-over-TCP connections of one worker (RFC 8656 §3.1): a fixed-capacity table, each
// connection with its StreamFramer, the per-IP and total limits, and the timers that close
// hostile or abandoned connections. Sans-I/O: the worker owns the sockets, tells the table
// what happened and closes what the table names.
//
// What a connection's end means (RFC 8656 §3.1, as RFC 6062 §4.1 has it for the control
// connection): the allocation made over a TCP connection lives only as long as it. When the
// client closes it, or the worker does (a limit, a timeout, a stream out of sync), the
// allocation is deleted at once, its relay port freed and its quota returned.
//
// TURN over TLS (`turns:`) is the same connection with a crypto::TlsEndpoint between the
// socket and the framer (ciphertext in and out of memory BIOs, driven by the worker). The
// handshake counts towards the handshake timeout: the first STUN message is due that soon after
// the accept, TLS handshake included.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/tls.hpp"
#include "ringlane/dataplane/packet.hpp"
#include "ringlane/dataplane/turn/stream_framer.hpp"
#include "ringlane/shm/stream_counters.hpp"

namespace ringlane::turn {

struct ConnectionLimits {
  std::uint32_t max_connections = 4096;  // per worker
  std::uint32_t max_per_ip = 64;         // per source IP, across the workers of a process
  // New connections per source IP per second (bursts of twice that), across the workers: a
  // client that opens and closes connections in a loop (a TLS ClientHello flood costs a key
  // exchange and a signature each) is refused past it. 0 = unlimited.
  std::uint32_t accept_rate = 50;
  // Slowloris: the first complete STUN message must arrive this soon after the accept, and no
  // frame may stay partial for longer.
  std::uint32_t handshake_timeout_ms = 10'000;
  // A connection without an allocation that receives nothing for this long is closed.
  std::uint32_t idle_timeout_ms = 60'000;
  // Bytes queued towards one client that the kernel has not taken yet; past it the client is
  // not reading, and is disconnected.
  std::uint32_t send_cap_bytes = 256 * 1024;
  // The largest frame accepted on a stream (headers included): it must fit a packet buffer.
  std::size_t max_frame = 1916;
};

// Connections per source IP across workers, and the rate at which each IP opens them (a token
// bucket per IP). Touched on accept and close only, never on the packet path, so a mutex is
// fine (as for UserQuota).
class ConnectionsPerIp {
 public:
  enum class Acquire : std::uint8_t { kOk, kLimit, kRate };
  // `limit` open connections at most (0 = unlimited); `rate` new ones per second with bursts
  // of 2 * rate (0 = unlimited).
  Acquire acquire(const IpAddress& ip, std::uint32_t limit, std::uint32_t rate,
                  std::uint64_t now_ms);
  void release(const IpAddress& ip);
  std::uint32_t count(const IpAddress& ip) const;
  // IPs remembered: with connections open, or a bucket not yet full again.
  std::size_t tracked() const;

 private:
  struct Entry {
    std::uint32_t open = 0;
    std::uint64_t tokens_milli = 0;  // thousandths of a connection
    std::uint64_t at_ms = 0;         // when tokens_milli was last brought up to date
  };
  // Forgets the IPs with nothing open whose bucket has refilled (they are as new ones).
  void sweep(std::uint32_t rate, std::uint64_t now_ms);
  mutable std::mutex mutex_;
  std::unordered_map<IpAddress, Entry, IpAddressHash> entries_;
  std::size_t sweep_at_ = 1024;  // the table size that triggers the next sweep
};

enum class CloseReason : std::uint8_t {
  kPeer,       // EOF or error from the client
  kStream,     // the framer gave up (garbage, oversized length)
  kHandshake,  // no first message in time, or a frame left partial
  kIdle,       // no allocation, nothing received
  kSendCap,    // the client does not read
  kShutdown,
};

struct Connection {
  SocketId id;
  Endpoint peer;
  StreamFramer framer;
  std::uint64_t accepted_ms = 0;
  std::uint64_t last_input_ms = 0;
  bool got_stun = false;                     // a complete STUN message arrived
  std::optional<CloseReason> doomed;         // to be closed at the end of this turn
  std::unique_ptr<crypto::TlsEndpoint> tls;  // TURN over TLS; null on plain TCP
};

class ConnectionTable {
 public:
  ConnectionTable(ConnectionLimits limits, std::shared_ptr<ConnectionsPerIp> per_ip,
                  StreamFramerCounters& framer_counters, StreamCounters& counters);
  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  enum class Admit : std::uint8_t { kOk, kTotal, kPerIp, kRate };
  // Whether a new connection from `peer` may come in; a refusal is counted. On kOk the caller
  // must insert() it (or give the slot back with refund()).
  Admit admit(const Endpoint& peer, std::uint64_t now_ms);
  void refund(const Endpoint& peer);
  Connection& insert(SocketId id, const Endpoint& peer, std::uint64_t now_ms,
                     std::unique_ptr<crypto::TlsEndpoint> tls = nullptr);
  Connection* find(SocketId id);
  // Forgets the connection and gives its per-IP slot back.
  void erase(SocketId id);

  // Connections whose time is up, with why (counted here); `has_allocation(c)` spares a
  // connection from the idle timeout. The caller closes them.
  template <typename HasAllocation, typename Close>
  void expire(std::uint64_t now_ms, HasAllocation&& has_allocation, Close&& close);
  // Every connection, for shutdown.
  template <typename F>
  void for_each(F&& f) {
    for (auto& c : slots_) {
      if (c) {
        f(*c);
      }
    }
  }

  std::size_t size() const { return live_; }
  const ConnectionLimits& limits() const { return limits_; }
  StreamFramerCounters& framer_counters() { return *framer_counters_; }
  StreamCounters& counters() { return *counters_; }
  // Copies the framer's counts into the published counters.
  void publish_framer_counts();

 private:
  ConnectionLimits limits_;
  std::shared_ptr<ConnectionsPerIp> per_ip_;
  StreamFramerCounters* framer_counters_;
  StreamCounters* counters_;
  std::vector<std::unique_ptr<Connection>> slots_;  // by SocketId value
  std::size_t live_ = 0;
  std::size_t reserved_ = 0;  // admitted, not yet inserted
};

template <typename HasAllocation, typename Close>
void ConnectionTable::expire(std::uint64_t now_ms, HasAllocation&& has_allocation, Close&& close) {
  for (auto& slot : slots_) {
    if (!slot || slot->doomed) {
      continue;
    }
    Connection& c = *slot;
    std::uint64_t handshake = limits_.handshake_timeout_ms;
    bool slow_first = !c.got_stun && now_ms >= c.accepted_ms + handshake;
    bool slow_frame = now_ms >= handshake && c.framer.partial_waiting_since(now_ms - handshake);
    if (slow_first || slow_frame) {
      ++counters_->handshake_timeouts;
      if (c.tls && c.tls->state() == crypto::TlsState::kHandshaking) {
        ++counters_->tls_handshake_timeouts;  // a ClientHello that stalls, or a half-open one
      }
      c.doomed = CloseReason::kHandshake;
    } else if (now_ms >= c.last_input_ms + limits_.idle_timeout_ms && !has_allocation(c)) {
      ++counters_->idle_timeouts;
      c.doomed = CloseReason::kIdle;
    } else {
      continue;
    }
    close(c);
  }
}

}  // namespace ringlane::turn
