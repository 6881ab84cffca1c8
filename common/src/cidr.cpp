#include "ringlane/common/cidr.hpp"

#include <charconv>

namespace ringlane {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) {
    return std::nullopt;
  }
  unsigned max_len = ip->family == Family::kV4 ? 32 : 128;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc{} || end != digits.data() + digits.size() || len > max_len) {
      return std::nullopt;
    }
  }
  return Cidr{*ip, len};
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family != network.family) {
    return false;
  }
  unsigned full = prefix_len / 8;
  for (unsigned i = 0; i < full; ++i) {
    if (ip.bytes[i] != network.bytes[i]) {
      return false;
    }
  }
  unsigned rest = prefix_len % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (ip.bytes[full] & mask) == (network.bytes[full] & mask);
}

std::string Cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix_len);
}

bool any_contains(const std::vector<Cidr>& list, const IpAddress& ip) {
  for (const auto& c : list) {
    if (c.contains(ip)) {
      return true;
    }
  }
  return false;
}

}  // namespace ringlane
