#pragma once
// Relay ports held for a RESERVATION-TOKEN (RFC 8656 §7.2). The client's second Allocate may
// arrive from another source port and so at another worker (SO_REUSEPORT), so the held
// socket sits here, bound but never polled, until a worker claims it and adopts the fd into
// its own io backend. Touched only by Allocate requests, never on the packet path.
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "ringlane/common/endpoint.hpp"

namespace ringlane {

class ReservationRegistry {
 public:
  struct Held {
    int fd;
    Endpoint address;  // as advertised
  };
  static constexpr std::uint64_t kHoldMs = 30'000;

  ~ReservationRegistry();
  void put(std::uint64_t token, Held held, std::uint64_t now_ms);
  std::optional<Held> take(std::uint64_t token, std::uint64_t now_ms);
  // Closes held sockets whose time is up.
  void expire(std::uint64_t now_ms);
  std::size_t size() const;

 private:
  struct Entry {
    Held held;
    std::uint64_t expires_ms;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, Entry> entries_;
};

}  // namespace ringlane
