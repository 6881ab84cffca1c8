#pragma once
// The unit the data plane moves: a slot of a buffer pool holding one datagram, with room in
// front (headroom) for TURN headers to be prepended in place, and a socket id naming where it
// came from or goes to. No socket headers here: protocol code includes this.
#include <cstdint>
#include <cstring>

#include "ringlane/common/bytes.hpp"
#include "ringlane/common/endpoint.hpp"

namespace ringlane {

// Index of a socket in its worker's socket table.
struct SocketId {
  std::uint32_t value = UINT32_MAX;
  bool valid() const { return value != UINT32_MAX; }
  bool operator==(const SocketId&) const = default;
};

// The least headroom every io backend leaves in front of a received payload: enough for a
// TURN Data indication header carrying an IPv6 peer (20 + 24 + 4 = 48 bytes), rounded up.
inline constexpr std::uint32_t kPacketHeadroom = 64;

struct PacketBuffer {
  std::uint8_t* base = nullptr;  // start of the slot
  std::uint32_t capacity = 0;    // bytes in the slot
  std::uint32_t offset = 0;      // where the datagram starts
  std::uint32_t length = 0;      // datagram length

  std::uint8_t* data() const { return base + offset; }
  MutableBytes bytes() const { return {base + offset, length}; }
  std::uint32_t headroom() const { return offset; }
  std::uint32_t tailroom() const { return capacity - offset - length; }
  // Grows the datagram at the front; false (and no change) when the headroom is too small.
  bool prepend(std::uint32_t n) {
    if (offset < n) {
      return false;
    }
    offset -= n;
    length += n;
    return true;
  }
  // Narrows the datagram to [from, from + len) of its current bytes.
  void narrow(std::uint32_t from, std::uint32_t len) {
    offset += from;
    length = len;
  }
  // Replaces the contents with `src` at the current offset; false when it would not fit.
  bool assign(Bytes src) {
    if (src.size() > capacity - offset) {
      return false;
    }
    std::memmove(base + offset, src.data(), src.size());
    length = static_cast<std::uint32_t>(src.size());
    return true;
  }
};

// What the protocol core wants done with a packet it was handed.
struct SendDecision {
  bool send = false;
  SocketId socket;  // send from this socket
  Endpoint to;      // to this address; the bytes are the PacketBuffer's current view
};

// Time as the protocol cores see it: a monotonic clock for lifetimes and the wall clock for
// credentials that carry a Unix expiry (TURN REST).
struct Now {
  std::uint64_t mono_ms = 0;
  std::int64_t unix_s = 0;
  // The same monotonic instant in microseconds (0 when only milliseconds are known): arrival
  // and send times for congestion control need finer steps than a millisecond.
  std::int64_t mono_us = 0;
  std::int64_t us() const {
    return mono_us != 0 ? mono_us : static_cast<std::int64_t>(mono_ms) * 1000;
  }
};

}  // namespace ringlane
