#pragma once
// A listener whose accept fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) would fail again at once, as long as the connection waits in its backlog: a loop that
// re-arms (uring) or stays readable (epoll) would spin a core on it. Such a listener rests for
// kAcceptRestMs instead; connections wait in the kernel's backlog meanwhile. Both backends.
#include <time.h>

#include <cerrno>
#include <cstdint>

namespace ringlane::io {

inline constexpr std::uint64_t kAcceptRestMs = 100;

inline bool accept_starved(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

inline std::uint64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

// The poll timeout that wakes up for a listener resting until `resume_ms` (`timeout_ms` < 0:
// none given).
inline int rest_timeout(int timeout_ms, std::uint64_t resume_ms, std::uint64_t now_ms) {
  int rest = resume_ms > now_ms ? static_cast<int>(resume_ms - now_ms) : 0;
  return timeout_ms < 0 || rest < timeout_ms ? rest : timeout_ms;
}

}  // namespace ringlane::io
