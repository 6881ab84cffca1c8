#include "ringlane/turn/policy_codec.hpp"

#include <cstring>

namespace ringlane::turn {
namespace {

enum Tag : std::uint8_t {
  kRealm = 1,
  kSoftware = 2,
  kUser = 3,
  kRestSecret = 4,
  kAllowPeer = 5,
  kDenyPeer = 6,
  kDefaultLifetime = 10,
  kMaxLifetime = 11,
  kPermissionLifetime = 12,
  kChannelLifetime = 13,
  kNonceLifetime = 14,
  kUserQuota = 15,
  kMaxAllocations = 16,
  kMaxPermissions = 17,
  kMaxChannels = 18,
  kUnauthorizedPerS = 19,
  kUnauthorizedBurst = 20,
  kStrictChannels = 21,
  kBandwidth = 22,
};

void put(std::vector<std::uint8_t>& out, std::uint8_t tag, Bytes value) {
  out.push_back(tag);
  std::uint8_t len[4];
  store_be32(len, static_cast<std::uint32_t>(value.size()));
  out.insert(out.end(), len, len + 4);
  out.insert(out.end(), value.begin(), value.end());
}
void put_u32(std::vector<std::uint8_t>& out, std::uint8_t tag, std::uint32_t v) {
  std::uint8_t b[4];
  store_be32(b, v);
  put(out, tag, Bytes(b, 4));
}

}  // namespace

std::vector<std::uint8_t> encode_policy(const Policy& p) {
  std::vector<std::uint8_t> out;
  put(out, kRealm, as_bytes(p.realm));
  put(out, kSoftware, as_bytes(p.software));
  for (const auto& [name, key] : p.users) {
    std::vector<std::uint8_t> v(as_bytes(name).begin(), as_bytes(name).end());
    v.insert(v.end(), key.begin(), key.end());  // the name, then the 16-byte long-term key
    put(out, kUser, v);
  }
  for (const auto& s : p.rest_secrets)
    put(out, kRestSecret, as_bytes(s));
  for (const auto& c : p.allow_peers)
    put(out, kAllowPeer, as_bytes(c.to_string()));
  for (const auto& c : p.deny_peers)
    put(out, kDenyPeer, as_bytes(c.to_string()));
  put_u32(out, kDefaultLifetime, p.default_lifetime_s);
  put_u32(out, kMaxLifetime, p.max_lifetime_s);
  put_u32(out, kPermissionLifetime, p.permission_lifetime_s);
  put_u32(out, kChannelLifetime, p.channel_lifetime_s);
  put_u32(out, kNonceLifetime, p.nonce_lifetime_s);
  put_u32(out, kUserQuota, p.user_quota);
  put_u32(out, kMaxAllocations, p.max_allocations);
  put_u32(out, kMaxPermissions, p.max_permissions);
  put_u32(out, kMaxChannels, p.max_channels);
  put_u32(out, kUnauthorizedPerS, p.unauthorized_per_s);
  put_u32(out, kUnauthorizedBurst, p.unauthorized_burst);
  put_u32(out, kStrictChannels, p.strict_channel_numbers ? 1 : 0);
  std::uint8_t bw[8];
  store_be64(bw, p.allocation_bandwidth_bps);
  put(out, kBandwidth, Bytes(bw, 8));
  return out;
}

std::optional<Policy> decode_policy(Bytes d, std::string* error) {
  auto fail = [error](const char* why) -> std::optional<Policy> {
    if (error != nullptr)
      *error = why;
    return std::nullopt;
  };
  Policy p;
  p.software.clear();
  std::size_t pos = 0;
  bool realm = false;
  while (pos < d.size()) {
    if (d.size() - pos < 5)
      return fail("truncated field header");
    std::uint8_t tag = d[pos];
    std::uint32_t len = load_be32(d.data() + pos + 1);
    pos += 5;
    if (len > d.size() - pos)
      return fail("field runs past the end");
    Bytes v = d.subspan(pos, len);
    pos += len;
    auto u32 = [&](std::uint32_t& out) {
      if (v.size() != 4)
        return false;
      out = load_be32(v.data());
      return true;
    };
    bool ok = true;
    switch (tag) {
      case kRealm:
        p.realm = as_string(v);
        realm = true;
        break;
      case kSoftware:
        p.software = as_string(v);
        break;
      case kUser: {
        if (v.size() <= 16)
          return fail("user field too short");
        CredentialKey key;
        std::memcpy(key.data(), v.data() + v.size() - 16, 16);
        p.users[std::string(as_string(v.first(v.size() - 16)))] = key;
        break;
      }
      case kRestSecret:
        if (v.empty())
          return fail("empty REST secret");
        p.rest_secrets.emplace_back(as_string(v));
        break;
      case kAllowPeer:
      case kDenyPeer: {
        auto c = Cidr::parse(as_string(v));
        if (!c)
          return fail("bad CIDR");
        (tag == kAllowPeer ? p.allow_peers : p.deny_peers).push_back(*c);
        break;
      }
      case kDefaultLifetime:
        ok = u32(p.default_lifetime_s);
        break;
      case kMaxLifetime:
        ok = u32(p.max_lifetime_s);
        break;
      case kPermissionLifetime:
        ok = u32(p.permission_lifetime_s);
        break;
      case kChannelLifetime:
        ok = u32(p.channel_lifetime_s);
        break;
      case kNonceLifetime:
        ok = u32(p.nonce_lifetime_s);
        break;
      case kUserQuota:
        ok = u32(p.user_quota);
        break;
      case kMaxAllocations:
        ok = u32(p.max_allocations);
        break;
      case kMaxPermissions:
        ok = u32(p.max_permissions);
        break;
      case kMaxChannels:
        ok = u32(p.max_channels);
        break;
      case kUnauthorizedPerS:
        ok = u32(p.unauthorized_per_s);
        break;
      case kUnauthorizedBurst:
        ok = u32(p.unauthorized_burst);
        break;
      case kStrictChannels: {
        std::uint32_t b = 0;
        ok = u32(b);
        p.strict_channel_numbers = b != 0;
        break;
      }
      case kBandwidth:
        if (v.size() != 8)
          return fail("bad bandwidth field");
        p.allocation_bandwidth_bps = load_be64(v.data());
        break;
      default:
        return fail("unknown field");
    }
    if (!ok)
      return fail("bad integer field");
  }
  if (!realm)
    return fail("no realm");
  if (p.default_lifetime_s == 0 || p.max_lifetime_s == 0 || p.nonce_lifetime_s == 0) {
    return fail("zero lifetime");
  }
  return p;
}

bool PolicyAssembler::begin(std::uint64_t generation, std::uint32_t total, std::string& error) {
  if (total > kMaxBytes) {
    error = "policy too large";
    open_ = false;
    return false;
  }
  buffer_.clear();
  buffer_.reserve(total);
  generation_ = generation;
  total_ = total;
  open_ = true;
  return true;
}

bool PolicyAssembler::chunk(Bytes part, std::string& error) {
  if (!open_ || part.size() > total_ - buffer_.size()) {
    error = open_ ? "chunk past the announced size" : "chunk without begin";
    open_ = false;
    return false;
  }
  buffer_.insert(buffer_.end(), part.begin(), part.end());
  return true;
}

std::optional<Policy> PolicyAssembler::commit(std::uint64_t generation, std::string& error) {
  bool complete = open_ && generation == generation_ && buffer_.size() == total_;
  open_ = false;
  if (!complete) {
    error = "commit without a complete policy of that generation";
    return std::nullopt;
  }
  return decode_policy(buffer_, &error);
}

}  // namespace ringlane::turn
