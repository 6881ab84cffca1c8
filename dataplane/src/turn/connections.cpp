#include "ringlane/dataplane/turn/connections.hpp"

#include <algorithm>
#include <iterator>

namespace ringlane::turn {

ConnectionsPerIp::Acquire ConnectionsPerIp::acquire(const IpAddress& ip, std::uint32_t limit,
                                                    std::uint32_t rate, std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= sweep_at_) {
    sweep(rate, now_ms);
  }
  const std::uint64_t full = std::uint64_t{rate} * 2 * 1000;
  auto emplaced = entries_.try_emplace(ip);
  auto it = emplaced.first;
  bool fresh = emplaced.second;
  Entry& e = it->second;
  if (fresh) {
    e.tokens_milli = full;
    e.at_ms = now_ms;
  }
  auto refuse = [&](Acquire why) {
    if (fresh) {
      entries_.erase(it);
    }
    return why;
  };
  if (limit != 0 && e.open >= limit) {
    return refuse(Acquire::kLimit);
  }
  if (rate != 0) {
    // `rate` connections a second is `rate` thousandths of one a millisecond.
    if (now_ms > e.at_ms) {
      e.tokens_milli = std::min(full, e.tokens_milli + (now_ms - e.at_ms) * rate);
      e.at_ms = now_ms;
    }
    if (e.tokens_milli < 1000) {
      return refuse(Acquire::kRate);
    }
    e.tokens_milli -= 1000;
  }
  ++e.open;
  return Acquire::kOk;
}

void ConnectionsPerIp::sweep(std::uint32_t rate, std::uint64_t now_ms) {
  const std::uint64_t full = std::uint64_t{rate} * 2 * 1000;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    bool refilled =
        rate == 0 || e.tokens_milli + (now_ms - std::min(now_ms, e.at_ms)) * rate >= full;
    it = e.open == 0 && refilled ? entries_.erase(it) : std::next(it);
  }
  // Sweeping again only once the table has doubled keeps the cost per accept constant.
  sweep_at_ = std::max<std::size_t>(1024, entries_.size() * 2);
}

void ConnectionsPerIp::release(const IpAddress& ip) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ip);
  if (it != entries_.end() && it->second.open > 0) {
    --it->second.open;
  }
}

std::uint32_t ConnectionsPerIp::count(const IpAddress& ip) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(ip);
  return it == entries_.end() ? 0 : it->second.open;
}

std::size_t ConnectionsPerIp::tracked() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
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

ConnectionTable::Admit ConnectionTable::admit(const Endpoint& peer, std::uint64_t now_ms) {
  if (live_ + reserved_ >= limits_.max_connections) {
    ++counters_->refused_total;
    return Admit::kTotal;
  }
  // An IPv4 client on a dual-stack socket is the same client as on an IPv4 one.
  switch (per_ip_->acquire(peer.ip.unmapped(), limits_.max_per_ip, limits_.accept_rate, now_ms)) {
    case ConnectionsPerIp::Acquire::kOk:
      break;
    case ConnectionsPerIp::Acquire::kLimit:
      ++counters_->refused_per_ip;
      return Admit::kPerIp;
    case ConnectionsPerIp::Acquire::kRate:
      ++counters_->refused_rate;
      return Admit::kRate;
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
