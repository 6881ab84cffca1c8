// The names of the drop reasons, as the stats page and the logs spell them.
#include "ringlane/shm/sfu_counters.hpp"
#include "ringlane/shm/turn_counters.hpp"

namespace ringlane::turn {

const char* drop_reason_name(Drop d) {
  switch (d) {
    case Drop::kTooShort:
      return "too_short";
    case Drop::kNotTurn:
      return "not_turn";
    case Drop::kStunMalformed:
      return "stun_malformed";
    case Drop::kBadFingerprint:
      return "bad_fingerprint";
    case Drop::kUnexpectedClass:
      return "unexpected_class";
    case Drop::kUnknownMethod:
      return "unknown_method";
    case Drop::kNoAllocation:
      return "no_allocation";
    case Drop::kNoPermission:
      return "no_permission";
    case Drop::kNoChannel:
      return "no_channel";
    case Drop::kChannelMalformed:
      return "channel_malformed";
    case Drop::kSendMalformed:
      return "send_malformed";
    case Drop::kBandwidthCap:
      return "bandwidth_cap";
    case Drop::kRateLimited:
      return "rate_limited";
    case Drop::kNoRoom:
      return "no_room";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

}  // namespace ringlane::turn

namespace ringlane::sfu {

const char* drop_reason_name(Drop d) {
  switch (d) {
    case Drop::kUnknownKind:
      return "unknown_kind";
    case Drop::kStunMalformed:
      return "stun_malformed";
    case Drop::kStunNotRequest:
      return "stun_not_request";
    case Drop::kUnknownUfrag:
      return "unknown_ufrag";
    case Drop::kBadIntegrity:
      return "bad_integrity";
    case Drop::kNoSession:
      return "no_session";
    case Drop::kDtlsNotReady:
      return "dtls_not_ready";
    case Drop::kSrtpNotReady:
      return "srtp_not_ready";
    case Drop::kSrtpAuth:
      return "srtp_auth";
    case Drop::kSrtpReplay:
      return "srtp_replay";
    case Drop::kSrtpOther:
      return "srtp_other";
    case Drop::kRtpMalformed:
      return "rtp_malformed";
    case Drop::kRtcpMalformed:
      return "rtcp_malformed";
    case Drop::kUnknownSsrc:
      return "unknown_ssrc";
    case Drop::kSubscriberNotReady:
      return "subscriber_not_ready";
    case Drop::kTxExhausted:
      return "tx_exhausted";
    case Drop::kRedMalformed:
      return "red_malformed";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

}  // namespace ringlane::sfu
