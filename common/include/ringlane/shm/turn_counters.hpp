#pragma once
// Per-worker TURN counters. Written by one worker thread as plain integers, published to the
// stats page by the worker loop, so the packet path pays one increment and nothing else.
#include <array>
#include <cstdint>

namespace ringlane::turn {

// Why a datagram was dropped. Keep names in sync with drop_reason_name().
enum class Drop : std::uint8_t {
  kTooShort,
  kNotTurn,
  kStunMalformed,
  kBadFingerprint,
  kUnexpectedClass,
  kUnknownMethod,
  kNoAllocation,
  kNoPermission,
  kNoChannel,
  kChannelMalformed,
  kSendMalformed,
  kBandwidthCap,
  kRateLimited,
  kNoRoom,
  kCount
};
const char* drop_reason_name(Drop d);

struct Counters {
  std::uint64_t client_packets_in = 0;
  std::uint64_t client_bytes_in = 0;
  std::uint64_t peer_packets_in = 0;
  std::uint64_t peer_bytes_in = 0;
  std::uint64_t relayed_to_peer = 0;
  std::uint64_t relayed_to_client = 0;
  std::uint64_t relayed_bytes_to_peer = 0;
  std::uint64_t relayed_bytes_to_client = 0;
  std::uint64_t responses = 0;
  std::uint64_t error_responses = 0;
  std::uint64_t auth_challenges = 0;  // 401 to a request without credentials
  std::uint64_t auth_failures = 0;    // wrong password, unknown user, expired REST user
  std::uint64_t stale_nonces = 0;
  std::uint64_t forbidden_peers = 0;
  std::uint64_t quota_rejections = 0;
  std::uint64_t allocations_created = 0;
  std::uint64_t allocations_expired = 0;
  std::uint64_t allocations_deleted = 0;
  std::uint64_t allocations = 0;  // gauge
  std::uint64_t permissions = 0;  // gauge
  std::uint64_t channels = 0;     // gauge
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::kCount)> drops{};

  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
  std::uint64_t dropped(Drop d) const { return drops[static_cast<std::size_t>(d)]; }
};

}  // namespace ringlane::turn
