#include "ringlane/dataplane/turn/connections.hpp"

namespace ringlane::turn {

bool ConnectionsPerIp::acquire(const IpAddress& ip, std::uint32_t limit) {
  std::lock_guard lock(mutex_);
  std::uint32_t& n = counts_[ip];
  if (limit != 0 && n >= limit) {
    if (n == 0) {
      counts_.erase(ip);
    }
    return false;
  }
  ++n;
  return true;
}

void ConnectionsPerIp::release(const IpAddress& ip) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(ip);
  if (it != counts_.end() && --it->second == 0) {
    counts_.erase(it);
  }
}

std::uint32_t ConnectionsPerIp::count(const IpAddress& ip) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(ip);
  return it == counts_.end() ? 0 : it->second;
}

ConnectionTable::ConnectionTable(ConnectionLimits limits, std::shared_ptr<ConnectionsPerIp> per_ip,
                                 StreamFramerCounters& framer_counters, StreamCounters& counters)
    : limits_(limits),
      per_ip_(per_ip ? std::move(per_ip) : std::make_shared<ConnectionsPerIp>()),
      framer_counters_(&framer_counters),
      counters_(&counters) {}

ConnectionTable::~ConnectionTable() {
  for (auto& c : slots_) {
    if (c) {
      per_ip_->release(c->peer.ip.unmapped());
    }
  }
}

ConnectionTable::Admit ConnectionTable::admit(const Endpoint& peer) {
  if (live_ + reserved_ >= limits_.max_connections) {
    ++counters_->refused_total;
    return Admit::kTotal;
  }
  // An IPv4 client on a dual-stack socket is the same client as on an IPv4 one.
  if (!per_ip_->acquire(peer.ip.unmapped(), limits_.max_per_ip)) {
    ++counters_->refused_per_ip;
    return Admit::kPerIp;
  }
  ++reserved_;
  return Admit::kOk;
}

void ConnectionTable::refund(const Endpoint& peer) {
  per_ip_->release(peer.ip.unmapped());
  --reserved_;
}

Connection& ConnectionTable::insert(SocketId id, const Endpoint& peer, std::uint64_t now_ms,
                                    std::unique_ptr<crypto::TlsEndpoint> tls) {
  --reserved_;
  if (id.value >= slots_.size()) {
    slots_.resize(std::size_t{id.value} + 1);
  }
  StreamFramerConfig framing;
  framing.max_stun_frame = limits_.max_frame;
  framing.max_channel_frame = limits_.max_frame;
  slots_[id.value] =
      std::make_unique<Connection>(Connection{id, peer, StreamFramer(*framer_counters_, framing),
                                              now_ms, now_ms, false, std::nullopt, std::move(tls)});
  ++live_;
  ++counters_->accepted;
  if (slots_[id.value]->tls) {
    ++counters_->tls_accepted;
  }
  counters_->active = live_;
  return *slots_[id.value];
}

Connection* ConnectionTable::find(SocketId id) {
  return id.value < slots_.size() ? slots_[id.value].get() : nullptr;
}

void ConnectionTable::erase(SocketId id) {
  Connection* c = find(id);
  if (c == nullptr) {
    return;
  }
  per_ip_->release(c->peer.ip.unmapped());
  slots_[id.value].reset();
  --live_;
  counters_->active = live_;
}

void ConnectionTable::publish_framer_counts() {
  const StreamFramerCounters& f = *framer_counters_;
  StreamCounters& c = *counters_;
  c.stun_frames = f.stun_frames;
  c.channel_frames = f.channel_frames;
  c.reassembled_frames = f.reassembled_frames;
  c.reassembled_bytes = f.reassembled_bytes;
  c.not_turn = f.failed(StreamError::kNotTurn);
  c.bad_magic_cookie = f.failed(StreamError::kBadMagicCookie);
  c.bad_stun_length = f.failed(StreamError::kBadStunLength);
  c.stun_too_large = f.failed(StreamError::kStunTooLarge);
  c.channel_too_large = f.failed(StreamError::kChannelTooLarge);
  c.channel_before_stun = f.failed(StreamError::kChannelBeforeStun);
}

}  // namespace ringlane::turn
