// Dispatch, the relay paths (ChannelData, Send/Data indications) and timers.
#include "ringlane/dataplane/turn/server.hpp"

#include <algorithm>

#include "ringlane/dataplane/stun/builder.hpp"

namespace ringlane::turn {
namespace {
constexpr std::uint32_t kNoAllocation = UINT32_MAX;
constexpr std::size_t kMaxUnauthorizedSources = 65536;
}  // namespace

Server::Server(ServerConfig config, RelayPorts& relay_ports)
    : policy_(std::move(config.policy)),
      quota_(config.quota ? std::move(config.quota) : std::make_shared<UserQuota>()),
      nonces_(config.nonce_secret),
      relay_ports_(relay_ports),
      own_media_ips_(std::move(config.own_media_ips)),
      own_media_port_min_(config.own_media_port_min),
      own_media_port_max_(config.own_media_port_max) {}

Server::~Server() {
  for (std::uint32_t i = 0; i < allocations_.size(); ++i) {
    if (allocations_[i].live) {
      free_allocation(i, false);
    }
  }
}

SendDecision Server::on_client_packet(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                                      const Now& now) {
  ++counters_.client_packets_in;
  counters_.client_bytes_in += pkt.length;
  if (pkt.length < 4) {
    counters_.drop(Drop::kTooShort);
    return {};
  }
  // RFC 7983: 0x00-0x3F is STUN, 0x40-0x7F ChannelData (RFC 5766 channel numbers; the
  // channel lookup refuses numbers the policy does not allow).
  std::uint8_t first = pkt.data()[0];
  if (first < 0x40) {
    return on_stun(listener, client, pkt, now);
  }
  if (first < 0x80) {
    return on_channel_data(listener, client, pkt, now);
  }
  counters_.drop(Drop::kNotTurn);
  return {};
}

SendDecision Server::on_stun(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                             const Now& now) {
  auto msg = stun::Message::parse(pkt.bytes());
  if (!msg) {
    counters_.drop(Drop::kStunMalformed);
    return {};
  }
  if (msg->has_fingerprint() && !msg->check_fingerprint()) {
    counters_.drop(Drop::kBadFingerprint);
    return {};
  }
  switch (msg->message_class()) {
    case stun::Class::kRequest: {
      Reply r{*msg, listener, client, pkt, now};
      return on_request(r);
    }
    case stun::Class::kIndication:
      if (msg->method() == stun::Method::kSend) {
        return on_send_indication(*msg, listener, client, pkt, now);
      }
      // Binding indications are keepalives (RFC 8489 §6.3.2): nothing to do.
      if (msg->method() == stun::Method::kBinding) {
        return {};
      }
      counters_.drop(Drop::kUnknownMethod);
      return {};
    default:
      counters_.drop(Drop::kUnexpectedClass);
      return {};
  }
}

SendDecision Server::on_channel_data(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                                     const Now& now) {
  const std::uint8_t* p = pkt.data();
  std::uint16_t number = load_be16(p);
  std::uint32_t length = load_be16(p + 2);
  // RFC 8656 §12.4: over UDP the datagram may carry up to 3 bytes of padding past the data.
  if (length > pkt.length - 4) {
    counters_.drop(Drop::kChannelMalformed);
    return {};
  }
  Allocation* a = find_allocation(listener, client);
  if (a == nullptr) {
    counters_.drop(Drop::kNoAllocation);
    return {};
  }
  Channel* ch = a->find_channel(number);
  if (ch == nullptr || ch->expires_ms <= now.mono_ms) {
    counters_.drop(Drop::kNoChannel);
    return {};
  }
  if (a->find_permission(ch->peer.ip, now.mono_ms) == nullptr) {
    counters_.drop(Drop::kNoPermission);
    return {};
  }
  if (!a->bandwidth.take(length, now.mono_ms)) {
    counters_.drop(Drop::kBandwidthCap);
    return {};
  }
  pkt.narrow(4, length);
  ++counters_.relayed_to_peer;
  counters_.relayed_bytes_to_peer += length;
  return {true, a->relay.id, ch->peer};
}

bool Server::own_media_ip(const IpAddress& ip) const {
  if (own_media_port_min_ == 0) {
    return false;
  }
  IpAddress plain = ip.unmapped();
  for (const auto& own : own_media_ips_) {
    if (own == plain) {
      return true;
    }
  }
  return false;
}

bool Server::own_media(const Endpoint& peer) const {
  return own_media_ip(peer.ip) && peer.port >= own_media_port_min_ &&
         peer.port <= own_media_port_max_;
}

SendDecision Server::on_send_indication(const stun::Message& msg, SocketId listener,
                                        const Endpoint& client, PacketBuffer& pkt, const Now& now) {
  Allocation* a = find_allocation(listener, client);
  if (a == nullptr) {
    counters_.drop(Drop::kNoAllocation);
    return {};
  }
  auto peer = msg.find_xor_address(stun::attr::kXorPeerAddress);
  auto data = msg.find(stun::attr::kData);
  if (!peer || !data) {
    counters_.drop(Drop::kSendMalformed);
    return {};
  }
  // RFC 8656 §10.2: no permission, no relay; indications get no error reply.
  if (a->find_permission(peer->ip, now.mono_ms) == nullptr ||
      (!policy_->peer_allowed(peer->ip) && !own_media(*peer))) {
    // The second test: a permission for this node's own media IP admits its media ports only.
    counters_.drop(Drop::kNoPermission);
    return {};
  }
  if (!a->bandwidth.take(data->size(), now.mono_ms)) {
    counters_.drop(Drop::kBandwidthCap);
    return {};
  }
  auto from = static_cast<std::uint32_t>(data->data() - pkt.data());
  pkt.narrow(from, static_cast<std::uint32_t>(data->size()));
  ++counters_.relayed_to_peer;
  counters_.relayed_bytes_to_peer += pkt.length;
  return {true, a->relay.id, *peer};
}

SendDecision Server::on_peer_packet(SocketId relay, const Endpoint& peer, PacketBuffer& pkt,
                                    const Now& now) {
  ++counters_.peer_packets_in;
  counters_.peer_bytes_in += pkt.length;
  std::uint32_t index = relay.value < by_relay_.size() ? by_relay_[relay.value] : kNoAllocation;
  if (index == kNoAllocation) {
    counters_.drop(Drop::kNoAllocation);
    return {};
  }
  Allocation& a = allocations_[index];
  if (a.find_permission(peer.ip, now.mono_ms) == nullptr) {
    counters_.drop(Drop::kNoPermission);
    return {};
  }
  if (!a.bandwidth.take(pkt.length, now.mono_ms)) {
    counters_.drop(Drop::kBandwidthCap);
    return {};
  }
  std::uint32_t payload = pkt.length;
  Channel* ch = a.find_channel(peer);
  if (ch != nullptr && ch->expires_ms > now.mono_ms) {
    // RFC 8656 §12.5: ChannelData header prepended in place; no padding needed over UDP.
    if (!pkt.prepend(4) || payload > 0xFFFF) {
      counters_.drop(Drop::kNoRoom);
      return {};
    }
    store_be16(pkt.data(), ch->number);
    store_be16(pkt.data() + 2, static_cast<std::uint16_t>(payload));
  } else {
    // RFC 8656 §10.3: a Data indication with XOR-PEER-ADDRESS and DATA, built around the
    // payload where it lies.
    std::uint32_t addr_len = peer.family() == Family::kV4 ? 8 : 20;
    std::uint32_t header = static_cast<std::uint32_t>(stun::kHeaderSize) + 4 + addr_len + 4;
    std::uint32_t pad = (4 - payload % 4) % 4;
    if (pkt.headroom() < header || pkt.tailroom() < pad || payload + pad + header > 0xFFFF) {
      counters_.drop(Drop::kNoRoom);
      return {};
    }
    std::memset(pkt.data() + payload, 0, pad);
    pkt.prepend(header);
    // A cheap per-worker sequence stands in for the transaction id: indications are never
    // answered, so it only has to differ between messages.
    indication_seed_ ^= indication_seed_ << 13;
    indication_seed_ ^= indication_seed_ >> 7;
    indication_seed_ ^= indication_seed_ << 17;
    stun::TransactionId tid{};
    store_be64(tid.data(), indication_seed_);
    store_be32(tid.data() + 8, static_cast<std::uint32_t>(counters_.relayed_to_client));
    stun::Builder b(MutableBytes(pkt.data(), header - 4), stun::Method::kData,
                    stun::Class::kIndication, tid);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer);
    std::uint8_t* data_attr = pkt.data() + header - 4;
    store_be16(data_attr, stun::attr::kData);
    store_be16(data_attr + 2, static_cast<std::uint16_t>(payload));
    store_be16(pkt.data() + 2,
               static_cast<std::uint16_t>(header - stun::kHeaderSize + payload + pad));
    pkt.length += pad;
  }
  ++counters_.relayed_to_client;
  counters_.relayed_bytes_to_client += payload;
  return {true, a.listener, a.client};
}

void Server::on_timer(const Now& now) {
  for (std::uint32_t i = 0; i < allocations_.size(); ++i) {
    Allocation& a = allocations_[i];
    if (!a.live) {
      continue;
    }
    if (a.expires_ms <= now.mono_ms) {
      free_allocation(i, true);
      continue;
    }
    std::erase_if(a.permissions, [&](const Permission& p) { return p.expires_ms <= now.mono_ms; });
    std::erase_if(a.channels, [&](const Channel& c) { return c.expires_ms <= now.mono_ms; });
  }
  if (unauthorized_budget_.size() > kMaxUnauthorizedSources) {
    unauthorized_budget_.clear();
  }
  recount_gauges();
}

void Server::recount_gauges() {
  counters_.allocations = by_client_.size();
  std::uint64_t permissions = 0;
  std::uint64_t channels = 0;
  for (const auto& a : allocations_) {
    if (a.live) {
      permissions += a.permissions.size();
      channels += a.channels.size();
    }
  }
  counters_.permissions = permissions;
  counters_.channels = channels;
}

Allocation* Server::find_allocation(SocketId listener, const Endpoint& client) {
  auto it = by_client_.find(ClientKey{listener, client});
  return it == by_client_.end() ? nullptr : &allocations_[it->second];
}

bool Server::has_allocation(SocketId transport, const Endpoint& client) const {
  return by_client_.contains(ClientKey{transport, client});
}

bool Server::close_transport(SocketId transport, const Endpoint& client) {
  auto it = by_client_.find(ClientKey{transport, client});
  if (it == by_client_.end()) {
    return false;
  }
  free_allocation(it->second, false);
  return true;
}

void Server::free_allocation(std::uint32_t index, bool expired) {
  Allocation& a = allocations_[index];
  relay_ports_.close(a.relay.id);
  if (a.relay.id.value < by_relay_.size()) {
    by_relay_[a.relay.id.value] = kNoAllocation;
  }
  by_client_.erase(ClientKey{a.listener, a.client});
  quota_->release(a.username);
  ++(expired ? counters_.allocations_expired : counters_.allocations_deleted);
  a = Allocation{};
  free_slots_.push_back(index);
  counters_.allocations = by_client_.size();
}

bool Server::rate_limited(const IpAddress& source, std::uint64_t now_ms) {
  const Policy& p = *policy_;
  if (p.unauthorized_per_s == 0) {
    return false;
  }
  std::uint64_t burst = std::uint64_t{p.unauthorized_burst} * 1000;
  auto [it, fresh] = unauthorized_budget_.try_emplace(source, SourceBudget{burst, now_ms});
  SourceBudget& b = it->second;
  if (!fresh && now_ms > b.last_ms) {
    b.tokens_milli = std::min(burst, b.tokens_milli + (now_ms - b.last_ms) * p.unauthorized_per_s);
    b.last_ms = now_ms;
  }
  if (b.tokens_milli < 1000) {
    return true;
  }
  b.tokens_milli -= 1000;
  return false;
}

}  // namespace ringlane::turn
