#pragma once
// Packet builders shared by the SFU engine tests (simulcast_test.cpp, svc_test.cpp): RTP packets
// with RFC 8285 one-byte header extensions, as a browser sends them.
#include <cstdint>
#include <string>
#include <vector>

#include "ringlane/common/bytes.hpp"

namespace ringlane::sfu::testing {

struct Ext {
  std::uint8_t id;
  std::vector<std::uint8_t> value;
};

inline std::vector<std::uint8_t> text(const std::string& s) {
  return {s.begin(), s.end()};
}

// An RTP packet with RFC 8285 one-byte header extensions.
inline std::vector<std::uint8_t> build_packet(std::uint32_t ssrc, std::uint8_t pt,
                                              std::uint16_t seq, std::uint32_t ts, bool marker,
                                              const std::vector<Ext>& ext,
                                              const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> block;
  for (const Ext& e : ext) {
    block.push_back(static_cast<std::uint8_t>((e.id << 4) | (e.value.size() - 1)));
    block.insert(block.end(), e.value.begin(), e.value.end());
  }
  while (block.size() % 4 != 0) {
    block.push_back(0);
  }
  std::vector<std::uint8_t> p(12);
  p[0] = block.empty() ? 0x80 : 0x90;
  p[1] = static_cast<std::uint8_t>((marker ? 0x80 : 0) | pt);
  store_be16(&p[2], seq);
  store_be32(&p[4], ts);
  store_be32(&p[8], ssrc);
  if (!block.empty()) {
    p.push_back(0xBE);
    p.push_back(0xDE);
    p.push_back(static_cast<std::uint8_t>(block.size() / 4 >> 8));
    p.push_back(static_cast<std::uint8_t>(block.size() / 4));
    p.insert(p.end(), block.begin(), block.end());
  }
  p.insert(p.end(), payload.begin(), payload.end());
  return p;
}

}  // namespace ringlane::sfu::testing
