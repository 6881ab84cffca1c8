#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/stun/message.hpp"
#include "ringlane/dataplane/turn/relay_ports.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane::turn {

struct Permission {
  IpAddress peer;
  std::uint64_t expires_ms;
};

struct Channel {
  std::uint16_t number;
  Endpoint peer;
  std::uint64_t expires_ms;
};

// Byte budget per allocation (RFC 8656 §21.2.4: a server should limit bandwidth).
class TokenBucket {
 public:
  void configure(std::uint64_t bytes_per_s, std::uint64_t now_ms) {
    rate_ = bytes_per_s;
    tokens_ = bytes_per_s;  // one second of burst
    last_ms_ = now_ms;
  }
  bool take(std::uint64_t bytes, std::uint64_t now_ms) {
    if (rate_ == 0) {
      return true;
    }
    if (now_ms > last_ms_) {
      tokens_ = std::min(rate_, tokens_ + (now_ms - last_ms_) * rate_ / 1000);
      last_ms_ = now_ms;
    }
    if (tokens_ < bytes) {
      return false;
    }
    tokens_ -= bytes;
    return true;
  }

 private:
  std::uint64_t rate_ = 0;
  std::uint64_t tokens_ = 0;
  std::uint64_t last_ms_ = 0;
};

struct Allocation {
  bool live = false;
  SocketId listener;
  Endpoint client;
  RelaySocket relay;
  std::string username;
  CredentialKey key{};
  stun::TransactionId allocate_tid{};
  std::uint64_t expires_ms = 0;
  std::vector<Permission> permissions;
  std::vector<Channel> channels;
  TokenBucket bandwidth;

  const Permission* find_permission(const IpAddress& ip, std::uint64_t now_ms) const {
    for (const auto& p : permissions) {
      if (p.peer == ip && p.expires_ms > now_ms) {
        return &p;
      }
    }
    return nullptr;
  }
  Channel* find_channel(std::uint16_t number) {
    for (auto& c : channels) {
      if (c.number == number) {
        return &c;
      }
    }
    return nullptr;
  }
  Channel* find_channel(const Endpoint& peer) {
    for (auto& c : channels) {
      if (c.peer == peer) {
        return &c;
      }
    }
    return nullptr;
  }
};

}  // namespace ringlane::turn
