#pragma once
// Allocations per user across all workers (the limit is Policy::user_quota).
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ringlane::turn {

// Touched on Allocate and on deletion only, never on the packet path, so a mutex is fine.
class UserQuota {
 public:
  // True and counted when `user` has fewer than `limit` allocations (limit 0 = unlimited).
  bool acquire(const std::string& user, std::uint32_t limit);
  void release(const std::string& user);
  std::uint32_t count(const std::string& user) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> counts_;
};

}  // namespace ringlane::turn
