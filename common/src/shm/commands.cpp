#include "ringlane/shm/commands.hpp"

#include <algorithm>

#include "ringlane/shm/messages.hpp"
#include "ringlane/turn/policy_codec.hpp"

namespace ringlane {

bool push_policy(shm::SpscRing& ring, const turn::Policy& policy, std::uint64_t generation) {
  std::vector<std::uint8_t> blob = turn::encode_policy(policy);
  std::size_t chunks = (blob.size() + shm::kMaxPayload - 1) / shm::kMaxPayload;
  if (ring.capacity() - ring.depth() < chunks + 2) {
    return false;
  }
  std::uint8_t begin[12];
  store_be64(begin, generation);
  store_be32(begin + 8, static_cast<std::uint32_t>(blob.size()));
  auto v = shm::kMessageVersion;
  bool ok = ring.push(static_cast<std::uint16_t>(shm::Command::kPolicyBegin), v, begin);
  for (std::size_t at = 0; ok && at < blob.size(); at += shm::kMaxPayload) {
    std::size_t n = std::min(shm::kMaxPayload, blob.size() - at);
    ok = ring.push(static_cast<std::uint16_t>(shm::Command::kPolicyChunk), v,
                   Bytes(blob.data() + at, n));
  }
  return ok &&
         ring.push(static_cast<std::uint16_t>(shm::Command::kPolicyCommit), v, Bytes(begin, 8));
}

}  // namespace ringlane
