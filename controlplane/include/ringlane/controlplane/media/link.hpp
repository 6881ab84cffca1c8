#pragma once
// What media orchestration needs from the data plane: a way to push session commands to a
// worker's ring, and what the data plane publishes about itself (its DTLS fingerprint and media
// ports). The supervisor provides it; tests may provide their own.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "ringlane/shm/messages.hpp"

namespace ringlane::control::media {

struct DataPlaneInfo {
  std::string fingerprint;       // "AB:CD:..." SHA-256 of the data plane's DTLS certificate
  std::uint16_t media_port = 0;  // worker 0's; worker i listens on media_port + i
};

class Link {
 public:
  virtual ~Link() = default;
  // Pushes one command to a worker and rings its doorbell; false when the ring is full or no
  // data plane runs (the caller answers a retryable error).
  virtual bool push(unsigned worker, shm::Command type, std::span<const std::uint8_t> payload) = 0;
  // nullopt while the data plane is down or has no SFU.
  virtual std::optional<DataPlaneInfo> info() = 0;
};

}  // namespace ringlane::control::media
