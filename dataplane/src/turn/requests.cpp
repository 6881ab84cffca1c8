// Requests: authentication, Binding, Allocate, Refresh, CreatePermission, ChannelBind.
#include <algorithm>

#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/dataplane/turn/server.hpp"
#include "ringlane/turn/rest_credentials.hpp"

namespace ringlane::turn {
namespace attr = stun::attr;
namespace err = stun::error;
using stun::Class;
using stun::Method;

namespace {
constexpr std::uint8_t kUdp = 17;
constexpr std::size_t kMaxPeersPerRequest = 16;

// REQUESTED-ADDRESS-FAMILY value -> family (RFC 8656 §18.1); nullopt for an unknown family.
std::optional<Family> family_from_attr(Bytes v) {
  if (v.size() != 4) {
    return std::nullopt;
  }
  if (v[0] == 0x01) {
    return Family::kV4;
  }
  if (v[0] == 0x02) {
    return Family::kV6;
  }
  return std::nullopt;
}
}  // namespace

template <typename F>
SendDecision Server::respond(Reply& r, Class cls, F&& add_attributes) {
  stun::Builder b(scratch_, r.request.method(), cls, r.request.transaction_id());
  add_attributes(b);
  if (!policy_->software.empty()) {
    b.add_string(attr::kSoftware, policy_->software);
  }
  if (r.key != nullptr) {
    b.add_integrity(*r.key);
  }
  if (r.request.has_fingerprint()) {
    b.add_fingerprint();
  }
  // The request view points into pkt; it is not read again after this copy.
  if (!b.ok() || !r.pkt.assign(b.bytes())) {
    counters_.drop(Drop::kNoRoom);
    return {};
  }
  ++counters_.responses;
  if (cls == Class::kError) {
    ++counters_.error_responses;
  }
  return {true, r.listener, r.client};
}

SendDecision Server::error(Reply& r, std::uint16_t code, const char* reason) {
  return respond(r, Class::kError, [&](stun::Builder& b) { b.add_error(code, reason); });
}

SendDecision Server::challenge(Reply& r, std::uint16_t code, const char* reason) {
  if (rate_limited(r.client.ip, r.now.mono_ms)) {
    counters_.drop(Drop::kRateLimited);
    return {};
  }
  auto nonce = nonces_.issue(r.client.ip, r.now.unix_s, policy_->nonce_lifetime_s);
  r.key = nullptr;
  return respond(r, Class::kError, [&](stun::Builder& b) {
    b.add_error(code, reason);
    b.add_string(attr::kRealm, policy_->realm);
    b.add_string(attr::kNonce, nonce);
  });
}

SendDecision Server::on_request(Reply& r) {
  std::array<std::uint16_t, 8> unknown{};
  if (std::size_t n = r.request.unknown_required(unknown); n > 0) {
    return respond(r, Class::kError, [&](stun::Builder& b) {
      b.add_error(err::kUnknownAttribute, "Unknown Attribute");
      b.add_unknown_attributes(std::span<const std::uint16_t>(unknown.data(), n));
    });
  }
  Method method = r.request.method();
  switch (method) {
    case Method::kBinding:
      return binding_success(r);
    case Method::kAllocate:
    case Method::kRefresh:
    case Method::kCreatePermission:
    case Method::kChannelBind:
      break;
    default:
      return error(r, err::kBadRequest, "Unknown Method");
  }
  Allocation* existing = find_allocation(r.listener, r.client);
  AuthResult auth;
  SendDecision out;
  if (!authenticate(r, existing, auth, out)) {
    return out;
  }
  r.key = &auth.key;
  if (method == Method::kAllocate) {
    return on_allocate(r, auth);
  }
  if (existing == nullptr) {
    return error(r, err::kAllocationMismatch, "Allocation Mismatch");
  }
  // RFC 8656 §5: requests on an allocation must come from the user who made it.
  if (auth.username != existing->username) {
    return error(r, err::kWrongCredentials, "Wrong Credentials");
  }
  switch (method) {
    case Method::kRefresh:
      return on_refresh(r, *existing);
    case Method::kCreatePermission:
      return on_create_permission(r, *existing);
    default:
      return on_channel_bind(r, *existing);
  }
}

bool Server::authenticate(Reply& r, Allocation* existing, AuthResult& auth, SendDecision& out) {
  const Policy& p = *policy_;
  const stun::Message& m = r.request;
  // RFC 8489 §9.2.4: no MESSAGE-INTEGRITY -> 401 with realm and nonce.
  if (!m.has_integrity()) {
    ++counters_.auth_challenges;
    out = challenge(r, err::kUnauthorized, "Unauthorized");
    return false;
  }
  auto username = m.find_string(attr::kUsername);
  auto realm = m.find_string(attr::kRealm);
  auto nonce = m.find_string(attr::kNonce);
  if (!username || !realm || !nonce) {
    out = error(r, err::kBadRequest, "Missing USERNAME, REALM or NONCE");
    return false;
  }
  if (nonces_.check(*nonce, r.client.ip, r.now.unix_s) != NonceIssuer::Check::kValid) {
    ++counters_.stale_nonces;
    out = challenge(r, err::kStaleNonce, "Stale Nonce");
    return false;
  }
  auth.username = std::string(*username);
  if (*realm == p.realm) {
    if (existing != nullptr && existing->username == auth.username &&
        m.check_integrity(existing->key)) {
      auth.key = existing->key;
      auth.ok = true;
    } else if (auto it = p.users.find(auth.username); it != p.users.end()) {
      auth.ok = m.check_integrity(it->second);
      auth.key = it->second;
    } else if (auto expiry = rest_username_expiry(*username); expiry && *expiry >= r.now.unix_s) {
      for (const auto& secret : p.rest_secrets) {
        auth.key = stun::long_term_key(*username, p.realm, rest_password(secret, *username));
        if (m.check_integrity(auth.key)) {
          auth.ok = true;
          break;
        }
      }
    }
  }
  if (!auth.ok) {
    ++counters_.auth_failures;
    out = challenge(r, err::kUnauthorized, "Unauthorized");
    return false;
  }
  return true;
}

SendDecision Server::binding_success(Reply& r) {
  return respond(r, Class::kSuccess, [&](stun::Builder& b) {
    b.add_xor_address(attr::kXorMappedAddress, r.client);
    // RFC 3489-era clients read MAPPED-ADDRESS; it costs 12 bytes.
    b.add_address(attr::kMappedAddress, r.client);
  });
}

std::uint32_t Server::lifetime_for(std::optional<std::uint32_t> requested) const {
  // RFC 8656 §7.2: min(requested, maximum), but never below the default.
  const Policy& p = *policy_;
  std::uint32_t floor = std::min(p.default_lifetime_s, p.max_lifetime_s);
  if (!requested) {
    return floor;
  }
  return std::max(std::min(*requested, p.max_lifetime_s), floor);
}

SendDecision Server::allocate_success(Reply& r, const Allocation& a, const std::uint64_t* token) {
  auto remaining = static_cast<std::uint32_t>((a.expires_ms - r.now.mono_ms + 999) / 1000);
  bool dual_requested = r.request.has(attr::kAdditionalAddressFamily);
  return respond(r, Class::kSuccess, [&](stun::Builder& b) {
    b.add_xor_address(attr::kXorRelayedAddress, a.relay.address);
    b.add_u32(attr::kLifetime, remaining);
    if (token != nullptr) {
      b.add_u64(attr::kReservationToken, *token);
    }
    if (dual_requested) {
      // RFC 8656 §7.2: a second (IPv6) relay is not offered; say so and keep the first.
      static constexpr std::uint8_t kNoDual[] = {0x02, 0, 4, 40, 'N', 'o', ' ', 'd', 'u', 'a', 'l'};
      b.add_bytes(attr::kAddressErrorCode, kNoDual);
    }
    b.add_xor_address(attr::kXorMappedAddress, r.client);
  });
}

SendDecision Server::on_allocate(Reply& r, const AuthResult& auth) {
  const stun::Message& m = r.request;
  const Policy& p = *policy_;
  if (Allocation* a = find_allocation(r.listener, r.client)) {
    // A retransmitted Allocate gets the same answer (RFC 8656 §7.2); any other is a mismatch.
    if (a->allocate_tid == m.transaction_id() && a->username == auth.username) {
      return allocate_success(r, *a, nullptr);
    }
    return error(r, err::kAllocationMismatch, "Allocation Mismatch");
  }
  auto transport = m.find(attr::kRequestedTransport);
  if (!transport || transport->size() != 4) {
    return error(r, err::kBadRequest, "REQUESTED-TRANSPORT missing");
  }
  if ((*transport)[0] != kUdp) {
    return error(r, err::kUnsupportedTransport, "Unsupported Transport Protocol");
  }
  auto token_attr = m.find(attr::kReservationToken);
  auto even = m.find(attr::kEvenPort);
  auto family_attr = m.find(attr::kRequestedAddressFamily);
  if (token_attr && (even || family_attr)) {
    return error(r, err::kBadRequest, "RESERVATION-TOKEN with EVEN-PORT or family");
  }
  RelayPorts::Request req;
  if (family_attr) {
    auto f = family_from_attr(*family_attr);
    if (!f) {
      return error(r, err::kAddressFamilyNotSupported, "Address Family not Supported");
    }
    req.family = *f;
  }
  if (!token_attr && !relay_ports_.supports(req.family)) {
    return error(r, err::kAddressFamilyNotSupported, "Address Family not Supported");
  }
  if (even) {
    if (even->empty()) {
      return error(r, err::kBadRequest, "Bad EVEN-PORT");
    }
    req.even_port = true;
    req.reserve_next = ((*even)[0] & 0x80) != 0;
  }
  req.dont_fragment = m.has(attr::kDontFragment);
  if (token_attr && token_attr->size() != 8) {
    return error(r, err::kBadRequest, "Bad RESERVATION-TOKEN");
  }
  if (by_client_.size() >= p.max_allocations) {
    return error(r, err::kInsufficientCapacity, "Insufficient Capacity");
  }
  if (!quota_->acquire(auth.username, p.user_quota)) {
    ++counters_.quota_rejections;
    return error(r, err::kAllocationQuotaReached, "Allocation Quota Reached");
  }
  RelaySocket relay;
  std::optional<std::uint64_t> token;
  if (token_attr) {
    auto claimed = relay_ports_.claim(load_be64(token_attr->data()));
    if (!claimed) {
      quota_->release(auth.username);
      return error(r, err::kInsufficientCapacity, "Unknown reservation");
    }
    relay = *claimed;
  } else {
    auto opened = relay_ports_.open(req);
    if (!opened) {
      quota_->release(auth.username);
      return error(r, err::kInsufficientCapacity, "Insufficient Capacity");
    }
    relay = opened->socket;
    token = opened->token;
  }

  std::uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(allocations_.size());
    allocations_.emplace_back();
  }
  Allocation& a = allocations_[index];
  a.live = true;
  a.listener = r.listener;
  a.client = r.client;
  a.relay = relay;
  a.username = auth.username;
  a.key = auth.key;
  a.allocate_tid = m.transaction_id();
  a.expires_ms = r.now.mono_ms + std::uint64_t{lifetime_for(m.find_u32(attr::kLifetime))} * 1000;
  a.bandwidth.configure(p.allocation_bandwidth_bps, r.now.mono_ms);
  by_client_[ClientKey{r.listener, r.client}] = index;
  if (relay.id.value >= by_relay_.size()) {
    by_relay_.resize(relay.id.value + 1, UINT32_MAX);
  }
  by_relay_[relay.id.value] = index;
  ++counters_.allocations_created;
  counters_.allocations = by_client_.size();
  return allocate_success(r, a, token ? &*token : nullptr);
}

SendDecision Server::on_refresh(Reply& r, Allocation& a) {
  const stun::Message& m = r.request;
  if (auto fam = m.find(attr::kRequestedAddressFamily)) {
    auto f = family_from_attr(*fam);
    if (!f) {
      return error(r, err::kAddressFamilyNotSupported, "Address Family not Supported");
    }
    if (*f != a.relay.address.family()) {
      return error(r, err::kPeerAddressFamilyMismatch, "Peer Address Family Mismatch");
    }
  }
  auto requested = m.find_u32(attr::kLifetime);
  std::uint32_t lifetime = 0;
  if (requested && *requested == 0) {
    free_allocation(static_cast<std::uint32_t>(&a - allocations_.data()), false);
  } else {
    lifetime = lifetime_for(requested);
    a.expires_ms = r.now.mono_ms + std::uint64_t{lifetime} * 1000;
  }
  return respond(r, Class::kSuccess,
                 [&](stun::Builder& b) { b.add_u32(attr::kLifetime, lifetime); });
}

void Server::install_permission(Allocation& a, const IpAddress& peer, std::uint64_t now_ms) {
  std::uint64_t expires = now_ms + std::uint64_t{policy_->permission_lifetime_s} * 1000;
  for (auto& p : a.permissions) {
    if (p.peer == peer) {
      p.expires_ms = expires;
      return;
    }
  }
  a.permissions.push_back(Permission{peer, expires});
}

SendDecision Server::on_create_permission(Reply& r, Allocation& a) {
  const stun::Message& m = r.request;
  auto tid = m.transaction_id();
  std::array<IpAddress, kMaxPeersPerRequest> peers{};
  std::size_t n = 0;
  bool bad = false;
  bool mismatch = false;
  bool forbidden = false;
  m.for_each(attr::kXorPeerAddress, [&](Bytes v) {
    auto ep = stun::decode_xor_address(v, tid);
    if (!ep || n == peers.size()) {
      bad = true;
    } else if (ep->family() != a.relay.address.family()) {
      mismatch = true;
    } else if (!policy_->peer_allowed(ep->ip) && !own_media_ip(ep->ip)) {
      forbidden = true;
    } else {
      peers[n++] = ep->ip;
    }
  });
  if (bad || (n == 0 && !mismatch && !forbidden)) {
    return error(r, err::kBadRequest, "Bad XOR-PEER-ADDRESS");
  }
  if (mismatch) {
    return error(r, err::kPeerAddressFamilyMismatch, "Peer Address Family Mismatch");
  }
  if (forbidden) {
    ++counters_.forbidden_peers;
    return error(r, err::kForbidden, "Forbidden");
  }
  std::size_t fresh = 0;
  for (std::size_t i = 0; i < n; ++i) {
    fresh += a.find_permission(peers[i], 0) == nullptr ? 1 : 0;
  }
  if (a.permissions.size() + fresh > policy_->max_permissions) {
    return error(r, err::kInsufficientCapacity, "Too many permissions");
  }
  for (std::size_t i = 0; i < n; ++i) {
    install_permission(a, peers[i], r.now.mono_ms);
  }
  return respond(r, Class::kSuccess, [](stun::Builder&) {});
}

SendDecision Server::on_channel_bind(Reply& r, Allocation& a) {
  const stun::Message& m = r.request;
  auto number_attr = m.find(attr::kChannelNumber);
  auto peer = m.find_xor_address(attr::kXorPeerAddress);
  if (!number_attr || number_attr->size() != 4 || !peer) {
    return error(r, err::kBadRequest, "CHANNEL-NUMBER or XOR-PEER-ADDRESS missing");
  }
  std::uint16_t number = load_be16(number_attr->data());
  // RFC 8656 §12: 0x4000 through 0x4FFF; RFC 5766 §11: through 0x7FFE.
  std::uint16_t highest = policy_->strict_channel_numbers ? 0x4FFF : 0x7FFE;
  if (number < 0x4000 || number > highest) {
    return error(r, err::kBadRequest, "Channel number out of range");
  }
  if (peer->family() != a.relay.address.family()) {
    return error(r, err::kPeerAddressFamilyMismatch, "Peer Address Family Mismatch");
  }
  if (!policy_->peer_allowed(peer->ip) && !own_media(*peer)) {
    ++counters_.forbidden_peers;
    return error(r, err::kForbidden, "Forbidden");
  }
  Channel* by_number = a.find_channel(number);
  Channel* by_peer = a.find_channel(*peer);
  if ((by_number != nullptr && !(by_number->peer == *peer)) ||
      (by_peer != nullptr && by_peer->number != number)) {
    return error(r, err::kBadRequest, "Channel bound to another peer");
  }
  std::uint64_t expires = r.now.mono_ms + std::uint64_t{policy_->channel_lifetime_s} * 1000;
  if (by_number != nullptr) {
    by_number->expires_ms = expires;
  } else {
    if (a.channels.size() >= policy_->max_channels) {
      return error(r, err::kInsufficientCapacity, "Too many channels");
    }
    a.channels.push_back(Channel{number, *peer, expires});
  }
  // RFC 8656 §11.2: a channel binding also installs or refreshes the permission.
  install_permission(a, peer->ip, r.now.mono_ms);
  return respond(r, Class::kSuccess, [](stun::Builder&) {});
}

}  // namespace ringlane::turn
