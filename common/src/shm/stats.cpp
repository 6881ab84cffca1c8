#include "ringlane/shm/stats.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <type_traits>

namespace ringlane {
namespace {
static_assert(std::is_trivially_copyable_v<WorkerStats>);
static_assert(sizeof(WorkerStats) % sizeof(std::uint64_t) == 0);
constexpr std::size_t kBlock =
    (sizeof(WorkerStats) + 63) / 64 * 64;  // one block per cache line run
constexpr std::size_t kHeader = 192;
static_assert(sizeof(StatsHeader) <= kHeader);

void copy_words(std::uint64_t* dst, const std::uint64_t* src, std::size_t words, bool store) {
  for (std::size_t i = 0; i < words; ++i) {
    if (store) {
      std::atomic_ref<std::uint64_t>(dst[i]).store(src[i], std::memory_order_relaxed);
    } else {
      dst[i] = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(src[i]))
                   .load(std::memory_order_relaxed);
    }
  }
}
}  // namespace

std::string stats_path(const std::string& name) {
  return "/dev/shm/ringlane-" + name + ".stats";
}

StatsPage::StatsPage(const std::string& name, std::uint32_t workers, const char* backend,
                     std::uint32_t media_port, const std::string& fingerprint) {
  bytes_ = kHeader + kBlock * workers;
  int fd = -1;
  if (!name.empty()) {
    path_ = stats_path(name);
    unlink(path_.c_str());
    fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes_)) != 0) {
      if (fd >= 0) {
        close(fd);
      }
      return;
    }
  }
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                 fd >= 0 ? MAP_SHARED : (MAP_PRIVATE | MAP_ANONYMOUS), fd, 0);
  if (fd >= 0) {
    close(fd);
  }
  if (p == MAP_FAILED) {
    return;
  }
  base_ = static_cast<std::uint8_t*>(p);
  auto* h = reinterpret_cast<StatsHeader*>(base_);
  h->version = kStatsVersion;
  h->workers = workers;
  h->pid = static_cast<std::uint64_t>(getpid());
  std::strncpy(h->backend, backend, sizeof(h->backend) - 1);
  h->media_port = media_port;
  std::strncpy(h->fingerprint, fingerprint.c_str(), sizeof(h->fingerprint) - 1);
  std::atomic_ref<std::uint64_t>(h->magic).store(kStatsMagic, std::memory_order_release);
}

StatsPage::~StatsPage() {
  if (base_ != nullptr) {
    munmap(base_, bytes_);
  }
  if (!path_.empty()) {
    unlink(path_.c_str());
  }
}

void StatsPage::publish(std::uint32_t worker, const WorkerStats& s) {
  auto* dst = reinterpret_cast<std::uint64_t*>(base_ + kHeader + kBlock * worker);
  copy_words(dst, reinterpret_cast<const std::uint64_t*>(&s), sizeof(s) / 8, true);
}

bool read_stats(const std::string& name, StatsSnapshot& out, std::string& error) {
  std::string path = stats_path(name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "no stats page at " + path + " (is `ringlane run --name " + name + "` running?)";
    return false;
  }
  struct stat st {};
  fstat(fd, &st);
  auto size = static_cast<std::size_t>(st.st_size);
  void* p = size >= kHeader ? mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED) {
    error = path + " is too small or unreadable";
    return false;
  }
  auto* base = static_cast<std::uint8_t*>(p);
  StatsHeader h;
  std::memcpy(&h, base, sizeof(h));
  bool ok =
      h.magic == kStatsMagic && h.version == kStatsVersion && size >= kHeader + kBlock * h.workers;
  if (!ok) {
    error = path + ": magic/version/size mismatch (a different ringlane build wrote it)";
  } else {
    out.pid = h.pid;
    out.backend.assign(h.backend, strnlen(h.backend, sizeof(h.backend)));
    out.media_port = h.media_port;
    out.fingerprint.assign(h.fingerprint, strnlen(h.fingerprint, sizeof(h.fingerprint)));
    out.workers.resize(h.workers);
    for (std::uint32_t i = 0; i < h.workers; ++i) {
      copy_words(reinterpret_cast<std::uint64_t*>(&out.workers[i]),
                 reinterpret_cast<const std::uint64_t*>(base + kHeader + kBlock * i),
                 sizeof(WorkerStats) / 8, false);
    }
  }
  munmap(p, size);
  return ok;
}

}  // namespace ringlane
