// The ring message decoder on hostile shared memory: the input is laid over a ring's control
// block and slots, as a broken or malicious peer could leave them; the consumer must only
// ever read inside the slots it owns.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ringlane/shm/ring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane::shm;
  constexpr std::uint32_t kCapacity = 4;
  std::vector<std::uint8_t> memory(SpscRing::bytes_for(kCapacity) + kCacheLine);
  auto base = reinterpret_cast<std::uintptr_t>(memory.data());
  auto* aligned =
      reinterpret_cast<std::uint8_t*>((base + kCacheLine - 1) & ~std::uintptr_t{kCacheLine - 1});
  std::memcpy(aligned, data, std::min(size, SpscRing::bytes_for(kCapacity)));
  auto ring = SpscRing::attach(aligned, kCapacity);
  std::uint64_t sum = ring.depth();
  for (int i = 0; i < 16; ++i) {
    auto m = ring.front();
    if (!m)
      break;
    sum += m->type + m->version;
    for (auto b : m->payload)
      sum += b;
    ring.pop();
  }
  (void)decode_slot(std::span<const std::uint8_t>(data, size));
  return sum == 0xdeadbeef ? 1 : 0;
}
