#pragma once
// Grouping of queued sends for UDP GSO, shared by both backends: consecutive datagrams from
// one socket to one destination with the same length become one sendmsg with UDP_SEGMENT.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/common/log.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

namespace ringlane::io {

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

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

class GsoGroup {
 public:
  // The kernel segments at most 64 datagrams of one send (UDP_MAX_SEGMENTS).
  static constexpr std::uint32_t kMaxSegments = 64;
  static constexpr std::uint32_t kMaxBytes = 65000;

  void start(std::uint32_t socket, const Endpoint& to, std::uint8_t* data, std::uint32_t length,
             std::uint32_t buffer) {
    socket_ = socket;
    to_ = to;
    segment_ = length;
    count_ = 0;
    add(data, length, buffer);
  }
  bool accepts(std::uint32_t socket, const Endpoint& to, std::uint32_t length) const {
    return count_ > 0 && socket == socket_ && length == segment_ && count_ < limit_ &&
           (count_ + 1) * segment_ <= kMaxBytes && to == to_;
  }
  void add(std::uint8_t* data, std::uint32_t length, std::uint32_t buffer) {
    iov_[count_].iov_base = data;
    iov_[count_].iov_len = length;
    buffers_[count_] = buffer;
    ++count_;
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
  std::uint32_t limit_ = kMaxSegments;
  Endpoint to_;
  msghdr msg_{};
  sockaddr_in6 addr_{};
  iovec iov_[kMaxSegments];
  std::uint32_t buffers_[kMaxSegments];
  alignas(cmsghdr) char control_[CMSG_SPACE(sizeof(std::uint16_t))];
};

}  // namespace ringlane::io
