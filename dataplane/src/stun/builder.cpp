#include "ringlane/dataplane/stun/builder.hpp"

#include <cstring>

#include "ringlane/crypto/digest.hpp"

namespace ringlane::stun {

Builder::Builder(MutableBytes out, Method method, Class cls, const TransactionId& tid)
    : out_(out), tid_(tid) {
  if (out_.size() < kHeaderSize) {
    overflow_ = true;
    return;
  }
  store_be16(out_.data(), message_type(method, cls));
  store_be16(out_.data() + 2, 0);
  store_be32(out_.data() + 4, kMagicCookie);
  std::memcpy(out_.data() + 8, tid.data(), tid.size());
  size_ = kHeaderSize;
}

std::uint8_t* Builder::reserve(std::uint16_t type, std::size_t length) {
  std::size_t padded = (length + 3) & ~std::size_t{3};
  if (overflow_ || length > 0xFFFF || out_.size() - size_ < 4 + padded) {
    overflow_ = true;
    return nullptr;
  }
  std::uint8_t* p = out_.data() + size_;
  store_be16(p, type);
  store_be16(p + 2, static_cast<std::uint16_t>(length));
  std::memset(p + 4 + length, padding_, padded - length);
  size_ += 4 + padded;
  set_length(size_ - kHeaderSize);
  return p + 4;
}

void Builder::set_length(std::size_t body) {
  store_be16(out_.data() + 2, static_cast<std::uint16_t>(body));
}

void Builder::add_bytes(std::uint16_t type, Bytes value) {
  if (auto* p = reserve(type, value.size()); p != nullptr && !value.empty()) {
    std::memcpy(p, value.data(), value.size());
  }
}

void Builder::add_u32(std::uint16_t type, std::uint32_t value) {
  if (auto* p = reserve(type, 4)) {
    store_be32(p, value);
  }
}

void Builder::add_u64(std::uint16_t type, std::uint64_t value) {
  if (auto* p = reserve(type, 8)) {
    store_be64(p, value);
  }
}

void Builder::add_address(std::uint16_t type, const Endpoint& ep) {
  bool v4 = ep.family() == Family::kV4;
  if (auto* p = reserve(type, v4 ? 8 : 20)) {
    p[0] = 0;
    p[1] = v4 ? 0x01 : 0x02;
    store_be16(p + 2, ep.port);
    std::memcpy(p + 4, ep.ip.bytes.data(), ep.ip.size());
  }
}

void Builder::add_xor_address(std::uint16_t type, const Endpoint& ep) {
  bool v4 = ep.family() == Family::kV4;
  if (auto* p = reserve(type, v4 ? 8 : 20)) {
    p[0] = 0;
    p[1] = v4 ? 0x01 : 0x02;
    store_be16(p + 2, static_cast<std::uint16_t>(ep.port ^ (kMagicCookie >> 16)));
    std::array<std::uint8_t, 16> mask{};
    store_be32(mask.data(), kMagicCookie);
    std::memcpy(mask.data() + 4, tid_.data(), tid_.size());
    for (std::size_t i = 0; i < ep.ip.size(); ++i) {
      p[4 + i] = ep.ip.bytes[i] ^ mask[i];
    }
  }
}

void Builder::add_error(std::uint16_t code, std::string_view reason) {
  if (auto* p = reserve(attr::kErrorCode, 4 + reason.size())) {
    p[0] = 0;
    p[1] = 0;
    p[2] = static_cast<std::uint8_t>(code / 100);
    p[3] = static_cast<std::uint8_t>(code % 100);
    std::memcpy(p + 4, reason.data(), reason.size());
  }
}

void Builder::add_unknown_attributes(std::span<const std::uint16_t> types) {
  if (auto* p = reserve(attr::kUnknownAttributes, types.size() * 2)) {
    for (std::size_t i = 0; i < types.size(); ++i) {
      store_be16(p + 2 * i, types[i]);
    }
  }
}

void Builder::add_raw_attributes(Bytes encoded) {
  if (overflow_ || encoded.size() % 4 != 0 || out_.size() - size_ < encoded.size() ||
      size_ - kHeaderSize + encoded.size() > 0xFFFF) {
    overflow_ = true;
    return;
  }
  if (!encoded.empty()) {
    std::memcpy(out_.data() + size_, encoded.data(), encoded.size());
  }
  size_ += encoded.size();
  set_length(size_ - kHeaderSize);
}

void Builder::add_integrity(Bytes key) {
  std::size_t before = size_;
  if (auto* p = reserve(attr::kMessageIntegrity, 20)) {
    // The length field already counts MESSAGE-INTEGRITY itself, as §14.5 wants.
    auto mac = crypto::hmac_sha1(key, {Bytes(out_.data(), before)});
    std::memcpy(p, mac.data(), mac.size());
  }
}

void Builder::add_fingerprint() {
  std::size_t before = size_;
  if (auto* p = reserve(attr::kFingerprint, 4)) {
    store_be32(p, crypto::crc32(Bytes(out_.data(), before)) ^ kFingerprintXor);
  }
}

}  // namespace ringlane::stun
