#pragma once
// Small text helpers the SDP parser and writers share (private to src/sdp/).
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ringlane::control::sdp::text {

inline bool is_space(char c) {
  return c == ' ' || c == '\t';
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits on spaces and tabs, skipping empty pieces (RFC 8866 wants one space; some writers put
// two). The pieces point into `s`.
inline void split(std::string_view s, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) {
      ++i;
    }
    std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) {
      ++i;
    }
    if (i > start) {
      out.push_back(s.substr(start, i - start));
    }
  }
}

inline bool has_space(std::string_view s) {
  for (char c : s) {
    if (is_space(c)) {
      return true;
    }
  }
  return false;
}

enum class NumberStatus { kOk, kNotNumber, kTooBig };

// A decimal number made of digits only (no sign, no spaces), as SDP writes them.
inline NumberStatus to_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) {
    return NumberStatus::kNotNumber;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return NumberStatus::kNotNumber;
    }
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range) {
    return NumberStatus::kTooBig;
  }
  if (ec != std::errc() || end != s.data() + s.size()) {
    return NumberStatus::kNotNumber;
  }
  return NumberStatus::kOk;
}

// Untrusted text quoted for an error message, cut short so a message stays readable.
inline std::string quoted(std::string_view s) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  out.append(s.substr(0, kMaxShown));
  if (s.size() > kMaxShown) {
    out.append("...");
  }
  out.append("'");
  return out;
}

}  // namespace ringlane::control::sdp::text
