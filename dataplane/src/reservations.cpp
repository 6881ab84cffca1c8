#include "ringlane/dataplane/reservations.hpp"

#include <unistd.h>

namespace ringlane {

ReservationRegistry::~ReservationRegistry() {
  for (auto& [token, e] : entries_) {
    close(e.held.fd);
  }
}

void ReservationRegistry::put(std::uint64_t token, Held held, std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  entries_[token] = Entry{held, now_ms + kHoldMs};
}

std::optional<ReservationRegistry::Held> ReservationRegistry::take(std::uint64_t token,
                                                                   std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(token);
  if (it == entries_.end() || it->second.expires_ms <= now_ms) {
    return std::nullopt;
  }
  Held h = it->second.held;
  entries_.erase(it);
  return h;
}

void ReservationRegistry::expire(std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [now_ms](const auto& kv) {
    if (kv.second.expires_ms > now_ms) {
      return false;
    }
    close(kv.second.held.fd);
    return true;
  });
}

std::size_t ReservationRegistry::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace ringlane
