// io_uring backend: one multishot recvmsg per socket drawing from one provided-buffer ring,
// sends prepared as SQEs and submitted together with the wait, once per loop turn.
//
// Order: every send SQE carries MSG_DONTWAIT, so the kernel issues it inline or fails it with
// EAGAIN (counted in send_errors, as a non-blocking sendmsg and mmsg's sendmmsg do). Without
// it a send that would block is parked on a poll and retried later, after SQEs queued behind
// it that went out at once: a destination's datagrams then arrive out of order. With every
// send issued inline in SQE order, SQE order is wire order.
//
// Streams (TURN over TCP) differ: a stream has at most one sendmsg in flight, carrying its
// queued buffers as iovecs, without MSG_DONTWAIT (the kernel waits for room itself); a short
// write is resumed from where it stopped, so order holds by construction. Connections come from
// a multishot accept, bytes from a multishot recv on the same provided-buffer ring as the
// datagrams; where the kernel refuses either (-EINVAL), the one-shot op is re-armed instead.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "accept_rest.hpp"
#include "ringlane/dataplane/io/backend.hpp"
#include "ringlane/dataplane/io/buffer_pool.hpp"
#include "ringlane/dataplane/io/gso.hpp"
#include "ringlane/dataplane/io/sockaddr.hpp"

// Kernel 6.2 UAPI, newer than liburing 2.3's header: ask zero-copy sends to report whether
// the kernel had to copy after all.
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

namespace ringlane::io {
namespace {

// Bytes kept in front of what the kernel writes (io_uring_recvmsg_out, then the source
// address, then the payload), so that the payload ends up with room for TURN headers.
constexpr std::uint32_t kReserve = 64;
// The payload lands after the reserve, io_uring_recvmsg_out and a sockaddr_in6.
static_assert(kReserve + sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_in6) >= kPacketHeadroom);
constexpr std::uint16_t kBufferGroup = 1;
// Where a transmit buffer's datagram starts: the same room in front as a received one has.
constexpr std::uint32_t kTxOffset = 128;
static_assert(kTxOffset >= kPacketHeadroom);
constexpr unsigned kSqEntries = 2048;
constexpr unsigned kCqEntries = 16384;

enum Op : std::uint64_t {
  kRecv = 1,
  kSend = 2,
  kWake = 3,
  kCancel = 4,
  kSendGroup = 5,
  kAccept = 6,
  kStreamRecv = 7,
  kStreamSend = 8,
};
constexpr std::uint32_t kGroups = 512;
enum class SocketState : std::uint8_t { kFree, kActive, kDraining };
enum class SocketKind : std::uint8_t { kDatagram, kListener, kStream };
// Buffers one stream sendmsg carries at most.
constexpr std::size_t kStreamIov = 32;

constexpr std::uint64_t pack(Op op, std::uint32_t socket, std::uint32_t buffer) {
  return (std::uint64_t{op} << 56) | (std::uint64_t{socket & 0xFFFFFF} << 32) | buffer;
}

bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) {
    return false;
  }
  int ma = 0;
  int mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) {
    return false;
  }
  return ma > major || (ma == major && mi >= minor);
}

class UringBackend final : public Backend {
 public:
  explicit UringBackend(const BackendOptions& o)
      : options_(o), pool_(o.buffers + o.tx_buffers, o.numa_node) {}

  ~UringBackend() override {
    if (ring_ready_) {
      io_uring_queue_exit(&ring_);
    }
    if (buf_ring_ != nullptr) {
      munmap(buf_ring_, buf_ring_bytes_);
    }
  }

  bool init(std::string& why) {
    if (!pool_.ok()) {
      why = "cannot allocate the buffer pool";
      return false;
    }
    if ((options_.buffers & (options_.buffers - 1)) != 0 || options_.buffers > 32768) {
      why = "buffer count must be a power of two up to 32768";
      return false;
    }
    // Multishot recvmsg arrived in Linux 6.0; provided-buffer rings in 5.19.
    if (!kernel_at_least(6, 0)) {
      why = "kernel older than 6.0 (no multishot recvmsg)";
      return false;
    }
    // Try the cheapest completion mode first; older kernels refuse the newer flags.
    const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int r = -EINVAL;
    for (unsigned flags : flag_sets) {
      io_uring_params p{};
      p.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
      p.cq_entries = kCqEntries;
      r = io_uring_queue_init_params(kSqEntries, &ring_, &p);
      if (r == 0) {
        setup_flags_ = flags;
        break;
      }
      if (r != -EINVAL) {
        break;
      }
    }
    if (r < 0) {
      why = std::string("io_uring_setup: ") + std::strerror(-r) +
            (r == -EPERM ? " (kernel.io_uring_disabled or a seccomp filter)" : "");
      return false;
    }
    ring_ready_ = true;
    fixed_files_ = io_uring_register_files_sparse(&ring_, options_.max_sockets) == 0;

    // Provided-buffer ring, registered by hand (liburing 2.3 has no io_uring_setup_buf_ring).
    buf_ring_bytes_ = sizeof(io_uring_buf) * options_.buffers;
    void* mem =
        mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      why = "cannot map the buffer ring";
      return false;
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(buf_ring_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(buf_ring_);
    reg.ring_entries = options_.buffers;
    reg.bgid = kBufferGroup;
    r = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (r < 0) {
      why = std::string("io_uring_register_buf_ring: ") + std::strerror(-r);
      return false;
    }
    mask_ = io_uring_buf_ring_mask(options_.buffers);
    for (std::uint32_t i = 0; i < options_.buffers + options_.tx_buffers; ++i) {
      return_buffer(i);
    }
    advance_returns();

    recv_msg_.msg_namelen = sizeof(sockaddr_in6);
    recv_msg_.msg_controllen = 0;
    sockets_.assign(options_.max_sockets, Socket{});
    send_meta_.resize(options_.buffers + options_.tx_buffers);
    tx_free_.reserve(options_.tx_buffers);
    if (options_.gso) {
      groups_.resize(kGroups);
      open_.reserve(kGroups);
      // A zero-copy skb holds at most MAX_SKB_FRAGS (17) page fragments, and every segment
      // of a group lives in its own buffer: longer runs fail with EMSGSIZE.
      for (auto& g : groups_) {
        g.set_limit(options_.zerocopy ? 16 : GsoGroup::kMaxSegments);
      }
      for (std::uint32_t i = kGroups; i > 0; --i) {
        free_groups_.push_back(i - 1);
      }
    }
    return true;
  }

  std::string describe_flags() const {
    std::string s = setup_flags_ & IORING_SETUP_DEFER_TASKRUN  ? "SINGLE_ISSUER|DEFER_TASKRUN"
                    : setup_flags_ & IORING_SETUP_COOP_TASKRUN ? "COOP_TASKRUN"
                                                               : "default";
    return s + (fixed_files_ ? ", registered files" : ", plain files") +
           (options_.gso ? ", GSO" : "") + (options_.zerocopy ? ", SENDMSG_ZC" : "") + "; " +
           pool_.describe();
  }

  const char* name() const override { return "uring"; }

  bool add_socket(int fd, SocketId id) override { return add(fd, id, SocketKind::kDatagram); }
  bool add_listener(int fd, SocketId id) override { return add(fd, id, SocketKind::kListener); }
  bool add_stream(int fd, SocketId id) override { return add(fd, id, SocketKind::kStream); }

  bool add(int fd, SocketId id, SocketKind kind) {
    if (id.value >= sockets_.size() || sockets_[id.value].state != SocketState::kFree) {
      return false;
    }
    if (fixed_files_ && io_uring_register_files_update(&ring_, id.value, &fd, 1) != 1) {
      return false;
    }
    sockets_[id.value] = Socket{fd, SocketState::kActive, kind};
    if (kind == SocketKind::kStream) {
      if (streams_.size() <= id.value) {
        streams_.resize(std::size_t{id.value} + 1);
      }
      streams_[id.value] = std::make_unique<StreamOut>();
    }
    arm(id.value);
    return true;
  }

  void remove_socket(SocketId id) override {
    if (id.value >= sockets_.size() || sockets_[id.value].state != SocketState::kActive) {
      return;
    }
    // The slot stays draining until the receive's final completion, so a late completion
    // can never be taken for a new socket's.
    Socket& sock = sockets_[id.value];
    sock.state = SocketState::kDraining;
    Op receive = sock.kind == SocketKind::kDatagram   ? kRecv
                 : sock.kind == SocketKind::kListener ? kAccept
                                                      : kStreamRecv;
    if (sock.armed) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, pack(receive, id.value, 0), 0);
      io_uring_sqe_set_data64(sqe, pack(kCancel, id.value, 0));
    } else {
      rearm_.push_back(id.value);  // nothing to wait for: freed at the next poll
    }
    if (sock.kind == SocketKind::kStream) {
      StreamOut& out = *streams_[id.value];
      if (out.in_flight) {
        // A send waiting for a client that does not read would wait for ever.
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, pack(kStreamSend, id.value, 0), 0);
        io_uring_sqe_set_data64(sqe, pack(kCancel, id.value, 0));
      } else {
        drop_stream_queue(out);
      }
    }
    if (fixed_files_) {
      int none = -1;
      io_uring_register_files_update(&ring_, id.value, &none, 1);
    }
  }

  void set_wakeup_fd(int fd) override {
    wakeup_fd_ = fd;
    arm_wakeup();
  }

  int poll(int timeout_ms, Handler& handler) override {
    close_groups();
    submit_streams();
    advance_returns();
    std::uint64_t now_ms = 0;
    for (std::uint32_t id : rearm_) {
      Socket& sock = sockets_[id];
      if (sock.state == SocketState::kActive && sock.resume_ms != 0) {
        now_ms = now_ms != 0 ? now_ms : monotonic_ms();
        if (now_ms < sock.resume_ms) {
          resting_.push_back(id);  // accept_rest.hpp: not re-armed before its rest is over
          timeout_ms = rest_timeout(timeout_ms, sock.resume_ms, now_ms);
          continue;
        }
        sock.resume_ms = 0;
      }
      if (sock.state == SocketState::kActive && !sock.armed && !sock.eof) {
        arm(id);
      } else if (sock.state == SocketState::kDraining && !sock.armed) {
        free_if_idle(id);
      }
    }
    rearm_.swap(resting_);
    resting_.clear();
    if (deferred_head_ < deferred_.size()) {
      timeout_ms = 0;  // completions set aside by reclaim() are waiting
    }
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (timeout_ms % 1000) * 1'000'000L;
    int r =
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout_ms >= 0 ? &ts : nullptr, nullptr);
    ++stats_.receive_calls;
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) {
      return 0;
    }
    int delivered = 0;
    io_uring_cqe c{};
    for (unsigned budget = 2 * kCqEntries; budget > 0 && next_completion(c); --budget) {
      delivered += complete(&c, handler);
    }
    // Streams whose send failed (reset, broken pipe) are reported once, here, where the
    // handler is at hand (reclaim() may have seen the completion).
    for (std::size_t i = 0; i < failed_streams_.size(); ++i) {
      auto [id, error] = failed_streams_[i];
      if (sockets_[id].state == SocketState::kActive && !sockets_[id].eof) {
        sockets_[id].eof = true;
        handler.on_stream_closed(SocketId{id}, error);
      }
    }
    failed_streams_.clear();
    return delivered;
  }

  void send_stream(SocketId stream, const PacketBuffer& pkt, BufferId id) override {
    StreamOut* out = stream_out(stream.value);
    if (out == nullptr || out->failed) {
      ++stats_.send_errors;
      release(id);
      return;
    }
    out->queue.push_back(Queued{id.value, pkt.data(), pkt.length});
    out->bytes += pkt.length;
    if (!out->in_flight && !out->listed) {
      out->listed = true;
      ready_streams_.push_back(stream.value);
    }
  }

  std::size_t stream_backlog(SocketId stream) const override {
    const StreamOut* out = stream.value < streams_.size() ? streams_[stream.value].get() : nullptr;
    return out == nullptr ? 0 : out->bytes;
  }

  void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, BufferId id) override {
    if (from.value >= sockets_.size() || sockets_[from.value].state != SocketState::kActive) {
      ++stats_.send_errors;
      release(id);
      return;
    }
    if (options_.gso) {
      // One open group per (socket, destination) until the turn ends. A destination's group
      // becomes an SQE before anything else is queued for it (a datagram the group does not
      // take, or a single when no group is free), so its SQEs keep its datagrams' order.
      int* open = open_.find(from.value, to);
      if (open == nullptr) {
        close_groups();
        open = open_.find(from.value, to);
      }
      if (*open >= 0 && groups_[*open].accepts(from.value, to, pkt.length)) {
        groups_[*open].add(pkt.data(), pkt.length, id.value);
        return;
      }
      if (*open >= 0) {
        close_group(static_cast<std::uint32_t>(*open));
        *open = DestinationTable::kNone;
      }
      if (!free_groups_.empty()) {
        *open = static_cast<int>(free_groups_.back());
        free_groups_.pop_back();
        groups_[*open].start(from.value, to, pkt.data(), pkt.length, id.value);
        return;
      }
    }
    queue_single(from.value, to, pkt.data(), pkt.length, id.value);
  }

  void release(BufferId id) override { return_buffer(id.value); }

  std::optional<BufferId> acquire(PacketBuffer& out) override {
    if (tx_free_.empty()) {
      reclaim();
    }
    if (tx_free_.empty()) {
      ++stats_.tx_exhausted;
      return std::nullopt;
    }
    std::uint32_t bid = tx_free_.back();
    tx_free_.pop_back();
    out = PacketBuffer{pool_.slot(bid), BufferPool::kSlotSize, kTxOffset, 0};
    return BufferId{bid};
  }

  void flush() override {
    close_groups();
    submit_streams();
    advance_returns();
    if (io_uring_sq_ready(&ring_) > 0) {
      io_uring_submit(&ring_);
      ++stats_.send_calls;
    }
  }

  const BackendStats& stats() const override { return stats_; }

 private:
  struct Socket {
    int fd = -1;
    SocketState state = SocketState::kFree;
    SocketKind kind = SocketKind::kDatagram;
    bool armed = false;           // a receive (or accept) is in the kernel
    bool eof = false;             // a stream that ended: never re-armed
    std::uint64_t resume_ms = 0;  // a listener resting after a starved accept (accept_rest.hpp)
  };
  struct Queued {
    std::uint32_t buffer;
    std::uint8_t* data;
    std::uint32_t length;
  };
  // What a stream has queued to send: buffers in order, the first `sent` bytes of the first
  // already written; `carried` of them ride in the sendmsg in flight.
  struct StreamOut {
    std::vector<Queued> queue;
    std::size_t head = 0;
    std::uint32_t sent = 0;
    std::size_t bytes = 0;
    std::size_t carried = 0;
    bool in_flight = false;
    bool listed = false;  // in ready_streams_
    bool failed = false;
    msghdr msg{};
    iovec iov[kStreamIov];
  };
  struct SendMeta {
    msghdr msg;
    iovec iov;
    sockaddr_in6 addr;
  };

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      // The submission queue is full: hand what is there to the kernel and go on.
      io_uring_submit(&ring_);
      ++stats_.send_calls;
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void queue_single(std::uint32_t socket, const Endpoint& to, std::uint8_t* data,
                    std::uint32_t length, std::uint32_t buffer) {
    SendMeta& m = send_meta_[buffer];
    m.iov.iov_base = data;
    m.iov.iov_len = length;
    m.msg = msghdr{};
    m.msg.msg_name = &m.addr;
    m.msg.msg_namelen = to_sockaddr(to, m.addr);
    m.msg.msg_iov = &m.iov;
    m.msg.msg_iovlen = 1;
    io_uring_sqe* sqe = get_sqe();
    prep_send(sqe, fixed_files_ ? static_cast<int>(socket) : sockets_[socket].fd, &m.msg);
    if (fixed_files_) {
      sqe->flags |= IOSQE_FIXED_FILE;
    }
    io_uring_sqe_set_data64(sqe, pack(kSend, socket, buffer));
  }

  // See note_gso_refused(); the group's datagrams are queued again one by one. They go after
  // whatever was submitted behind the group: the one case where order is not kept (the path
  // refused GSO: EIO turns it off, EINVAL is a path MTU below the segment size).
  bool gso_refused(io_uring_cqe* cqe, std::uint32_t index) {
    GsoGroup& g = groups_[index];
    if (cqe->res >= 0 || g.count() < 2 || (cqe->flags & IORING_CQE_F_NOTIF) != 0 ||
        !gso_refusal(-cqe->res)) {
      return false;
    }
    note_gso_refused(-cqe->res, options_.gso, stats_);
    for (std::uint32_t i = 0; i < g.count(); ++i) {
      queue_single(g.socket(), g.destination(), g.data(i), g.length(i), g.buffer(i));
    }
    g.clear();
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      free_groups_.push_back(index);
    }
    return true;
  }

  // MSG_DONTWAIT makes the request REQ_F_NOWAIT: EAGAIN completes it at once instead of arming
  // a poll whose retry would leave after the sends queued behind it (see the top of the file).
  void prep_send(io_uring_sqe* sqe, int fd, msghdr* msg) {
    if (options_.zerocopy) {
      io_uring_prep_sendmsg_zc(sqe, fd, msg, MSG_DONTWAIT);
      sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
    } else {
      io_uring_prep_sendmsg(sqe, fd, msg, MSG_DONTWAIT);
    }
  }

  // A send's completion: true when its buffers may go back to the pool. A zero-copy send
  // completes twice, the second time (F_NOTIF) when the kernel is done with the memory.
  bool send_completed(io_uring_cqe* cqe, std::uint32_t datagrams) {
    if ((cqe->flags & IORING_CQE_F_NOTIF) != 0) {
      if ((static_cast<std::uint32_t>(cqe->res) & IORING_NOTIF_USAGE_ZC_COPIED) != 0) {
        ++stats_.zerocopy_copied;
      }
      return true;
    }
    if (cqe->res < 0) {
      stats_.send_errors += datagrams;
    } else {
      stats_.datagrams_out += datagrams;
    }
    return (cqe->flags & IORING_CQE_F_MORE) == 0;
  }

  // Turns every open GSO group into one sendmsg SQE each, in the order they were opened.
  void close_groups() {
    for (std::size_t k = 0; k < open_.size(); ++k) {
      if (open_.value(k) >= 0) {
        close_group(static_cast<std::uint32_t>(open_.value(k)));
      }
    }
    open_.clear();
  }

  void close_group(std::uint32_t index) {
    GsoGroup& g = groups_[index];
    if (sockets_[g.socket()].state != SocketState::kActive) {
      stats_.send_errors += g.count();
      finish_group(index);
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    prep_send(sqe, fixed_files_ ? static_cast<int>(g.socket()) : sockets_[g.socket()].fd,
              g.message());
    if (fixed_files_) {
      sqe->flags |= IOSQE_FIXED_FILE;
    }
    io_uring_sqe_set_data64(sqe, pack(kSendGroup, g.socket(), index));
    if (g.count() > 1) {
      ++stats_.gso_sends;
    }
  }

  void finish_group(std::uint32_t index) {
    GsoGroup& g = groups_[index];
    for (std::uint32_t i = 0; i < g.count(); ++i) {
      return_buffer(g.buffer(i));
    }
    g.clear();
    free_groups_.push_back(index);
  }

  void arm(std::uint32_t id) {
    Socket& sock = sockets_[id];
    sock.armed = true;
    io_uring_sqe* sqe = get_sqe();
    int fd = fixed_files_ ? static_cast<int>(id) : sock.fd;
    switch (sock.kind) {
      case SocketKind::kDatagram:
        io_uring_prep_recvmsg_multishot(sqe, fd, &recv_msg_, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufferGroup;
        io_uring_sqe_set_data64(sqe, pack(kRecv, id, 0));
        break;
      case SocketKind::kListener:
        // Multishot accept: Linux 5.19. The peer address is asked for with getpeername(), as
        // one address buffer cannot serve many completions.
        if (accept_multishot_) {
          io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        } else {
          io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        io_uring_sqe_set_data64(sqe, pack(kAccept, id, 0));
        break;
      case SocketKind::kStream:
        // Multishot recv: Linux 6.0; each completion fills one provided buffer.
        if (recv_multishot_) {
          io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        } else {
          io_uring_prep_recv(sqe, fd, nullptr, BufferPool::kSlotSize - kReserve, 0);
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufferGroup;
        io_uring_sqe_set_data64(sqe, pack(kStreamRecv, id, 0));
        break;
    }
    if (fixed_files_) {
      sqe->flags |= IOSQE_FIXED_FILE;
    }
  }

  StreamOut* stream_out(std::uint32_t id) {
    if (id >= sockets_.size() || sockets_[id].state != SocketState::kActive ||
        sockets_[id].kind != SocketKind::kStream) {
      return nullptr;
    }
    return streams_[id].get();
  }

  // A slot whose receive has ended is free once no send of it is in the kernel either.
  void free_if_idle(std::uint32_t id) {
    Socket& sock = sockets_[id];
    if (sock.kind == SocketKind::kStream && streams_[id]) {
      if (streams_[id]->in_flight) {
        return;  // complete_stream_send() frees it
      }
      drop_stream_queue(*streams_[id]);
      streams_[id].reset();
    }
    sock = Socket{};
  }

  void drop_stream_queue(StreamOut& out) {
    for (std::size_t i = out.head; i < out.queue.size(); ++i) {
      return_buffer(out.queue[i].buffer);
    }
    out.queue.clear();
    out.head = 0;
    out.sent = 0;
    out.bytes = 0;
  }

  // One sendmsg per stream with queued bytes and none in flight, into this turn's submit.
  void submit_streams() {
    for (std::uint32_t id : ready_streams_) {
      StreamOut* out = stream_out(id);
      if (out == nullptr) {
        continue;
      }
      out->listed = false;
      if (out->in_flight || out->head == out->queue.size()) {
        continue;
      }
      std::size_t n = std::min(kStreamIov, out->queue.size() - out->head);
      for (std::size_t k = 0; k < n; ++k) {
        const Queued& q = out->queue[out->head + k];
        std::uint32_t skip = k == 0 ? out->sent : 0;
        out->iov[k].iov_base = q.data + skip;
        out->iov[k].iov_len = q.length - skip;
      }
      out->msg = msghdr{};
      out->msg.msg_iov = out->iov;
      out->msg.msg_iovlen = n;
      out->carried = n;
      out->in_flight = true;
      io_uring_sqe* sqe = get_sqe();
      // MSG_NOSIGNAL: a client gone away is an error completion, never a SIGPIPE.
      io_uring_prep_sendmsg(sqe, fixed_files_ ? static_cast<int>(id) : sockets_[id].fd, &out->msg,
                            MSG_NOSIGNAL);
      if (fixed_files_) {
        sqe->flags |= IOSQE_FIXED_FILE;
      }
      io_uring_sqe_set_data64(sqe, pack(kStreamSend, id, 0));
      ++stats_.stream_sends;
    }
    ready_streams_.clear();
  }

  void complete_stream_send(io_uring_cqe* cqe) {
    auto id = static_cast<std::uint32_t>((io_uring_cqe_get_data64(cqe) >> 32) & 0xFFFFFF);
    if (id >= streams_.size() || !streams_[id]) {
      return;
    }
    StreamOut& out = *streams_[id];
    out.in_flight = false;
    Socket& sock = sockets_[id];
    if (sock.state != SocketState::kActive) {
      drop_stream_queue(out);
      if (sock.state == SocketState::kDraining && !sock.armed) {
        free_if_idle(id);
      }
      return;
    }
    if (cqe->res < 0) {
      ++stats_.send_errors;
      out.failed = true;
      drop_stream_queue(out);
      failed_streams_.emplace_back(id, -cqe->res);
      return;
    }
    auto left = static_cast<std::size_t>(cqe->res);
    out.bytes -= left;
    std::size_t carried_bytes = 0;
    for (std::size_t k = 0; k < out.carried; ++k) {
      carried_bytes += out.iov[k].iov_len;
    }
    if (left < carried_bytes) {
      ++stats_.stream_partial_sends;
    }
    while (left > 0 && out.head < out.queue.size()) {
      Queued& q = out.queue[out.head];
      std::uint32_t rest = q.length - out.sent;
      if (left < rest) {
        out.sent += static_cast<std::uint32_t>(left);
        break;
      }
      left -= rest;
      return_buffer(q.buffer);
      ++stats_.datagrams_out;
      ++out.head;
      out.sent = 0;
    }
    if (out.head == out.queue.size()) {
      out.queue.clear();
      out.head = 0;
    } else {
      if (out.head > 64 && out.head * 2 > out.queue.size()) {
        out.queue.erase(out.queue.begin(), out.queue.begin() + static_cast<long>(out.head));
        out.head = 0;
      }
      out.listed = true;
      ready_streams_.push_back(id);
    }
  }

  void arm_wakeup() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, wakeup_fd_, &wakeup_value_, sizeof(wakeup_value_), 0);
    io_uring_sqe_set_data64(sqe, pack(kWake, 0, 0));
  }

  // Receive buffers go back to the kernel's ring, transmit buffers to their free list.
  void return_buffer(std::uint32_t bid) {
    if (bid >= options_.buffers) {
      tx_free_.push_back(bid);
      return;
    }
    io_uring_buf_ring_add(buf_ring_, pool_.slot(bid) + kReserve, BufferPool::kSlotSize - kReserve,
                          static_cast<unsigned short>(bid), mask_,
                          static_cast<int>(pending_returns_));
    ++pending_returns_;
  }

  void advance_returns() {
    if (pending_returns_ > 0) {
      io_uring_buf_ring_advance(buf_ring_, static_cast<int>(pending_returns_));
      pending_returns_ = 0;
    }
  }

  // The next completion: first those reclaim() set aside (they came before the ring's), then
  // the ring's, each consumed before it is handled, so that a handler that runs out of
  // transmit buffers (acquire() -> reclaim()) finds only completions nobody has taken.
  bool next_completion(io_uring_cqe& out) {
    if (deferred_head_ < deferred_.size()) {
      out = deferred_[deferred_head_++];
      if (deferred_head_ == deferred_.size()) {
        deferred_.clear();
        deferred_head_ = 0;
      }
      return true;
    }
    unsigned head;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      out = *cqe;
      io_uring_cq_advance(&ring_, 1);
      return true;
    }
    return false;
  }

  // No free transmit buffer in the middle of a turn (a keyframe copied to hundreds of
  // subscribers): submit what is queued (sends complete inline, see the top of the file), take
  // back the buffers of the sends that completed, and set the other completions aside, in
  // their order, for poll() (a receive needs the handler). Submitting early keeps each
  // destination's order: its open group becomes an SQE before anything queued after it.
  void reclaim() {
    flush();
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      auto op = static_cast<Op>(io_uring_cqe_get_data64(cqe) >> 56);
      if (op == kSend || op == kSendGroup) {
        complete_send(cqe);
      } else if (op == kStreamSend) {
        complete_stream_send(cqe);
      } else {
        deferred_.push_back(*cqe);
      }
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void complete_send(io_uring_cqe* cqe) {
    std::uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (static_cast<Op>(ud >> 56) == kSend) {
      if (send_completed(cqe, 1)) {
        return_buffer(static_cast<std::uint32_t>(ud));
      }
      return;
    }
    auto index = static_cast<std::uint32_t>(ud);
    if (gso_refused(cqe, index)) {
      return;
    }
    if (send_completed(cqe, groups_[index].count())) {
      finish_group(index);
    }
  }

  int complete(io_uring_cqe* cqe, Handler& handler) {
    std::uint64_t ud = io_uring_cqe_get_data64(cqe);
    auto op = static_cast<Op>(ud >> 56);
    auto socket = static_cast<std::uint32_t>((ud >> 32) & 0xFFFFFF);
    switch (op) {
      case kRecv:
        return on_receive(cqe, socket, handler);
      case kSend:
      case kSendGroup:
        complete_send(cqe);
        return 0;
      case kAccept:
        on_accept(cqe, socket, handler);
        return 0;
      case kStreamRecv:
        return on_stream_receive(cqe, socket, handler);
      case kStreamSend:
        complete_stream_send(cqe);
        return 0;
      case kWake:
        if (cqe->res > 0) {
          handler.on_wakeup();
        }
        arm_wakeup();
        return 0;
      default:
        return 0;
    }
  }

  void on_accept(io_uring_cqe* cqe, std::uint32_t socket, Handler& handler) {
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      sockets_[socket].armed = false;
      rearm_.push_back(socket);
    }
    if (cqe->res < 0) {
      if (cqe->res == -EINVAL && accept_multishot_) {
        accept_multishot_ = false;  // re-armed as a plain accept
      } else if (cqe->res != -ECANCELED) {
        if (accept_starved(-cqe->res)) {
          sockets_[socket].resume_ms = monotonic_ms() + kAcceptRestMs;
        }
        handler.on_accept_error(SocketId{socket}, -cqe->res);
      }
      return;
    }
    int fd = cqe->res;
    sockaddr_in6 sa{};
    socklen_t len = sizeof(sa);
    if (sockets_[socket].state != SocketState::kActive ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0 ||
        !handler.on_accept(SocketId{socket}, fd, from_sockaddr(reinterpret_cast<sockaddr*>(&sa)))) {
      ::close(fd);
    }
  }

  int on_stream_receive(io_uring_cqe* cqe, std::uint32_t socket, Handler& handler) {
    Socket& sock = sockets_[socket];
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      sock.armed = false;
      rearm_.push_back(socket);
    }
    if (cqe->res == -ENOBUFS) {
      ++stats_.no_buffers;
    }
    bool has_buffer = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    std::uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (sock.state != SocketState::kActive || sock.eof) {
      if (has_buffer) {
        return_buffer(bid);
      }
      return 0;
    }
    if (cqe->res == -EINVAL && recv_multishot_) {
      recv_multishot_ = false;  // re-armed as a plain recv
      return 0;
    }
    if (cqe->res == -ENOBUFS || cqe->res == -ECANCELED || cqe->res == -EAGAIN) {
      return 0;
    }
    if (cqe->res <= 0) {
      if (has_buffer) {
        return_buffer(bid);
      }
      sock.eof = true;
      handler.on_stream_closed(SocketId{socket}, -cqe->res);
      return 0;
    }
    if (!has_buffer) {
      return 0;
    }
    PacketBuffer chunk{pool_.slot(bid), BufferPool::kSlotSize, kReserve,
                       static_cast<std::uint32_t>(cqe->res)};
    ++stats_.stream_chunks_in;
    handler.on_stream_data(SocketId{socket}, chunk, BufferId{bid});
    return 1;
  }

  int on_receive(io_uring_cqe* cqe, std::uint32_t socket, Handler& handler) {
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
      sockets_[socket].armed = false;
      rearm_.push_back(socket);  // the multishot ended (out of buffers, error, or cancelled)
    }
    if (cqe->res == -ENOBUFS) {
      ++stats_.no_buffers;
    }
    if (cqe->res < 0 || (cqe->flags & IORING_CQE_F_BUFFER) == 0) {
      return 0;
    }
    std::uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (sockets_[socket].state != SocketState::kActive) {
      return_buffer(bid);
      return 0;
    }
    std::uint8_t* slot = pool_.slot(bid);
    auto* out = io_uring_recvmsg_validate(slot + kReserve, cqe->res, &recv_msg_);
    if (out == nullptr || out->namelen == 0 || (out->flags & MSG_TRUNC) != 0) {
      ++stats_.truncated;
      return_buffer(bid);
      return 0;
    }
    auto* payload = static_cast<std::uint8_t*>(io_uring_recvmsg_payload(out, &recv_msg_));
    auto length = io_uring_recvmsg_payload_length(out, cqe->res, &recv_msg_);
    Endpoint from = from_sockaddr(static_cast<const sockaddr*>(io_uring_recvmsg_name(out)));
    PacketBuffer pkt{slot, BufferPool::kSlotSize, static_cast<std::uint32_t>(payload - slot),
                     length};
    ++stats_.datagrams_in;
    handler.on_datagram(SocketId{socket}, from, pkt, BufferId{bid});
    return 1;
  }

  BackendOptions options_;
  BufferPool pool_;
  io_uring ring_{};
  bool ring_ready_ = false;
  unsigned setup_flags_ = 0;
  bool fixed_files_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::size_t buf_ring_bytes_ = 0;
  int mask_ = 0;
  std::uint32_t pending_returns_ = 0;
  msghdr recv_msg_{};
  std::vector<Socket> sockets_;
  std::vector<SendMeta> send_meta_;
  std::vector<std::uint32_t> rearm_;
  std::vector<std::uint32_t> resting_;  // listeners whose rest is not over: back into rearm_
  std::vector<std::uint32_t> tx_free_;
  std::vector<GsoGroup> groups_;
  std::vector<std::uint32_t> free_groups_;
  DestinationTable open_;  // (socket, destination) -> its open group this turn
  std::vector<std::unique_ptr<StreamOut>> streams_;  // by socket id, streams only
  std::vector<std::uint32_t> ready_streams_;         // streams with bytes to send this turn
  std::vector<std::pair<std::uint32_t, int>> failed_streams_;
  bool accept_multishot_ = true;
  bool recv_multishot_ = true;
  std::vector<io_uring_cqe> deferred_;  // see reclaim()
  std::size_t deferred_head_ = 0;
  int wakeup_fd_ = -1;
  std::uint64_t wakeup_value_ = 0;
  BackendStats stats_;
};

}  // namespace

std::unique_ptr<Backend> make_uring_backend(const BackendOptions& options, std::string& why) {
  auto b = std::make_unique<UringBackend>(options);
  if (!b->init(why)) {
    return nullptr;
  }
  why = b->describe_flags();
  return b;
}

}  // namespace ringlane::io
