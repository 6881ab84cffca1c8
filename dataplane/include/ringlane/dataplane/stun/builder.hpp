#pragma once
// Writes one STUN message into a caller-owned buffer. A write that would not fit sets
// overflow and writes nothing further; callers check ok() before sending.
#include <cstdint>
#include <span>
#include <string_view>

#include "ringlane/common/bytes.hpp"
#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/stun/message.hpp"

namespace ringlane::stun {

class Builder {
 public:
  Builder(MutableBytes out, Method method, Class cls, const TransactionId& tid);

  void add_bytes(std::uint16_t type, Bytes value);
  void add_string(std::uint16_t type, std::string_view value) { add_bytes(type, as_bytes(value)); }
  void add_u32(std::uint16_t type, std::uint32_t value);
  void add_u64(std::uint16_t type, std::uint64_t value);
  void add_xor_address(std::uint16_t type, const Endpoint& ep);
  void add_address(std::uint16_t type, const Endpoint& ep);
  void add_error(std::uint16_t code, std::string_view reason);
  void add_unknown_attributes(std::span<const std::uint16_t> types);
  // Already-encoded attributes (a multiple of 4 bytes), copied as they are.
  void add_raw_attributes(Bytes encoded);
  // Must come after every other attribute but FINGERPRINT.
  void add_integrity(Bytes key);
  void add_fingerprint();
  // Padding may be any value (RFC 8489 §14); RFC 5769's vectors pad with spaces.
  void set_padding_byte(std::uint8_t b) { padding_ = b; }

  bool ok() const { return !overflow_; }
  std::size_t size() const { return size_; }
  Bytes bytes() const { return {out_.data(), size_}; }

 private:
  std::uint8_t* reserve(std::uint16_t type, std::size_t length);
  void set_length(std::size_t body);

  MutableBytes out_;
  TransactionId tid_;
  std::size_t size_ = 0;
  bool overflow_ = false;
  std::uint8_t padding_ = 0;
};

}  // namespace ringlane::stun
