#pragma once
// A parsed STUN message as a non-owning view into the receive buffer (RFC 8489 §5, §14).
// parse() checks every length before anything is read; the view then only indexes.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "ringlane/common/bytes.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/stun/constants.hpp"
#include "ringlane/stun/long_term_key.hpp"  // the key check_integrity() takes

namespace ringlane::stun {

enum class ParseError : std::uint8_t {
  kTooShort,      // fewer than 20 bytes
  kNotStun,       // top bits or magic cookie wrong
  kBadLength,     // header length not a multiple of 4 or not the datagram size
  kBadAttribute,  // attribute runs past the end of the message
  kTooManyAttributes,
  kBadIntegrity,    // MESSAGE-INTEGRITY of the wrong size
  kBadFingerprint,  // FINGERPRINT of the wrong size or not last
};
const char* to_string(ParseError e);

using TransactionId = std::array<std::uint8_t, kTransactionIdSize>;

class Message {
 public:
  static constexpr std::size_t kMaxAttributes = 40;

  // A datagram must hold exactly one STUN message (UDP transport).
  // Returns the error through `error` when it is not a well-formed STUN message.
  static std::optional<Message> parse(Bytes datagram, ParseError* error = nullptr);
  // Cheap check for demultiplexing: could these bytes be STUN? (RFC 7983: first byte 0..3)
  static bool looks_like_stun(Bytes datagram);

  Method method() const { return method_of(type_); }
  Class message_class() const { return class_of(type_); }
  std::uint16_t type() const { return type_; }
  TransactionId transaction_id() const;
  Bytes bytes() const { return bytes_; }

  // First attribute of this type that counts: those after MESSAGE-INTEGRITY (other than
  // FINGERPRINT) are ignored, as RFC 8489 §14.5 requires.
  std::optional<Bytes> find(std::uint16_t type) const;
  bool has(std::uint16_t type) const { return find(type).has_value(); }
  std::optional<std::uint32_t> find_u32(std::uint16_t type) const;
  std::optional<std::string_view> find_string(std::uint16_t type) const;
  // XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS.
  std::optional<Endpoint> find_xor_address(std::uint16_t type) const;
  // All attributes of one type (XOR-PEER-ADDRESS may repeat in CreatePermission).
  template <typename F>
  void for_each(std::uint16_t type, F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) {
      if (attrs_[i].type == type) {
        f(value(i));
      }
    }
  }
  // Comprehension-required attributes this server does not understand (for a 420).
  std::size_t unknown_required(std::span<std::uint16_t> out) const;

  bool has_integrity() const { return integrity_offset_ != 0; }
  bool has_fingerprint() const { return fingerprint_offset_ != 0; }
  bool check_fingerprint() const;
  // HMAC-SHA1 over the message up to MESSAGE-INTEGRITY with the length patched (§14.5).
  bool check_integrity(Bytes key) const;

 private:
  struct AttrRef {
    std::uint16_t type;
    std::uint16_t offset;  // of the value, from the start of the message
    std::uint16_t length;
  };
  Bytes value(std::size_t i) const { return bytes_.subspan(attrs_[i].offset, attrs_[i].length); }

  Bytes bytes_;
  std::uint16_t type_ = 0;
  std::uint16_t integrity_offset_ = 0;    // offset of the MESSAGE-INTEGRITY attribute header
  std::uint16_t fingerprint_offset_ = 0;  // offset of the FINGERPRINT attribute header
  std::uint8_t count_ = 0;
  std::array<AttrRef, kMaxAttributes> attrs_{};
};

// XOR-address codec (RFC 8489 §14.2). `value` is the attribute value.
std::optional<Endpoint> decode_xor_address(Bytes value, const TransactionId& tid);
// Plain MAPPED-ADDRESS form (RFC 8489 §14.1).
std::optional<Endpoint> decode_address(Bytes value);

}  // namespace ringlane::stun
