#pragma once
// A transport address (IP + UDP port) as plain bytes, so protocol code can name addresses
// without including socket headers. Conversion to sockaddr lives in the io backends.
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ringlane {

enum class Family : std::uint8_t { kV4 = 4, kV6 = 6 };

struct IpAddress {
  Family family = Family::kV4;
  // IPv4 uses bytes[0..3]; the rest stays zero so comparisons and hashes stay simple.
  std::array<std::uint8_t, 16> bytes{};

  static IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    IpAddress ip;
    ip.bytes[0] = a;
    ip.bytes[1] = b;
    ip.bytes[2] = c;
    ip.bytes[3] = d;
    return ip;
  }
  std::size_t size() const { return family == Family::kV4 ? 4 : 16; }
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its IPv4 form; otherwise itself.
  IpAddress unmapped() const;
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

struct Endpoint {
  IpAddress ip;
  std::uint16_t port = 0;

  Family family() const { return ip.family; }
  // "1.2.3.4:5678" or "[::1]:5678".
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

struct IpAddressHash {
  std::size_t operator()(const IpAddress& ip) const noexcept {
    std::uint64_t a;
    std::uint64_t b;
    std::memcpy(&a, ip.bytes.data(), 8);
    std::memcpy(&b, ip.bytes.data() + 8, 8);
    std::uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + static_cast<std::uint64_t>(ip.family));
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return IpAddressHash{}(e.ip) * 31 + e.port;
  }
};

}  // namespace ringlane
