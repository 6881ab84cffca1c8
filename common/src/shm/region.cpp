#include "ringlane/shm/region.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace ringlane::shm {
namespace {

struct alignas(kCacheLine) Header {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t workers;
  std::uint32_t ring_capacity;
  std::uint32_t stats_bytes;
  std::uint64_t total_bytes;
};

std::size_t round_up(std::size_t n) {
  return (n + kCacheLine - 1) / kCacheLine * kCacheLine;
}

std::size_t per_worker(std::uint32_t capacity, std::uint32_t stats_bytes) {
  return 2 * round_up(SpscRing::bytes_for(capacity)) + round_up(stats_bytes);
}

}  // namespace

std::unique_ptr<Region> Region::create(const std::string& name, std::uint32_t workers,
                                       std::uint32_t ring_capacity, std::uint32_t stats_bytes,
                                       std::string& error) {
  if (workers == 0 || ring_capacity == 0 || (ring_capacity & (ring_capacity - 1)) != 0) {
    error = "ring capacity must be a power of two and workers at least one";
    return nullptr;
  }
  std::size_t bytes = round_up(sizeof(Header)) + workers * per_worker(ring_capacity, stats_bytes);
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    error = std::string("memfd: ") + std::strerror(errno);
    if (fd >= 0)
      close(fd);
    return nullptr;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    error = std::string("mmap: ") + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  std::unique_ptr<Region> r(new Region());
  r->fd_ = fd;
  r->base_ = static_cast<std::uint8_t*>(p);
  r->bytes_ = bytes;
  auto* h = new (p) Header{0, kRegionVersion, workers, ring_capacity, stats_bytes, bytes};
  for (std::uint32_t w = 0; w < workers; ++w) {
    std::uint8_t* at = r->base_ + r->worker_offset(w);
    SpscRing::create(at, ring_capacity);
    SpscRing::create(at + round_up(SpscRing::bytes_for(ring_capacity)), ring_capacity);
  }
  // The magic goes in last: a reader that sees it sees a complete layout.
  std::atomic_ref<std::uint64_t>(h->magic).store(kRegionMagic, std::memory_order_release);
  return r;
}

std::unique_ptr<Region> Region::attach(int fd, std::string& error) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < sizeof(Header)) {
    error = "not a ringlane region: too small";
    return nullptr;
  }
  auto bytes = static_cast<std::size_t>(st.st_size);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    error = std::string("mmap: ") + std::strerror(errno);
    return nullptr;
  }
  Header h;
  std::memcpy(&h, p, sizeof(h));
  std::string why;
  if (h.magic != kRegionMagic) {
    why = "not a ringlane region (bad magic)";
  } else if (h.version != kRegionVersion) {
    why = "region layout version " + std::to_string(h.version) + ", this binary speaks " +
          std::to_string(kRegionVersion) + ": refusing to attach";
  } else if (h.workers == 0 || h.ring_capacity == 0 ||
             (h.ring_capacity & (h.ring_capacity - 1)) != 0) {
    why = "region header has an impossible worker count or ring capacity";
  } else if (h.total_bytes != bytes ||
             round_up(sizeof(Header)) + h.workers * per_worker(h.ring_capacity, h.stats_bytes) !=
                 bytes) {
    why = "region size does not match its header";
  }
  if (!why.empty()) {
    munmap(p, bytes);
    error = why;
    return nullptr;
  }
  std::unique_ptr<Region> r(new Region());
  r->fd_ = dup(fd);
  r->base_ = static_cast<std::uint8_t*>(p);
  r->bytes_ = bytes;
  return r;
}

Region::~Region() {
  if (base_ != nullptr)
    munmap(base_, bytes_);
  if (fd_ >= 0)
    close(fd_);
}

std::uint32_t Region::workers() const {
  return reinterpret_cast<const Header*>(base_)->workers;
}

std::size_t Region::worker_offset(std::uint32_t w) const {
  const auto* h = reinterpret_cast<const Header*>(base_);
  return round_up(sizeof(Header)) + w * per_worker(h->ring_capacity, h->stats_bytes);
}

SpscRing Region::commands(std::uint32_t w) const {
  const auto* h = reinterpret_cast<const Header*>(base_);
  return SpscRing::attach(base_ + worker_offset(w), h->ring_capacity);
}

SpscRing Region::events(std::uint32_t w) const {
  const auto* h = reinterpret_cast<const Header*>(base_);
  return SpscRing::attach(
      base_ + worker_offset(w) + round_up(SpscRing::bytes_for(h->ring_capacity)), h->ring_capacity);
}

void* Region::stats(std::uint32_t w) const {
  const auto* h = reinterpret_cast<const Header*>(base_);
  return base_ + worker_offset(w) + 2 * round_up(SpscRing::bytes_for(h->ring_capacity));
}

Doorbell::Doorbell() : fd_(eventfd(0, EFD_NONBLOCK)) {}

Doorbell::~Doorbell() {
  if (fd_ >= 0)
    close(fd_);
}

void Doorbell::ring() const {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = write(fd_, &one, sizeof(one));
}

std::uint64_t Doorbell::drain() const {
  std::uint64_t v = 0;
  return read(fd_, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

bool Doorbell::wait(int timeout_ms) const {
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, timeout_ms) > 0;
}

}  // namespace ringlane::shm
