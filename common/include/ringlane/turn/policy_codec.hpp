#pragma once
// Policy <-> bytes, for the command ring. A flat list of tagged fields; decode() checks every
// length and refuses unknown tags, so a policy from another build is refused, not misread.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/common/bytes.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane::turn {

std::vector<std::uint8_t> encode_policy(const Policy& p);
std::optional<Policy> decode_policy(Bytes data, std::string* error = nullptr);

// Reassembles a policy sent as Begin/Chunk.../Commit messages.
class PolicyAssembler {
 public:
  static constexpr std::size_t kMaxBytes = 4u << 20;
  // Each returns false with `error` set when the sequence is broken.
  bool begin(std::uint64_t generation, std::uint32_t total, std::string& error);
  bool chunk(Bytes part, std::string& error);
  // The decoded policy at Commit, or nullopt with `error`.
  std::optional<Policy> commit(std::uint64_t generation, std::string& error);

 private:
  std::vector<std::uint8_t> buffer_;
  std::uint64_t generation_ = 0;
  std::uint32_t total_ = 0;
  bool open_ = false;
};

}  // namespace ringlane::turn
