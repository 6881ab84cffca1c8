#pragma once
// Fixed-size packet slots in one region, allocated on a NUMA node, on hugepages when the
// system has them. Slot i holds buffer id i.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ringlane::io {

class BufferPool {
 public:
  static constexpr std::uint32_t kSlotSize = 2048;

  BufferPool(std::uint32_t count, int numa_node);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  bool ok() const { return base_ != nullptr; }
  std::uint8_t* slot(std::uint32_t id) const { return base_ + std::size_t{id} * kSlotSize; }
  std::uint32_t count() const { return count_; }
  bool on_hugepages() const { return hugepages_; }
  // A line for the log: where the memory came from.
  std::string describe() const;

 private:
  std::uint8_t* base_ = nullptr;
  std::size_t bytes_ = 0;
  std::uint32_t count_ = 0;
  int node_ = -1;
  bool hugepages_ = false;
};

}  // namespace ringlane::io
