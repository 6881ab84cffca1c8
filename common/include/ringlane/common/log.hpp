#pragma once
// spdlog setup shared by every binary, and a rate limiter for log lines on the packet path.
#include <cstdint>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ringlane {

// level: trace, debug, info, warn, error, off. json=true prints one JSON object a line.
void init_logging(std::string_view level, bool json);

// At most `per_interval` lines per interval; the rest are counted and reported with the next
// line that passes. Single-threaded use (one per worker).
class LogLimiter {
 public:
  explicit LogLimiter(std::uint32_t per_interval = 10, std::uint64_t interval_ms = 1000)
      : per_interval_(per_interval), interval_ms_(interval_ms) {}
  // Returns true when a line may be written now; `suppressed` receives how many were dropped.
  bool allow(std::uint64_t now_ms, std::uint64_t& suppressed) {
    if (now_ms - window_start_ >= interval_ms_) {
      window_start_ = now_ms;
      used_ = 0;
    }
    if (used_ < per_interval_) {
      ++used_;
      suppressed = suppressed_;
      suppressed_ = 0;
      return true;
    }
    ++suppressed_;
    return false;
  }

 private:
  std::uint32_t per_interval_;
  std::uint64_t interval_ms_;
  std::uint64_t window_start_ = 0;
  std::uint32_t used_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace ringlane
