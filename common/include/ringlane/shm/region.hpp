#pragma once
// One shared-memory region per data plane (memfd): a header with a magic and a layout version,
// then per worker a command ring (control -> worker), an event ring (worker -> control) and a
// stats page. A process built with another layout refuses to attach, with a clear error.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ringlane/shm/ring.hpp"

namespace ringlane::shm {

inline constexpr std::uint64_t kRegionMagic = 0x52474C4E52474E31ull;  // "RGLNRGN1"
inline constexpr std::uint32_t kRegionVersion = 1;

class Region {
 public:
  // A fresh region in a new memfd named `name`.
  static std::unique_ptr<Region> create(const std::string& name, std::uint32_t workers,
                                        std::uint32_t ring_capacity, std::uint32_t stats_bytes,
                                        std::string& error);
  // Maps a region another process created (an inherited or passed fd).
  static std::unique_ptr<Region> attach(int fd, std::string& error);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  int fd() const { return fd_; }
  std::uint32_t workers() const;
  SpscRing commands(std::uint32_t worker) const;
  SpscRing events(std::uint32_t worker) const;
  void* stats(std::uint32_t worker) const;

 private:
  Region() = default;
  std::size_t worker_offset(std::uint32_t worker) const;
  int fd_ = -1;
  std::uint8_t* base_ = nullptr;
  std::size_t bytes_ = 0;
};

// An eventfd that wakes a ring's consumer. Both ends hold the same fd (inherited or passed).
class Doorbell {
 public:
  Doorbell();
  explicit Doorbell(int fd) : fd_(fd) {}
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  int fd() const { return fd_; }
  void ring() const;
  // Consumes pending rings; returns how many there were (0 if none).
  std::uint64_t drain() const;
  // Blocks up to timeout_ms for a ring; true if one came.
  bool wait(int timeout_ms) const;

 private:
  int fd_ = -1;
};

}  // namespace ringlane::shm
