// recvmmsg/sendmmsg on epoll: the fallback where io_uring is unavailable, and the baseline
// every benchmark compares the uring backend against. Streams (TURN over TCP) ride the same
// epoll: accept4 on a listener, recv into pool buffers, and per stream one sendmsg of its
// queued buffers per flush, waiting for EPOLLOUT when the kernel takes only part.
#include <sys/epoll.h>
#include <sys/socket.h>
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

namespace ringlane::io {
namespace {

// Payload offset in a slot: the same room for TURN headers as the uring backend leaves.
constexpr std::uint32_t kPayloadOffset = 128;
static_assert(kPayloadOffset >= kPacketHeadroom);
constexpr std::uint32_t kWakeTag = UINT32_MAX;
constexpr int kMaxEvents = 256;
constexpr int kMaxRoundsPerSocket = 8;
constexpr int kMaxAcceptsPerEvent = 64;
constexpr std::size_t kStreamIov = 32;
enum class Kind : std::uint8_t { kDatagram, kListener, kStream };

class MmsgBackend final : public Backend {
 public:
  explicit MmsgBackend(const BackendOptions& o)
      : options_(o), pool_(o.buffers + o.tx_buffers, o.numa_node) {}
  ~MmsgBackend() override {
    if (epfd_ >= 0) {
      close(epfd_);
    }
  }

  bool init(std::string& why) {
    if (!pool_.ok()) {
      why = "cannot allocate the buffer pool";
      return false;
    }
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      why = "epoll_create1 failed";
      return false;
    }
    for (std::uint32_t i = options_.buffers; i > 0; --i) {
      free_.push_back(i - 1);
    }
    for (std::uint32_t i = options_.buffers + options_.tx_buffers; i > options_.buffers; --i) {
      tx_free_.push_back(i - 1);
    }
    fds_.assign(options_.max_sockets, -1);
    kinds_.assign(options_.max_sockets, Kind::kDatagram);
    std::size_t b = options_.batch;
    rmsgs_.resize(b);
    riov_.resize(b);
    raddr_.resize(b);
    rbid_.resize(b);
    smsgs_.resize(b);
    controls_.resize(b);
    counts_.resize(b);
    pending_.reserve(options_.buffers + options_.tx_buffers);
    if (options_.gso) {
      order_.reserve(options_.buffers + options_.tx_buffers);
      next_.reserve(options_.buffers + options_.tx_buffers);
      chains_.reserve(options_.buffers + options_.tx_buffers);
      destinations_.reserve(options_.buffers + options_.tx_buffers);
    }
    return true;
  }

  const char* name() const override { return "mmsg"; }
  std::string describe_pool() const { return pool_.describe(); }

  bool add_socket(int fd, SocketId id) override { return add(fd, id, Kind::kDatagram); }
  bool add_listener(int fd, SocketId id) override { return add(fd, id, Kind::kListener); }
  bool add_stream(int fd, SocketId id) override { return add(fd, id, Kind::kStream); }

  bool add(int fd, SocketId id, Kind kind) {
    if (id.value >= fds_.size() || fds_[id.value] >= 0) {
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = id.value;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return false;
    }
    fds_[id.value] = fd;
    kinds_[id.value] = kind;
    if (kind == Kind::kStream) {
      if (streams_.size() <= id.value) {
        streams_.resize(std::size_t{id.value} + 1);
      }
      streams_[id.value] = std::make_unique<StreamOut>();
    }
    return true;
  }

  void remove_socket(SocketId id) override {
    if (id.value < fds_.size() && fds_[id.value] >= 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, fds_[id.value], nullptr);
      fds_[id.value] = -1;
      if (kinds_[id.value] == Kind::kStream) {
        drop_stream_queue(*streams_[id.value]);
        streams_[id.value].reset();
      }
      kinds_[id.value] = Kind::kDatagram;
    }
  }

  void send_stream(SocketId stream, const PacketBuffer& pkt, BufferId id) override {
    StreamOut* out = stream_out(stream.value);
    if (out == nullptr || out->failed) {
      ++stats_.send_errors;
      give_back(id.value);
      return;
    }
    out->queue.push_back(Queued{id.value, pkt.data(), pkt.length});
    out->bytes += pkt.length;
    if (!out->listed && !out->waiting) {
      out->listed = true;
      ready_streams_.push_back(stream.value);
    }
  }

  std::size_t stream_backlog(SocketId stream) const override {
    const StreamOut* out = stream.value < streams_.size() ? streams_[stream.value].get() : nullptr;
    return out == nullptr ? 0 : out->bytes;
  }

  void set_wakeup_fd(int fd) override {
    wakeup_fd_ = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = kWakeTag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }

  int poll(int timeout_ms, Handler& handler) override {
    flush();
    wake_rested(timeout_ms);
    epoll_event events[kMaxEvents];
    int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
    int delivered = 0;
    for (int i = 0; i < n; ++i) {
      std::uint32_t id = events[i].data.u32;
      if (id == kWakeTag) {
        std::uint64_t value;
        if (read(wakeup_fd_, &value, sizeof(value)) > 0) {
          handler.on_wakeup();
        }
        continue;
      }
      if (id >= fds_.size() || fds_[id] < 0) {
        continue;  // removed by a handler earlier in this batch
      }
      if (kinds_[id] == Kind::kListener) {
        accept_all(id, handler);
      } else if (kinds_[id] == Kind::kStream) {
        if ((events[i].events & EPOLLOUT) != 0) {
          write_stream(id);
        }
        if ((events[i].events & ~static_cast<std::uint32_t>(EPOLLOUT)) != 0) {
          delivered += read_stream(id, handler);
        }
      } else {
        delivered += drain(id, handler);
      }
    }
    for (std::size_t i = 0; i < failed_streams_.size(); ++i) {
      auto [id, error] = failed_streams_[i];
      StreamOut* out = stream_out(id);
      if (out != nullptr && !out->eof) {
        stop_reading(id, *out);
        handler.on_stream_closed(SocketId{id}, error);
      }
    }
    failed_streams_.clear();
    return delivered;
  }

  void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, BufferId id) override {
    Pending& p = pending_.emplace_back();
    p.socket = from.value;
    p.to = to;
    p.buffer = id.value;
    p.addr_len = to_sockaddr(to, p.addr);
    p.iov.iov_base = pkt.data();
    p.iov.iov_len = pkt.length;
  }

  void release(BufferId id) override { give_back(id.value); }

  std::optional<BufferId> acquire(PacketBuffer& out) override {
    if (tx_free_.empty() && !pending_.empty()) {
      flush();  // sending queued copies gives their buffers back
    }
    if (tx_free_.empty()) {
      ++stats_.tx_exhausted;
      return std::nullopt;
    }
    std::uint32_t bid = tx_free_.back();
    tx_free_.pop_back();
    out = PacketBuffer{pool_.slot(bid), BufferPool::kSlotSize, kPayloadOffset, 0};
    return BufferId{bid};
  }

  void flush() override {
    for (std::size_t i = 0; i < ready_streams_.size(); ++i) {
      std::uint32_t id = ready_streams_[i];
      if (StreamOut* out = stream_out(id)) {
        out->listed = false;
        write_stream(id);
      }
    }
    ready_streams_.clear();
    if (giov_.size() < pending_.size()) {
      giov_.resize(pending_.size());
    }
    order_by_destination();
    std::size_t i = 0;
    while (i < pending_.size()) {
      // A run of sends from one socket goes out in one sendmmsg; with GSO, each message of
      // it may carry a run of datagrams to one destination (see gso_run_takes).
      std::uint32_t socket = at(i).socket;
      std::size_t first = i;
      std::size_t msgs = 0;
      while (i < pending_.size() && msgs < smsgs_.size() && at(i).socket == socket) {
        std::size_t count = 1;
        auto segment = static_cast<std::uint32_t>(at(i).iov.iov_len);
        std::uint32_t bytes = segment;
        std::uint32_t last = segment;
        while (options_.gso && i + count < pending_.size() &&
               same_destination(at(i), at(i + count))) {
          auto length = static_cast<std::uint32_t>(at(i + count).iov.iov_len);
          if (!gso_run_takes(segment, static_cast<std::uint32_t>(count), bytes, last, length,
                             kGsoMaxSegments)) {
            break;
          }
          bytes += length;
          last = length;
          ++count;
        }
        for (std::size_t k = 0; k < count; ++k) {
          giov_[i + k] = at(i + k).iov;
        }
        msghdr& h = smsgs_[msgs].msg_hdr;
        h = msghdr{};
        h.msg_name = &at(i).addr;
        h.msg_namelen = at(i).addr_len;
        h.msg_iov = &giov_[i];
        h.msg_iovlen = count;
        if (count > 1) {
          h.msg_control = controls_[msgs].bytes;
          h.msg_controllen = sizeof(controls_[msgs].bytes);
          cmsghdr* c = CMSG_FIRSTHDR(&h);
          c->cmsg_level = SOL_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
          auto seg = static_cast<std::uint16_t>(segment);
          std::memcpy(CMSG_DATA(c), &seg, sizeof(seg));
          ++stats_.gso_sends;
        }
        counts_[msgs] = count;
        ++msgs;
        i += count;
      }
      int fd = socket < fds_.size() ? fds_[socket] : -1;
      std::size_t done = 0;
      while (done < msgs) {
        int sent = fd >= 0
                       ? sendmmsg(fd, smsgs_.data() + done, static_cast<unsigned>(msgs - done), 0)
                       : -1;
        ++stats_.send_calls;
        std::size_t ok = sent > 0 ? static_cast<std::size_t>(sent) : 0;
        for (std::size_t k = done; k < done + ok; ++k) {
          stats_.datagrams_out += counts_[k];
        }
        done += ok;
        if (done < msgs) {
          if (sent < 0 && counts_[done] > 1 && gso_refusal(errno)) {
            resend_one_by_one(fd, smsgs_[done].msg_hdr, errno);
          } else {
            // One failed message stops sendmmsg; count it and go on with the rest.
            stats_.send_errors += counts_[done];
          }
          ++done;
        }
      }
      for (std::size_t k = first; k < i; ++k) {
        give_back(at(k).buffer);
      }
    }
    pending_.clear();
    order_.clear();
  }

  const BackendStats& stats() const override { return stats_; }

 private:
  struct Control {
    alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(std::uint16_t))];
  };
  struct Pending {
    std::uint32_t socket;
    std::uint32_t buffer;
    Endpoint to;
    socklen_t addr_len;
    sockaddr_in6 addr;
    iovec iov;
  };
  struct Chain {
    std::uint32_t head;
    std::uint32_t tail;
  };
  struct Queued {
    std::uint32_t buffer;
    std::uint8_t* data;
    std::uint32_t length;
  };
  struct StreamOut {
    std::vector<Queued> queue;
    std::size_t head = 0;
    std::uint32_t sent = 0;  // bytes of queue[head] already written
    std::size_t bytes = 0;
    bool listed = false;   // in ready_streams_
    bool waiting = false;  // EPOLLOUT asked for
    bool failed = false;
    bool eof = false;
  };

  StreamOut* stream_out(std::uint32_t id) {
    if (id >= fds_.size() || fds_[id] < 0 || kinds_[id] != Kind::kStream) {
      return nullptr;
    }
    return streams_[id].get();
  }

  void drop_stream_queue(StreamOut& out) {
    for (std::size_t i = out.head; i < out.queue.size(); ++i) {
      give_back(out.queue[i].buffer);
    }
    out.queue.clear();
    out.head = 0;
    out.sent = 0;
    out.bytes = 0;
  }

  void set_events(std::uint32_t id, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = id;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, fds_[id], &ev);
  }

  // After EOF or an error nothing more is read: level-triggered epoll would report it again
  // every wait until the handler removes the socket.
  void stop_reading(std::uint32_t id, StreamOut& out) {
    out.eof = true;
    set_events(id, 0);
  }

  // Writes what the stream has queued until it is all out or the kernel is full (then waits
  // for EPOLLOUT). A partial write resumes from the byte it stopped at.
  void write_stream(std::uint32_t id) {
    StreamOut* out = stream_out(id);
    if (out == nullptr || out->failed) {
      return;
    }
    while (out->head < out->queue.size()) {
      iovec iov[kStreamIov];
      std::size_t n = std::min(kStreamIov, out->queue.size() - out->head);
      std::size_t want = 0;
      for (std::size_t k = 0; k < n; ++k) {
        const Queued& q = out->queue[out->head + k];
        std::uint32_t skip = k == 0 ? out->sent : 0;
        iov[k].iov_base = q.data + skip;
        iov[k].iov_len = q.length - skip;
        want += iov[k].iov_len;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      // MSG_NOSIGNAL: a client gone away is EPIPE, never a SIGPIPE.
      ssize_t sent = sendmsg(fds_[id], &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      ++stats_.send_calls;
      ++stats_.stream_sends;
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          break;
        }
        ++stats_.send_errors;
        out->failed = true;
        drop_stream_queue(*out);
        failed_streams_.emplace_back(id, errno);
        return;
      }
      auto left = static_cast<std::size_t>(sent);
      if (left < want) {
        ++stats_.stream_partial_sends;
      }
      out->bytes -= left;
      while (left > 0 && out->head < out->queue.size()) {
        Queued& q = out->queue[out->head];
        std::uint32_t rest = q.length - out->sent;
        if (left < rest) {
          out->sent += static_cast<std::uint32_t>(left);
          break;
        }
        left -= rest;
        give_back(q.buffer);
        ++stats_.datagrams_out;
        ++out->head;
        out->sent = 0;
      }
      if (static_cast<std::size_t>(sent) < want) {
        break;  // the kernel is full
      }
    }
    bool more = out->head < out->queue.size();
    if (!more) {
      out->queue.clear();
      out->head = 0;
    }
    if (more != out->waiting) {
      out->waiting = more;
      set_events(id, (out->eof ? 0u : static_cast<std::uint32_t>(EPOLLIN)) |
                         (more ? static_cast<std::uint32_t>(EPOLLOUT) : 0u));
    }
  }

  int read_stream(std::uint32_t id, Handler& handler) {
    int delivered = 0;
    for (int round = 0; round < kMaxRoundsPerSocket; ++round) {
      StreamOut* out = stream_out(id);  // the handler may have removed it
      if (out == nullptr || out->eof) {
        break;
      }
      if (free_.empty()) {
        ++stats_.no_buffers;
        flush();
        if (free_.empty()) {
          break;
        }
      }
      std::uint32_t bid = free_.back();
      free_.pop_back();
      ssize_t n = recv(fds_[id], pool_.slot(bid) + kPayloadOffset,
                       BufferPool::kSlotSize - kPayloadOffset, MSG_DONTWAIT);
      ++stats_.receive_calls;
      if (n <= 0) {
        free_.push_back(bid);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          break;
        }
        int error = n == 0 ? 0 : errno;
        stop_reading(id, *out);
        handler.on_stream_closed(SocketId{id}, error);
        break;
      }
      PacketBuffer chunk{pool_.slot(bid), BufferPool::kSlotSize, kPayloadOffset,
                         static_cast<std::uint32_t>(n)};
      ++stats_.stream_chunks_in;
      ++delivered;
      handler.on_stream_data(SocketId{id}, chunk, BufferId{bid});
      if (static_cast<std::size_t>(n) < BufferPool::kSlotSize - kPayloadOffset) {
        break;  // the socket is drained for now
      }
    }
    return delivered;
  }

  // accept_rest.hpp: the listener leaves epoll's interest for its rest (it would stay readable).
  void rest(std::uint32_t id) {
    epoll_event ev{};
    ev.data.u32 = id;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, fds_[id], &ev);
    resting_.push_back({id, fds_[id], monotonic_ms() + kAcceptRestMs});
  }

  // Listeners whose rest is over listen again; the wait is cut short for the next one due.
  void wake_rested(int& timeout_ms) {
    if (resting_.empty()) {
      return;
    }
    std::uint64_t now_ms = monotonic_ms();
    std::size_t kept = 0;
    for (const Resting& r : resting_) {
      if (fds_[r.id] != r.fd) {
        continue;  // removed meanwhile
      }
      if (now_ms >= r.resume_ms) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = r.id;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, r.fd, &ev);
        continue;
      }
      timeout_ms = rest_timeout(timeout_ms, r.resume_ms, now_ms);
      resting_[kept++] = r;
    }
    resting_.resize(kept);
  }

  void accept_all(std::uint32_t id, Handler& handler) {
    for (int k = 0; k < kMaxAcceptsPerEvent && fds_[id] >= 0; ++k) {
      sockaddr_in6 sa{};
      socklen_t len = sizeof(sa);
      int fd =
          accept4(fds_[id], reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int error = errno;
        if (error != EAGAIN && error != EWOULDBLOCK && error != EINTR && error != ECONNABORTED) {
          if (accept_starved(error)) {
            rest(id);
          }
          handler.on_accept_error(SocketId{id}, error);
        }
        return;
      }
      if (!handler.on_accept(SocketId{id}, fd, from_sockaddr(reinterpret_cast<sockaddr*>(&sa)))) {
        close(fd);
      }
    }
  }
  static constexpr std::uint32_t kEnd = UINT32_MAX;

  void give_back(std::uint32_t bid) { (bid >= options_.buffers ? tx_free_ : free_).push_back(bid); }

  // The i-th send of this flush: in queued order, or, with GSO, in order_.
  Pending& at(std::size_t i) { return order_.empty() ? pending_[i] : pending_[order_[i]]; }

  static bool same_destination(const Pending& a, const Pending& b) {
    return a.socket == b.socket && a.to == b.to;
  }

  // With GSO, order_ lists the pending sends grouped by (socket, destination), destinations in
  // the order of their first send and each one's sends in the order they were queued, so an
  // SFU's interleaved copies become runs (a stable partition, linear in the sends).
  void order_by_destination() {
    order_.clear();
    if (!options_.gso || pending_.size() < 2) {
      return;
    }
    chains_.clear();
    next_.assign(pending_.size(), kEnd);
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      int* chain = destinations_.find(pending_[i].socket, pending_[i].to);
      if (chain == nullptr) {  // cannot happen: the table has room for every buffer
        destinations_.clear();
        return;
      }
      auto index = static_cast<std::uint32_t>(i);
      if (*chain == DestinationTable::kNone) {
        *chain = static_cast<int>(chains_.size());
        chains_.push_back(Chain{index, index});
      } else {
        Chain& c = chains_[static_cast<std::size_t>(*chain)];
        next_[c.tail] = index;
        c.tail = index;
      }
    }
    if (chains_.size() == pending_.size()) {
      destinations_.clear();
      return;  // every send to its own destination: nothing to group
    }
    for (const Chain& c : chains_) {
      for (std::uint32_t k = c.head; k != kEnd; k = next_[k]) {
        order_.push_back(k);
      }
    }
    destinations_.clear();
  }

  // See note_gso_refused(): the run's datagrams go again one by one.
  void resend_one_by_one(int fd, const msghdr& run, int error) {
    note_gso_refused(error, options_.gso, stats_);
    for (std::size_t k = 0; k < run.msg_iovlen; ++k) {
      msghdr one{};
      one.msg_name = run.msg_name;
      one.msg_namelen = run.msg_namelen;
      one.msg_iov = &run.msg_iov[k];
      one.msg_iovlen = 1;
      if (sendmsg(fd, &one, 0) < 0) {
        ++stats_.send_errors;
      } else {
        ++stats_.datagrams_out;
      }
    }
  }

  int drain(std::uint32_t id, Handler& handler) {
    int fd = id < fds_.size() ? fds_[id] : -1;
    int delivered = 0;
    for (int round = 0; fd >= 0 && round < kMaxRoundsPerSocket; ++round) {
      std::size_t want = std::min<std::size_t>(rmsgs_.size(), free_.size());
      if (want == 0) {
        ++stats_.no_buffers;
        flush();  // sending frees buffers
        want = std::min<std::size_t>(rmsgs_.size(), free_.size());
        if (want == 0) {
          break;
        }
      }
      for (std::size_t k = 0; k < want; ++k) {
        rbid_[k] = free_.back();
        free_.pop_back();
        riov_[k].iov_base = pool_.slot(rbid_[k]) + kPayloadOffset;
        riov_[k].iov_len = BufferPool::kSlotSize - kPayloadOffset;
        rmsgs_[k].msg_hdr = msghdr{};
        rmsgs_[k].msg_hdr.msg_name = &raddr_[k];
        rmsgs_[k].msg_hdr.msg_namelen = sizeof(sockaddr_in6);
        rmsgs_[k].msg_hdr.msg_iov = &riov_[k];
        rmsgs_[k].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd, rmsgs_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
      ++stats_.receive_calls;
      std::size_t used = got > 0 ? static_cast<std::size_t>(got) : 0;
      for (std::size_t k = used; k < want; ++k) {
        free_.push_back(rbid_[k]);
      }
      for (std::size_t k = 0; k < used; ++k) {
        if ((rmsgs_[k].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          ++stats_.truncated;
          free_.push_back(rbid_[k]);
          continue;
        }
        PacketBuffer pkt{pool_.slot(rbid_[k]), BufferPool::kSlotSize, kPayloadOffset,
                         rmsgs_[k].msg_len};
        Endpoint from = from_sockaddr(reinterpret_cast<const sockaddr*>(&raddr_[k]));
        ++stats_.datagrams_in;
        ++delivered;
        handler.on_datagram(SocketId{id}, from, pkt, BufferId{rbid_[k]});
        fd = fds_[id];  // the handler may have closed this socket
        if (fd < 0) {
          // Remaining datagrams of this batch belong to a closed socket: drop them.
          for (std::size_t rest = k + 1; rest < used; ++rest) {
            free_.push_back(rbid_[rest]);
          }
          used = 0;
          break;
        }
      }
      if (pending_.size() >= rmsgs_.size()) {
        flush();
      }
      if (used < want) {
        break;
      }
    }
    return delivered;
  }

  BackendOptions options_;
  BufferPool pool_;
  int epfd_ = -1;
  int wakeup_fd_ = -1;
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> tx_free_;
  std::vector<int> fds_;
  std::vector<Kind> kinds_;
  std::vector<std::unique_ptr<StreamOut>> streams_;  // by socket id, streams only
  std::vector<std::uint32_t> ready_streams_;
  std::vector<std::pair<std::uint32_t, int>> failed_streams_;
  struct Resting {
    std::uint32_t id;
    int fd;  // the listener's, so that a slot reused by another socket is told apart
    std::uint64_t resume_ms;
  };
  std::vector<Resting> resting_;  // listeners out of epoll after a starved accept
  std::vector<mmsghdr> rmsgs_;
  std::vector<iovec> riov_;
  std::vector<sockaddr_in6> raddr_;
  std::vector<std::uint32_t> rbid_;
  std::vector<mmsghdr> smsgs_;
  std::vector<Pending> pending_;
  std::vector<std::uint32_t> order_;  // see order_by_destination()
  std::vector<std::uint32_t> next_;
  std::vector<Chain> chains_;
  DestinationTable destinations_;
  std::vector<iovec> giov_;
  std::vector<Control> controls_;
  std::vector<std::size_t> counts_;
  BackendStats stats_;
};

}  // namespace

std::unique_ptr<Backend> make_mmsg_backend(const BackendOptions& options, std::string& why) {
  auto b = std::make_unique<MmsgBackend>(options);
  if (!b->init(why)) {
    return nullptr;
  }
  why = "epoll + recvmmsg/sendmmsg, batch " + std::to_string(options.batch) +
        (options.gso ? ", GSO" : "") + "; " + b->describe_pool();
  return b;
}

}  // namespace ringlane::io
