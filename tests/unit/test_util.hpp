#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/common/bytes.hpp"

namespace ringlane::testing {

inline std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  int hi = -1;
  for (char c : hex) {
    int v = hex_digit(c);
    if (v < 0)
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

}  // namespace ringlane::testing
