#pragma once
// Test-side writer of AV1 Dependency Descriptors (AV1 RTP payload format, Appendix A), bit by bit
// as the spec's syntax tables list the fields, and the structures libwebrtc sends for L1T3 and
// L3T3 (its full-SVC decode target indications: a frame is a switching point of the decode
// targets of its spatial layer that are at TL0 or above its own temporal layer).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringlane::testing::dd {

class Bits {
 public:
  void put(std::uint32_t v, int n) {
    for (int i = n - 1; i >= 0; --i) {
      bits_.push_back(((v >> i) & 1u) != 0);
    }
  }
  // ns(n).
  void ns(std::uint32_t n, std::uint32_t v) {
    int w = 0;
    for (std::uint32_t x = n; x != 0; x >>= 1) {
      ++w;
    }
    std::uint32_t m = (1u << w) - n;
    if (v < m) {
      put(v, w - 1);
    } else {
      std::uint32_t x = v + m;
      put(x >> 1, w - 1);
      put(x & 1u, 1);
    }
  }
  std::size_t size() const { return bits_.size(); }
  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> out((bits_.size() + 7) / 8, 0);
    for (std::size_t i = 0; i < bits_.size(); ++i) {
      if (bits_[i]) {
        out[i / 8] = static_cast<std::uint8_t>(out[i / 8] | (0x80 >> (i % 8)));
      }
    }
    return out;
  }

 private:
  std::vector<bool> bits_;
};

struct TemplateSpec {
  int spatial = 0;
  int temporal = 0;
  std::string dtis;  // '-', 'D', 'S', 'R' per decode target
  std::vector<int> fdiffs;
  std::vector<int> chains;  // one per chain
};

struct StructureSpec {
  int offset = 0;
  int decode_targets = 1;
  int chains = 0;
  std::vector<int> protected_by;  // per decode target, when chains
  std::vector<TemplateSpec> templates;
  std::vector<std::pair<int, int>> resolutions;  // per spatial layer, or none
};

inline int dti_value(char c) {
  return c == '-' ? 0 : c == 'D' ? 1 : c == 'S' ? 2 : 3;
}

// template_dependency_structure().
inline void put_structure(Bits& b, const StructureSpec& s) {
  b.put(static_cast<std::uint32_t>(s.offset), 6);
  b.put(static_cast<std::uint32_t>(s.decode_targets - 1), 5);
  for (std::size_t i = 0; i < s.templates.size(); ++i) {
    if (i + 1 == s.templates.size()) {
      b.put(3, 2);
    } else {
      const auto& a = s.templates[i];
      const auto& n = s.templates[i + 1];
      b.put(n.spatial != a.spatial ? 2 : n.temporal != a.temporal ? 1 : 0, 2);
    }
  }
  for (const auto& t : s.templates) {
    for (char c : t.dtis) {
      b.put(static_cast<std::uint32_t>(dti_value(c)), 2);
    }
  }
  for (const auto& t : s.templates) {
    for (int f : t.fdiffs) {
      b.put(1, 1);
      b.put(static_cast<std::uint32_t>(f - 1), 4);
    }
    b.put(0, 1);
  }
  b.ns(static_cast<std::uint32_t>(s.decode_targets + 1), static_cast<std::uint32_t>(s.chains));
  if (s.chains > 0) {
    for (int p : s.protected_by) {
      b.ns(static_cast<std::uint32_t>(s.chains), static_cast<std::uint32_t>(p));
    }
    for (const auto& t : s.templates) {
      for (int c : t.chains) {
        b.put(static_cast<std::uint32_t>(c), 4);
      }
    }
  }
  b.put(s.resolutions.empty() ? 0 : 1, 1);
  for (auto [w, h] : s.resolutions) {
    b.put(static_cast<std::uint32_t>(w - 1), 16);
    b.put(static_cast<std::uint32_t>(h - 1), 16);
  }
}

struct Frame {
  bool start = true;
  bool end = true;
  int template_id = 0;
  int frame_number = 0;
  const StructureSpec* structure = nullptr;  // attached
  std::optional<std::uint32_t> active;       // active_decode_targets_bitmask
  int decode_targets = 1;                    // of the structure in force (for `active`, custom)
  std::optional<std::string> custom_dtis;
  std::optional<std::vector<int>> custom_fdiffs;
  std::optional<std::vector<int>> custom_chains;
};

inline Frame frame(bool start, bool end, int template_id, int frame_number,
                   const StructureSpec* structure = nullptr) {
  Frame f;
  f.start = start;
  f.end = end;
  f.template_id = template_id;
  f.frame_number = frame_number;
  f.structure = structure;
  return f;
}

// dependency_descriptor(): the mandatory fields, the extended ones when anything needs them.
inline std::vector<std::uint8_t> descriptor(const Frame& f) {
  Bits b;
  b.put(f.start ? 1 : 0, 1);
  b.put(f.end ? 1 : 0, 1);
  b.put(static_cast<std::uint32_t>(f.template_id), 6);
  b.put(static_cast<std::uint32_t>(f.frame_number), 16);
  bool extended =
      f.structure != nullptr || f.active || f.custom_dtis || f.custom_fdiffs || f.custom_chains;
  if (!extended) {
    return b.bytes();
  }
  b.put(f.structure != nullptr ? 1 : 0, 1);
  b.put(f.active ? 1 : 0, 1);
  b.put(f.custom_dtis ? 1 : 0, 1);
  b.put(f.custom_fdiffs ? 1 : 0, 1);
  b.put(f.custom_chains ? 1 : 0, 1);
  int dts = f.structure != nullptr ? f.structure->decode_targets : f.decode_targets;
  if (f.structure != nullptr) {
    put_structure(b, *f.structure);
  }
  if (f.active) {
    b.put(*f.active, dts);
  }
  if (f.custom_dtis) {
    for (char c : *f.custom_dtis) {
      b.put(static_cast<std::uint32_t>(dti_value(c)), 2);
    }
  }
  if (f.custom_fdiffs) {
    for (int d : *f.custom_fdiffs) {
      std::uint32_t v = static_cast<std::uint32_t>(d - 1);
      int size = v < 16 ? 1 : v < 256 ? 2 : 3;
      b.put(static_cast<std::uint32_t>(size), 2);
      b.put(v, 4 * size);
    }
    b.put(0, 2);
  }
  if (f.custom_chains) {
    for (int c : *f.custom_chains) {
      b.put(static_cast<std::uint32_t>(c), 8);
    }
  }
  auto out = b.bytes();
  if (out.size() <= 3) {
    out.resize(4, 0);  // the extended fields make it longer than the mandatory ones
  }
  return out;
}

// libwebrtc's L1T3: one decode target per temporal layer, one chain (the TL0 frames).
inline StructureSpec l1t3() {
  StructureSpec s;
  s.offset = 0;
  s.decode_targets = 3;
  s.chains = 1;
  s.protected_by = {0, 0, 0};
  s.templates = {
      {0, 0, "SSS", {}, {0}},  {0, 0, "SSS", {4}, {4}}, {0, 1, "-DS", {2}, {2}},
      {0, 2, "--D", {1}, {1}}, {0, 2, "--D", {1}, {3}},
  };
  return s;
}

// L3T3 (full SVC): decode target 3 * spatial + temporal, a chain per spatial layer, three
// frames per temporal unit (frame diffs count every layer frame), 320x180 to 1280x720. The
// template id offset makes the ids wrap past 63.
inline StructureSpec l3t3() {
  StructureSpec s;
  s.offset = 60;
  s.decode_targets = 9;
  s.chains = 3;
  s.protected_by = {0, 0, 0, 1, 1, 1, 2, 2, 2};
  s.templates = {
      {0, 0, "SSSSSSSSS", {}, {0, 0, 0}},     {0, 0, "SSSRRRRRR", {12}, {12, 11, 10}},
      {0, 1, "-DS-RR-RR", {6}, {6, 5, 4}},    {0, 2, "--D--R--R", {3}, {3, 2, 1}},
      {1, 0, "---SSSSSS", {1}, {1, 1, 0}},    {1, 0, "---SSSRRR", {12, 1}, {1, 12, 11}},
      {1, 1, "----DS-RR", {6, 1}, {1, 6, 5}}, {1, 2, "-----D--R", {3, 1}, {1, 3, 2}},
      {2, 0, "------SSS", {1}, {2, 1, 1}},    {2, 0, "------SSS", {12, 1}, {2, 1, 12}},
      {2, 1, "-------DS", {6, 1}, {2, 1, 6}}, {2, 2, "--------D", {3, 1}, {2, 1, 3}},
  };
  s.resolutions = {{320, 180}, {640, 360}, {1280, 720}};
  return s;
}

// The index in l3t3() of the template for a frame of (spatial, temporal), key: of a keyframe's
// temporal unit.
inline int l3t3_template(int spatial, int temporal, bool key) {
  static const int first[3] = {0, 4, 8};
  return first[spatial] + (key ? 0 : 1 + temporal);
}

}  // namespace ringlane::testing::dd
