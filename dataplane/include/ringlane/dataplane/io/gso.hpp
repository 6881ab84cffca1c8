#pragma once
// Grouping of queued sends for UDP GSO, shared by both backends: the datagrams from one
// socket to one destination queued in one loop turn become GSO sends (sendmsg with
// UDP_SEGMENT), each a run of equal-length datagrams that may end with one shorter datagram,
// in the order they were queued. An SFU's fan-out interleaves destinations (packet 1 to A, B,
// C, then packet 2 to A, B, C), so grouping looks past other destinations' sends; what it
// never does is let a datagram overtake an earlier one to the same destination.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane::io {

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

// A full socket buffer (EAGAIN, ENOBUFS) is not a refusal: the datagrams are dropped and
// counted, as single sends would have been; resending them would put them behind later ones.
inline bool gso_refusal(int error) {
  return error != EAGAIN && error != ENOBUFS;
}

// A GSO send the kernel refused: EINVAL when a segment exceeds the path MTU (a plain send
// would have been fragmented), EIO where the path cannot offload checksums (xfrm, some older
// kernels). The caller resends its datagrams one by one; after EIO, GSO stays off.
inline void note_gso_refused(int error, bool& gso_enabled, BackendStats& stats) {
  if (error == EIO && gso_enabled) {
    gso_enabled = false;
    spdlog::warn("UDP GSO refused by the kernel (EIO): sending datagrams one by one from now on");
  }
  ++stats.gso_fallbacks;
}

// Whether a run of `count` datagrams (`bytes` in all, the last `last` long) cut at `segment`
// takes one more of `length`: the kernel cuts a GSO send into segments of gso_size and lets
// only the last be shorter (udp_send_skb), so a run goes on while lengths equal the first and
// ends with the first shorter one. Both limits are the kernel's: UDP_MAX_SEGMENTS (64 on the
// kernels that allow the fewest) and an IP datagram's 64 KiB.
constexpr std::uint32_t kGsoMaxSegments = 64;
constexpr std::uint32_t kGsoMaxBytes = 65000;
constexpr bool gso_run_takes(std::uint32_t segment, std::uint32_t count, std::uint32_t bytes,
                             std::uint32_t last, std::uint32_t length, std::uint32_t limit) {
  return count > 0 && last == segment && length > 0 && length <= segment && count < limit &&
         count < kGsoMaxSegments && bytes + length <= kGsoMaxBytes;
}

class GsoGroup {
 public:
  static constexpr std::uint32_t kMaxSegments = kGsoMaxSegments;

  void start(std::uint32_t socket, const Endpoint& to, std::uint8_t* data, std::uint32_t length,
             std::uint32_t buffer) {
    socket_ = socket;
    to_ = to;
    segment_ = length;
    count_ = 0;
    bytes_ = 0;
    add(data, length, buffer);
  }
  bool accepts(std::uint32_t socket, const Endpoint& to, std::uint32_t length) const {
    return count_ > 0 && socket == socket_ &&
           gso_run_takes(segment_, count_, bytes_, last_, length, limit_) && to == to_;
  }
  void add(std::uint8_t* data, std::uint32_t length, std::uint32_t buffer) {
    iov_[count_].iov_base = data;
    iov_[count_].iov_len = length;
    buffers_[count_] = buffer;
    ++count_;
    bytes_ += length;
    last_ = length;
  }
  // The message to hand to sendmsg; valid while the group is not changed.
  msghdr* message() {
    msg_ = msghdr{};
    msg_.msg_name = &addr_;
    msg_.msg_namelen = to_sockaddr(to_, addr_);
    msg_.msg_iov = iov_;
    msg_.msg_iovlen = count_;
    if (count_ > 1) {
      msg_.msg_control = control_;
      msg_.msg_controllen = sizeof(control_);
      cmsghdr* c = CMSG_FIRSTHDR(&msg_);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      auto seg = static_cast<std::uint16_t>(segment_);
      std::memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    }
    return &msg_;
  }
  void set_limit(std::uint32_t segments) {
    limit_ = segments < kMaxSegments ? segments : kMaxSegments;
  }
  std::uint32_t socket() const { return socket_; }
  std::uint32_t count() const { return count_; }
  std::uint32_t buffer(std::uint32_t i) const { return buffers_[i]; }
  std::uint8_t* data(std::uint32_t i) const { return static_cast<std::uint8_t*>(iov_[i].iov_base); }
  std::uint32_t length(std::uint32_t i) const {
    return static_cast<std::uint32_t>(iov_[i].iov_len);
  }
  const Endpoint& destination() const { return to_; }
  void clear() { count_ = 0; }

 private:
  std::uint32_t socket_ = 0;
  std::uint32_t segment_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t bytes_ = 0;
  std::uint32_t last_ = 0;
  std::uint32_t limit_ = kMaxSegments;
  Endpoint to_;
  msghdr msg_{};
  sockaddr_in6 addr_{};
  iovec iov_[kMaxSegments];
  std::uint32_t buffers_[kMaxSegments];
  alignas(cmsghdr) char control_[CMSG_SPACE(sizeof(std::uint16_t))];
};

// A per-turn map from (socket, destination) to a small int, for grouping sends by
// destination: open addressing in a table sized once, cleared by the slots it used, so a
// lookup costs a hash and no allocation. Entries stay in the order they were made, and every
// entry stays until clear(), whatever its value: emptying a slot mid-turn would cut the probe
// chain of the entries placed past it, so one of those destinations would look absent and get
// a second group beside its open one, to leave before it (the first per-destination grouping
// did that and delivered datagrams out of order).
class DestinationTable {
 public:
  static constexpr int kNone = -1;

  // Room for `destinations` entries per turn (the table is twice that, a power of two).
  explicit DestinationTable(std::size_t destinations = 0) { reserve(destinations); }
  void reserve(std::size_t destinations) {
    std::size_t n = 16;
    while (n < 2 * destinations) {
      n *= 2;
    }
    slots_.assign(n, Slot{});
    used_.clear();
    used_.reserve(n / 2);
  }

  // The value kept for (socket, to), kNone when made by this call; nullptr when the table
  // already holds as many destinations as it was sized for (the caller clears it and retries).
  int* find(std::uint32_t socket, const Endpoint& to) {
    std::size_t mask = slots_.size() - 1;
    std::uint64_t h = (EndpointHash{}(to) ^ (std::uint64_t{socket} << 40)) * 0x9E3779B97F4A7C15ull;
    for (std::size_t i = (h >> 20) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (!s.used) {
        if (used_.size() * 2 >= slots_.size()) {
          return nullptr;
        }
        s = Slot{true, socket, to, kNone};
        used_.push_back(static_cast<std::uint32_t>(i));
        return &s.value;
      }
      if (s.socket == socket && s.to == to) {
        return &s.value;
      }
    }
  }
  std::size_t size() const { return used_.size(); }
  // The k-th entry made this turn.
  int& value(std::size_t k) { return slots_[used_[k]].value; }
  void clear() {
    for (std::uint32_t i : used_) {
      slots_[i].used = false;
    }
    used_.clear();
  }

 private:
  struct Slot {
    bool used = false;
    std::uint32_t socket = 0;
    Endpoint to;
    int value = kNone;
  };
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> used_;
};

}  // namespace ringlane::io
