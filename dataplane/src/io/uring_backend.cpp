// io_uring backend: one multishot recvmsg per socket drawing from one provided-buffer ring,
// sends prepared as SQEs and submitted together with the wait, once per loop turn.
//
// Order: every send SQE carries MSG_DONTWAIT, so the kernel issues it inline or fails it with
// EAGAIN (counted in send_errors, as a non-blocking sendmsg and mmsg's sendmmsg do). Without
// it a send that would block is parked on a poll and retried later, after SQEs queued behind
// it that went out at once: a destination's datagrams then arrive out of order. With every
// send issued inline in SQE order, SQE order is wire order.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

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

enum Op : std::uint64_t { kRecv = 1, kSend = 2, kWake = 3, kCancel = 4, kSendGroup = 5 };
constexpr std::uint32_t kGroups = 512;
enum class SocketState : std::uint8_t { kFree, kActive, kDraining };

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

  bool add_socket(int fd, SocketId id) override {
    if (id.value >= sockets_.size() || sockets_[id.value].state != SocketState::kFree) {
      return false;
    }
    if (fixed_files_ && io_uring_register_files_update(&ring_, id.value, &fd, 1) != 1) {
      return false;
    }
    sockets_[id.value] = Socket{fd, SocketState::kActive};
    arm(id.value);
    return true;
  }

  void remove_socket(SocketId id) override {
    if (id.value >= sockets_.size() || sockets_[id.value].state != SocketState::kActive) {
      return;
    }
    // The slot stays draining until the receive's final completion, so a late completion
    // can never be taken for a new socket's.
    sockets_[id.value].state = SocketState::kDraining;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, pack(kRecv, id.value, 0), 0);
    io_uring_sqe_set_data64(sqe, pack(kCancel, id.value, 0));
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
    advance_returns();
    for (std::uint32_t id : rearm_) {
      if (sockets_[id].state == SocketState::kActive) {
        arm(id);
      } else if (sockets_[id].state == SocketState::kDraining) {
        sockets_[id].state = SocketState::kFree;
      }
    }
    rearm_.clear();
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
    return delivered;
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
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recvmsg_multishot(sqe, fixed_files_ ? static_cast<int>(id) : sockets_[id].fd,
                                    &recv_msg_, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT | (fixed_files_ ? IOSQE_FIXED_FILE : 0);
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, pack(kRecv, id, 0));
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

  int on_receive(io_uring_cqe* cqe, std::uint32_t socket, Handler& handler) {
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
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
  std::vector<std::uint32_t> tx_free_;
  std::vector<GsoGroup> groups_;
  std::vector<std::uint32_t> free_groups_;
  DestinationTable open_;               // (socket, destination) -> its open group this turn
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
