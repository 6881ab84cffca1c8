#pragma once
// Message types on the per-worker rings (control -> worker commands, worker -> control events).
// Bump kMessageVersion when a payload layout changes: a consumer refuses other versions.
#include <cstdint>

namespace ringlane::shm {

inline constexpr std::uint16_t kMessageVersion = 3;  // 3: TrackAdd's dependency descriptor id

enum class Command : std::uint16_t {
  // A TURN policy in pieces: Begin {u64 generation, u32 total bytes}, Chunk {bytes...},
  // Commit {u64 generation}. The worker swaps the policy in at Commit.
  kPolicyBegin = 1,
  kPolicyChunk = 2,
  kPolicyCommit = 3,
  // SFU sessions (payloads in shm/media.hpp).
  kSessionCreate = 10,
  kSessionRemote = 11,
  kSessionClose = 12,
  kTrackAdd = 13,
  kTrackRemove = 14,
  kSubscribe = 15,
  kUnsubscribe = 16,
  kKeyframeRequest = 17,
  kSessionIceRestart = 18,
  kRouteLayer = 19,
  kTrackPriority = 20,
};

enum class Event : std::uint16_t {
  kPolicyApplied = 100,   // {u64 generation}
  kPolicyRejected = 101,  // {u64 generation, reason text}
  kCommandRefused = 102,  // {u16 type, u16 version}: unknown type or version, or corrupt slot
  kSessionEvent = 110,    // shm/media.hpp SessionEvent
  kRouteReport = 111,     // shm/media.hpp RouteReport
  kAudioLevels = 112,     // shm/media.hpp AudioLevels
  kLayersActive = 113,    // shm/media.hpp LayersActive
};

}  // namespace ringlane::shm
