#pragma once
// An RTP packet (RFC 3550 §5.1) as a mutable view into its buffer: parse() checks version,
// CSRC list, header extension and padding against the length before anything is read; the
// setters rewrite fields in place, as an SFU does per subscriber.
#include <cstdint>
#include <optional>

#include "ringlane/common/bytes.hpp"

namespace ringlane::rtp {

enum class RtpError : std::uint8_t { kTooShort, kBadVersion, kBadCsrc, kBadExtension, kBadPadding };
const char* to_string(RtpError e);

class RtpPacket {
 public:
  static constexpr std::size_t kFixedHeader = 12;
  static constexpr std::uint16_t kOneByteProfile = 0xBEDE;  // RFC 8285 §4.2
  static constexpr std::uint16_t kTwoByteProfileMask = 0xFFF0;
  static constexpr std::uint16_t kTwoByteProfile = 0x1000;  // RFC 8285 §4.3 (0x100X)

  static std::optional<RtpPacket> parse(MutableBytes data, RtpError* error = nullptr);
  // The header of an SRTP packet, before it is unprotected: everything but the padding, whose
  // count byte is encrypted (RFC 3711 §3.1) and followed by the tag. payload() then runs to
  // the end of the datagram.
  static std::optional<RtpPacket> parse_srtp_header(MutableBytes data, RtpError* error = nullptr);

  bool padding() const { return (data_[0] & 0x20) != 0; }
  bool has_extension() const { return (data_[0] & 0x10) != 0; }
  std::uint8_t csrc_count() const { return data_[0] & 0x0F; }
  bool marker() const { return (data_[1] & 0x80) != 0; }
  std::uint8_t payload_type() const { return data_[1] & 0x7F; }
  std::uint16_t sequence() const { return load_be16(data_.data() + 2); }
  std::uint32_t timestamp() const { return load_be32(data_.data() + 4); }
  std::uint32_t ssrc() const { return load_be32(data_.data() + 8); }
  std::uint32_t csrc(std::size_t i) const { return load_be32(data_.data() + kFixedHeader + 4 * i); }

  std::uint16_t extension_profile() const { return extension_profile_; }
  Bytes extension_block() const { return data_.subspan(extension_offset_, extension_length_); }
  // RFC 8285 element by id (one-byte ids 1-14, two-byte ids 1-255); nullopt if absent.
  std::optional<MutableBytes> extension(std::uint8_t id) const;

  std::size_t header_size() const { return header_size_; }
  std::uint8_t padding_size() const { return padding_size_; }
  MutableBytes payload() const {
    return data_.subspan(header_size_, data_.size() - header_size_ - padding_size_);
  }
  MutableBytes bytes() const { return data_; }

  void set_marker(bool m) {
    data_[1] = static_cast<std::uint8_t>((data_[1] & 0x7F) | (m ? 0x80 : 0));
  }
  void set_payload_type(std::uint8_t pt) {
    data_[1] = static_cast<std::uint8_t>((data_[1] & 0x80) | (pt & 0x7F));
  }
  void set_sequence(std::uint16_t v) { store_be16(data_.data() + 2, v); }
  void set_timestamp(std::uint32_t v) { store_be32(data_.data() + 4, v); }
  void set_ssrc(std::uint32_t v) { store_be32(data_.data() + 8, v); }
  // Overwrites an extension element's value in place; false when absent or of another size.
  bool set_extension(std::uint8_t id, Bytes value);

 private:
  static std::optional<RtpPacket> parse(MutableBytes data, RtpError* error, bool read_padding);

  MutableBytes data_;
  std::size_t header_size_ = 0;
  std::size_t extension_offset_ = 0;  // of the extension's data, after its 4-byte header
  std::size_t extension_length_ = 0;
  std::uint16_t extension_profile_ = 0;
  std::uint8_t padding_size_ = 0;
};

}  // namespace ringlane::rtp
