#include "ringlane/dataplane/turn/user_quota.hpp"

namespace ringlane::turn {

bool UserQuota::acquire(const std::string& user, std::uint32_t limit) {
  std::lock_guard lock(mutex_);
  auto& n = counts_[user];
  if (limit != 0 && n >= limit) {
    return false;
  }
  ++n;
  return true;
}

void UserQuota::release(const std::string& user) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(user);
  if (it != counts_.end() && --it->second == 0) {
    counts_.erase(it);
  }
}

std::uint32_t UserQuota::count(const std::string& user) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(user);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace ringlane::turn
