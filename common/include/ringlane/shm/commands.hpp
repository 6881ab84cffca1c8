#pragma once
// Building and sending ring commands (control side) for the data plane's workers.
#include <cstdint>

#include "ringlane/shm/ring.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane {

// Pushes the policy as Begin / Chunk... / Commit. Checks for room first: a policy is sent
// whole or not at all (false, and the ring counts nothing half-sent).
bool push_policy(shm::SpscRing& ring, const turn::Policy& policy, std::uint64_t generation);

}  // namespace ringlane
