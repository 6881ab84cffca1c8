#include "ringlane/dataplane/rtp/packet.hpp"

#include <cstring>

#include "ringlane/dataplane/rtp/demux.hpp"

namespace ringlane::rtp {

const char* to_string(PacketKind k) {
  switch (k) {
    case PacketKind::kStun:
      return "stun";
    case PacketKind::kZrtp:
      return "zrtp";
    case PacketKind::kDtls:
      return "dtls";
    case PacketKind::kTurnChannel:
      return "turn_channel";
    case PacketKind::kRtp:
      return "rtp";
    case PacketKind::kRtcp:
      return "rtcp";
    case PacketKind::kUnknown:
      break;
  }
  return "unknown";
}

const char* to_string(RtpError e) {
  switch (e) {
    case RtpError::kTooShort:
      return "too_short";
    case RtpError::kBadVersion:
      return "bad_version";
    case RtpError::kBadCsrc:
      return "bad_csrc";
    case RtpError::kBadExtension:
      return "bad_extension";
    case RtpError::kBadPadding:
      return "bad_padding";
  }
  return "unknown";
}

std::optional<RtpPacket> RtpPacket::parse(MutableBytes d, RtpError* error) {
  return parse(d, error, true);
}

std::optional<RtpPacket> RtpPacket::parse_srtp_header(MutableBytes d, RtpError* error) {
  return parse(d, error, false);
}

std::optional<RtpPacket> RtpPacket::parse(MutableBytes d, RtpError* error, bool read_padding) {
  auto fail = [error](RtpError e) -> std::optional<RtpPacket> {
    if (error != nullptr)
      *error = e;
    return std::nullopt;
  };
  if (d.size() < kFixedHeader)
    return fail(RtpError::kTooShort);
  if ((d[0] >> 6) != 2)
    return fail(RtpError::kBadVersion);
  RtpPacket p;
  p.data_ = d;
  std::size_t pos = kFixedHeader + 4u * (d[0] & 0x0F);
  if (pos > d.size())
    return fail(RtpError::kBadCsrc);
  if ((d[0] & 0x10) != 0) {
    if (d.size() - pos < 4)
      return fail(RtpError::kBadExtension);
    p.extension_profile_ = load_be16(d.data() + pos);
    std::size_t words = load_be16(d.data() + pos + 2);
    if (words * 4 > d.size() - pos - 4)
      return fail(RtpError::kBadExtension);
    p.extension_offset_ = pos + 4;
    p.extension_length_ = words * 4;
    pos += 4 + words * 4;
  }
  p.header_size_ = pos;
  if (read_padding && (d[0] & 0x20) != 0) {
    // RFC 3550 §5.1: the last octet counts the padding, itself included.
    std::uint8_t pad = d[d.size() - 1];
    if (pad == 0 || pad > d.size() - pos)
      return fail(RtpError::kBadPadding);
    p.padding_size_ = pad;
  }
  return p;
}

std::optional<MutableBytes> RtpPacket::extension(std::uint8_t id) const {
  if (!has_extension() || id == 0)
    return std::nullopt;
  MutableBytes block = data_.subspan(extension_offset_, extension_length_);
  bool one_byte = extension_profile_ == kOneByteProfile;
  bool two_byte = (extension_profile_ & kTwoByteProfileMask) == kTwoByteProfile;
  if (!one_byte && !two_byte)
    return std::nullopt;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::uint8_t b = block[pos];
    if (b == 0) {  // padding between elements
      ++pos;
      continue;
    }
    std::uint8_t element_id;
    std::size_t length;
    if (one_byte) {
      element_id = b >> 4;
      if (element_id == 15)
        break;  // RFC 8285 §4.2: stop parsing
      length = (b & 0x0F) + 1u;
      pos += 1;
    } else {
      if (block.size() - pos < 2)
        break;
      element_id = b;
      length = block[pos + 1];
      pos += 2;
    }
    if (length > block.size() - pos)
      break;
    if (element_id == id)
      return block.subspan(pos, length);
    pos += length;
  }
  return std::nullopt;
}

bool RtpPacket::set_extension(std::uint8_t id, Bytes value) {
  auto element = extension(id);
  if (!element || element->size() != value.size())
    return false;
  if (!value.empty()) {
    std::memcpy(element->data(), value.data(), value.size());
  }
  return true;
}

}  // namespace ringlane::rtp
