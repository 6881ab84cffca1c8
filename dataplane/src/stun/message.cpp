#include "ringlane/dataplane/stun/message.hpp"

#include <algorithm>
#include <cstring>

#include "ringlane/crypto/digest.hpp"

namespace ringlane::stun {

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::kTooShort:
      return "too_short";
    case ParseError::kNotStun:
      return "not_stun";
    case ParseError::kBadLength:
      return "bad_length";
    case ParseError::kBadAttribute:
      return "bad_attribute";
    case ParseError::kTooManyAttributes:
      return "too_many_attributes";
    case ParseError::kBadIntegrity:
      return "bad_integrity";
    case ParseError::kBadFingerprint:
      return "bad_fingerprint";
  }
  return "unknown";
}

bool Message::looks_like_stun(Bytes d) {
  return d.size() >= kHeaderSize && (d[0] & 0xC0) == 0 && load_be32(d.data() + 4) == kMagicCookie;
}

std::optional<Message> Message::parse(Bytes d, ParseError* error) {
  auto fail = [error](ParseError e) -> std::optional<Message> {
    if (error != nullptr) {
      *error = e;
    }
    return std::nullopt;
  };
  if (d.size() < kHeaderSize) {
    return fail(ParseError::kTooShort);
  }
  if (!looks_like_stun(d)) {
    return fail(ParseError::kNotStun);
  }
  std::size_t length = load_be16(d.data() + 2);
  // Offsets are stored in 16 bits; a UDP STUN message never comes close to that.
  if (length % 4 != 0 || kHeaderSize + length != d.size() || d.size() > 0xFFFF) {
    return fail(ParseError::kBadLength);
  }
  Message m;
  m.bytes_ = d;
  m.type_ = load_be16(d.data());
  std::size_t pos = kHeaderSize;
  bool after_integrity = false;
  while (pos < d.size()) {
    if (m.fingerprint_offset_ != 0) {
      return fail(ParseError::kBadFingerprint);  // RFC 8489 §14.7: FINGERPRINT is last
    }
    if (d.size() - pos < 4) {
      return fail(ParseError::kBadAttribute);
    }
    std::uint16_t type = load_be16(d.data() + pos);
    std::size_t len = load_be16(d.data() + pos + 2);
    std::size_t padded = (len + 3) & ~std::size_t{3};
    if (padded > d.size() - pos - 4) {
      return fail(ParseError::kBadAttribute);
    }
    if (type == attr::kMessageIntegrity && !after_integrity) {
      if (len != 20) {
        return fail(ParseError::kBadIntegrity);
      }
      m.integrity_offset_ = static_cast<std::uint16_t>(pos);
    } else if (type == attr::kFingerprint) {
      if (len != 4) {
        return fail(ParseError::kBadFingerprint);
      }
      m.fingerprint_offset_ = static_cast<std::uint16_t>(pos);
    }
    if (!after_integrity || type == attr::kFingerprint) {
      if (m.count_ == kMaxAttributes) {
        return fail(ParseError::kTooManyAttributes);
      }
      m.attrs_[m.count_++] =
          AttrRef{type, static_cast<std::uint16_t>(pos + 4), static_cast<std::uint16_t>(len)};
    }
    if (type == attr::kMessageIntegrity) {
      after_integrity = true;
    }
    pos += 4 + padded;
  }
  return m;
}

TransactionId Message::transaction_id() const {
  TransactionId tid;
  std::memcpy(tid.data(), bytes_.data() + 8, tid.size());
  return tid;
}

std::optional<Bytes> Message::find(std::uint16_t type) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (attrs_[i].type == type) {
      return value(i);
    }
  }
  return std::nullopt;
}

std::optional<std::uint32_t> Message::find_u32(std::uint16_t type) const {
  auto v = find(type);
  if (!v || v->size() != 4) {
    return std::nullopt;
  }
  return load_be32(v->data());
}

std::optional<std::string_view> Message::find_string(std::uint16_t type) const {
  auto v = find(type);
  if (!v) {
    return std::nullopt;
  }
  return as_string(*v);
}

std::optional<Endpoint> Message::find_xor_address(std::uint16_t type) const {
  auto v = find(type);
  if (!v) {
    return std::nullopt;
  }
  return decode_xor_address(*v, transaction_id());
}

std::size_t Message::unknown_required(std::span<std::uint16_t> out) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_ && n < out.size(); ++i) {
    if (!attr::is_understood(attrs_[i].type)) {
      out[n++] = attrs_[i].type;
    }
  }
  return n;
}

bool Message::check_fingerprint() const {
  if (fingerprint_offset_ == 0) {
    return false;
  }
  std::uint32_t crc = crypto::crc32(bytes_.first(fingerprint_offset_)) ^ kFingerprintXor;
  return crc == load_be32(bytes_.data() + fingerprint_offset_ + 4);
}

bool Message::check_integrity(Bytes key) const {
  if (integrity_offset_ == 0) {
    return false;
  }
  // The length field counts up to and including MESSAGE-INTEGRITY (RFC 8489 §14.5).
  std::array<std::uint8_t, kHeaderSize> header;
  std::memcpy(header.data(), bytes_.data(), kHeaderSize);
  store_be16(header.data() + 2, static_cast<std::uint16_t>(integrity_offset_ + 24 - kHeaderSize));
  auto mac = crypto::hmac_sha1(
      key, {Bytes(header), bytes_.subspan(kHeaderSize, integrity_offset_ - kHeaderSize)});
  return crypto::equal_ct(mac, bytes_.subspan(integrity_offset_ + 4, 20));
}

std::optional<Endpoint> decode_address(Bytes v) {
  if (v.size() < 4) {
    return std::nullopt;
  }
  Endpoint ep;
  ep.port = load_be16(v.data() + 2);
  if (v[1] == 0x01 && v.size() == 8) {
    ep.ip.family = Family::kV4;
    std::memcpy(ep.ip.bytes.data(), v.data() + 4, 4);
  } else if (v[1] == 0x02 && v.size() == 20) {
    ep.ip.family = Family::kV6;
    std::memcpy(ep.ip.bytes.data(), v.data() + 4, 16);
  } else {
    return std::nullopt;
  }
  return ep;
}

std::optional<Endpoint> decode_xor_address(Bytes v, const TransactionId& tid) {
  auto ep = decode_address(v);
  if (!ep) {
    return std::nullopt;
  }
  ep->port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
  std::array<std::uint8_t, 16> mask{};
  store_be32(mask.data(), kMagicCookie);
  std::memcpy(mask.data() + 4, tid.data(), tid.size());
  for (std::size_t i = 0; i < ep->ip.size(); ++i) {
    ep->ip.bytes[i] ^= mask[i];
  }
  return ep;
}

}  // namespace ringlane::stun
