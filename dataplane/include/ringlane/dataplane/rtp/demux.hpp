#pragma once
// RFC 7983 (updated by RFC 9443): what arrived on a shared media port, told by its first byte.
#include <cstdint>

#include "ringlane/common/bytes.hpp"

namespace ringlane::rtp {

enum class PacketKind : std::uint8_t { kStun, kZrtp, kDtls, kTurnChannel, kRtp, kRtcp, kUnknown };

const char* to_string(PacketKind k);

constexpr PacketKind classify(Bytes d) {
  if (d.empty()) {
    return PacketKind::kUnknown;
  }
  std::uint8_t b = d[0];
  if (b <= 3)
    return PacketKind::kStun;
  if (b >= 16 && b <= 19)
    return PacketKind::kZrtp;
  if (b >= 20 && b <= 63)
    return PacketKind::kDtls;
  if (b >= 64 && b <= 79)
    return PacketKind::kTurnChannel;
  if (b >= 128 && b <= 191) {
    // RFC 5761 §4: RTCP packet types 192-223 sit where RTP payload types 64-95 with the marker
    // bit would; those payload types are not used for RTP when RTCP is multiplexed.
    if (d.size() < 2)
      return PacketKind::kUnknown;
    return d[1] >= 192 && d[1] <= 223 ? PacketKind::kRtcp : PacketKind::kRtp;
  }
  return PacketKind::kUnknown;
}

}  // namespace ringlane::rtp
