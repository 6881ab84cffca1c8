#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/common/endpoint.hpp"

namespace ringlane {

struct Cidr {
  IpAddress network;
  unsigned prefix_len = 0;

  // "10.0.0.0/8", "fe80::/10", or a bare address (a /32 or /128).
  static std::optional<Cidr> parse(std::string_view text);
  // Same family only; callers unmap IPv4-mapped IPv6 first.
  bool contains(const IpAddress& ip) const;
  std::string to_string() const;
};

bool any_contains(const std::vector<Cidr>& list, const IpAddress& ip);

}  // namespace ringlane
