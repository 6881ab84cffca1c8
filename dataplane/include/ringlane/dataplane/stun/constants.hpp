#pragma once
// STUN/TURN numbers: RFC 8489 §18, RFC 8656 §18, RFC 6156, RFC 8445 (ICE attributes).
#include <cstdint>

namespace ringlane::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::size_t kTransactionIdSize = 12;
// RFC 8489 §14.7: FINGERPRINT is the CRC-32 XOR'ed with this constant.
inline constexpr std::uint32_t kFingerprintXor = 0x5354554E;

enum class Method : std::uint16_t {
  kBinding = 0x001,
  kAllocate = 0x003,
  kRefresh = 0x004,
  kSend = 0x006,
  kData = 0x007,
  kCreatePermission = 0x008,
  kChannelBind = 0x009,
};

enum class Class : std::uint8_t { kRequest = 0, kIndication = 1, kSuccess = 2, kError = 3 };

namespace attr {
inline constexpr std::uint16_t kMappedAddress = 0x0001;
inline constexpr std::uint16_t kUsername = 0x0006;
inline constexpr std::uint16_t kMessageIntegrity = 0x0008;
inline constexpr std::uint16_t kErrorCode = 0x0009;
inline constexpr std::uint16_t kUnknownAttributes = 0x000A;
inline constexpr std::uint16_t kChannelNumber = 0x000C;
inline constexpr std::uint16_t kLifetime = 0x000D;
inline constexpr std::uint16_t kXorPeerAddress = 0x0012;
inline constexpr std::uint16_t kData = 0x0013;
inline constexpr std::uint16_t kRealm = 0x0014;
inline constexpr std::uint16_t kNonce = 0x0015;
inline constexpr std::uint16_t kXorRelayedAddress = 0x0016;
inline constexpr std::uint16_t kRequestedAddressFamily = 0x0017;
inline constexpr std::uint16_t kEvenPort = 0x0018;
inline constexpr std::uint16_t kRequestedTransport = 0x0019;
inline constexpr std::uint16_t kDontFragment = 0x001A;
inline constexpr std::uint16_t kMessageIntegritySha256 = 0x001C;
inline constexpr std::uint16_t kPasswordAlgorithm = 0x001D;
inline constexpr std::uint16_t kUserhash = 0x001E;
inline constexpr std::uint16_t kXorMappedAddress = 0x0020;
inline constexpr std::uint16_t kReservationToken = 0x0022;
inline constexpr std::uint16_t kPriority = 0x0024;
inline constexpr std::uint16_t kUseCandidate = 0x0025;
inline constexpr std::uint16_t kPadding = 0x0026;
inline constexpr std::uint16_t kResponsePort = 0x0027;
inline constexpr std::uint16_t kConnectionId = 0x002A;
inline constexpr std::uint16_t kAdditionalAddressFamily = 0x8000;
inline constexpr std::uint16_t kAddressErrorCode = 0x8001;
inline constexpr std::uint16_t kPasswordAlgorithms = 0x8002;
inline constexpr std::uint16_t kAlternateDomain = 0x8003;
inline constexpr std::uint16_t kIcmp = 0x8004;
inline constexpr std::uint16_t kSoftware = 0x8022;
inline constexpr std::uint16_t kAlternateServer = 0x8023;
inline constexpr std::uint16_t kFingerprint = 0x8028;
inline constexpr std::uint16_t kIceControlled = 0x8029;
inline constexpr std::uint16_t kIceControlling = 0x802A;
// RFC 5780 (NAT behaviour discovery), sent by turnutils_stunclient and others.
inline constexpr std::uint16_t kChangeRequest = 0x0003;
inline constexpr std::uint16_t kResponseOrigin = 0x802B;
inline constexpr std::uint16_t kOtherAddress = 0x802C;

// Comprehension-required attributes (type < 0x8000) that this server understands; any
// other comprehension-required attribute in a request earns a 420 (RFC 8489 §14).
constexpr bool is_understood(std::uint16_t type) {
  switch (type) {
    case kMappedAddress:
    case kUsername:
    case kMessageIntegrity:
    case kErrorCode:
    case kUnknownAttributes:
    case kChannelNumber:
    case kLifetime:
    case kXorPeerAddress:
    case kData:
    case kRealm:
    case kNonce:
    case kXorRelayedAddress:
    case kRequestedAddressFamily:
    case kEvenPort:
    case kRequestedTransport:
    case kDontFragment:
    case kXorMappedAddress:
    case kReservationToken:
    case kPriority:
    case kUseCandidate:
    case kPadding:
    case kResponsePort:
    case kChangeRequest:
      return true;
    default:
      return type >= 0x8000;
  }
}
}  // namespace attr

// Error codes used by the TURN server (RFC 8489 §14.8, RFC 8656 §18, RFC 6156).
namespace error {
inline constexpr std::uint16_t kTryAlternate = 300;
inline constexpr std::uint16_t kBadRequest = 400;
inline constexpr std::uint16_t kUnauthorized = 401;
inline constexpr std::uint16_t kForbidden = 403;
inline constexpr std::uint16_t kUnknownAttribute = 420;
inline constexpr std::uint16_t kAllocationMismatch = 437;
inline constexpr std::uint16_t kStaleNonce = 438;
inline constexpr std::uint16_t kAddressFamilyNotSupported = 440;
inline constexpr std::uint16_t kWrongCredentials = 441;
inline constexpr std::uint16_t kUnsupportedTransport = 442;
inline constexpr std::uint16_t kPeerAddressFamilyMismatch = 443;
inline constexpr std::uint16_t kAllocationQuotaReached = 486;
inline constexpr std::uint16_t kServerError = 500;
inline constexpr std::uint16_t kInsufficientCapacity = 508;
}  // namespace error

// Message type: the method's 12 bits interleaved with the two class bits (RFC 8489 §5).
constexpr std::uint16_t message_type(Method m, Class c) {
  auto mv = static_cast<std::uint16_t>(m);
  auto cv = static_cast<std::uint16_t>(c);
  return static_cast<std::uint16_t>((mv & 0x000F) | ((mv & 0x0070) << 1) | ((mv & 0x0F80) << 2) |
                                    ((cv & 1) << 4) | ((cv & 2) << 7));
}
constexpr Method method_of(std::uint16_t type) {
  return static_cast<Method>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
constexpr Class class_of(std::uint16_t type) {
  return static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
}

}  // namespace ringlane::stun
