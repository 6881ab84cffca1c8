#include "ringlane/dataplane/io/buffer_pool.hpp"

#include <numa.h>
#include <sys/mman.h>

#include <cstring>

namespace ringlane::io {
namespace {
constexpr std::size_t kHugePage = 2u << 20;
}

BufferPool::BufferPool(std::uint32_t count, int numa_node) : count_(count), node_(numa_node) {
  std::size_t want = std::size_t{count} * kSlotSize;
  bytes_ = (want + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
                 -1, 0);
  hugepages_ = p != MAP_FAILED;
  if (!hugepages_) {
    p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return;
    }
  }
  // Bind to the worker's node before the first touch, then fault everything in now rather
  // than on the packet path.
  if (node_ >= 0 && numa_available() >= 0) {
    numa_tonode_memory(p, bytes_, node_);
  }
  std::memset(p, 0, bytes_);
  base_ = static_cast<std::uint8_t*>(p);
}

BufferPool::~BufferPool() {
  if (base_ != nullptr) {
    munmap(base_, bytes_);
  }
}

std::string BufferPool::describe() const {
  return std::to_string(count_) + " buffers, " + std::to_string(bytes_ >> 20) + " MiB on " +
         (hugepages_ ? "2 MiB hugepages" : "4 KiB pages (no hugepages reserved: vm.nr_hugepages)") +
         (node_ >= 0 ? ", NUMA node " + std::to_string(node_) : "");
}

}  // namespace ringlane::io
