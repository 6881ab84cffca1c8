#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"

#include <algorithm>

namespace ringlane::rtp {
namespace {

// Reads the descriptor's bit string most significant bit first (the spec's f(n)). A read past the
// end returns 0 and marks the reader failed; the caller checks ok() before using what it read.
class BitReader {
 public:
  explicit BitReader(Bytes data) : data_(data) {}

  std::uint32_t bits(std::size_t n) {
    if (!ok_ || n > 32 || data_.size() * 8 - at_ < n) {
      ok_ = false;
      return 0;
    }
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i, ++at_) {
      v = (v << 1) | ((data_[at_ / 8] >> (7 - at_ % 8)) & 1u);
    }
    return v;
  }
  bool flag() { return bits(1) != 0; }
  // ns(n): a non-symmetric unsigned value below n, in w - 1 or w bits.
  std::uint32_t ns(std::uint32_t n) {
    std::uint32_t w = 0;
    for (std::uint32_t x = n; x != 0; x >>= 1) {
      ++w;
    }
    if (w == 0) {
      return 0;
    }
    std::uint32_t m = (1u << w) - n;
    std::uint32_t v = bits(w - 1);
    if (v < m) {
      return v;
    }
    return (v << 1) - m + bits(1);
  }
  bool ok() const { return ok_; }

 private:
  Bytes data_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

// template_layers(): next_layer_idc walks the templates in layer order.
DependencyError read_layers(BitReader& in, DependencyStructure& s) {
  std::uint32_t spatial = 0;
  std::uint32_t temporal = 0;
  s.template_count = 0;
  s.max_temporal = 0;
  for (;;) {
    if (s.template_count == DependencyStructure::kMaxTemplates) {
      return DependencyError::kBadStructure;
    }
    auto& t = s.templates[s.template_count++];
    t = DependencyStructure::Template{};
    t.spatial = static_cast<std::uint8_t>(spatial);
    t.temporal = static_cast<std::uint8_t>(temporal);
    std::uint32_t next = in.bits(2);
    if (!in.ok()) {
      return DependencyError::kTruncated;
    }
    if (next == 3) {
      break;
    }
    if (next == 1) {
      if (++temporal >= DependencyStructure::kMaxTemporal) {
        return DependencyError::kBadStructure;
      }
      s.max_temporal = std::max(s.max_temporal, static_cast<std::uint8_t>(temporal));
    } else if (next == 2) {
      temporal = 0;
      if (++spatial >= DependencyStructure::kMaxSpatial) {
        return DependencyError::kBadStructure;
      }
    }
  }
  s.max_spatial = static_cast<std::uint8_t>(spatial);
  return DependencyError::kNone;
}

// template_dependency_structure(), into `s`.
DependencyError read_structure(BitReader& in, DependencyStructure& s) {
  s.template_id_offset = static_cast<std::uint8_t>(in.bits(6));
  s.decode_targets = static_cast<std::uint8_t>(in.bits(5) + 1);
  if (!in.ok()) {
    return DependencyError::kTruncated;
  }
  if (auto e = read_layers(in, s); e != DependencyError::kNone) {
    return e;
  }
  // template_dtis().
  for (std::size_t t = 0; t < s.template_count; ++t) {
    for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
      s.templates[t].dtis[dt] = static_cast<Dti>(in.bits(2));
    }
  }
  // template_fdiffs(): fdiff_follows_flag, then fdiff_minus_one (4 bits), repeated.
  for (std::size_t t = 0; t < s.template_count; ++t) {
    auto& tp = s.templates[t];
    while (in.flag()) {
      if (tp.fdiff_count == DependencyStructure::kMaxFdiffs) {
        return DependencyError::kTooManyFdiffs;
      }
      tp.fdiffs[tp.fdiff_count++] = static_cast<std::uint8_t>(in.bits(4) + 1);
    }
  }
  // template_chains(): chain_cnt ns(DtCnt + 1), each decode target's chain ns(chain_cnt),
  // each template's chain diffs (4 bits).
  s.chains = static_cast<std::uint8_t>(in.ns(s.decode_targets + 1u));
  if (s.chains != 0) {
    for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
      s.protected_by_chain[dt] = static_cast<std::uint8_t>(in.ns(s.chains));
    }
    for (std::size_t t = 0; t < s.template_count; ++t) {
      for (std::size_t c = 0; c < s.chains; ++c) {
        s.templates[t].chain_fdiffs[c] = static_cast<std::uint8_t>(in.bits(4));
      }
    }
  }
  if (!in.ok()) {
    return DependencyError::kTruncated;
  }
  // decode_target_layers(): a decode target holds the highest layers of its templates.
  for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
    std::uint8_t spatial = 0;
    std::uint8_t temporal = 0;
    for (std::size_t t = 0; t < s.template_count; ++t) {
      if (s.templates[t].dtis[dt] != Dti::kNotPresent) {
        spatial = std::max(spatial, s.templates[t].spatial);
        temporal = std::max(temporal, s.templates[t].temporal);
      }
    }
    s.target_spatial[dt] = spatial;
    s.target_temporal[dt] = temporal;
  }
  // render_resolutions(), one per spatial layer.
  s.has_resolutions = in.flag();
  if (s.has_resolutions) {
    for (std::size_t sid = 0; sid <= s.max_spatial; ++sid) {
      s.width[sid] = static_cast<std::uint16_t>(in.bits(16) + 1);
      s.height[sid] = static_cast<std::uint16_t>(in.bits(16) + 1);
    }
  }
  return in.ok() ? DependencyError::kNone : DependencyError::kTruncated;
}

}  // namespace

int DependencyStructure::decode_target(std::uint8_t spatial, std::uint8_t temporal) const {
  for (std::size_t dt = 0; dt < decode_targets; ++dt) {
    if (target_spatial[dt] == spatial && target_temporal[dt] == temporal) {
      return static_cast<int>(dt);
    }
  }
  return -1;
}

const char* dependency_error_name(DependencyError e) {
  switch (e) {
    case DependencyError::kNone:
      return "none";
    case DependencyError::kTruncated:
      return "truncated";
    case DependencyError::kNoStructure:
      return "no structure";
    case DependencyError::kBadStructure:
      return "bad structure";
    case DependencyError::kUnknownTemplate:
      return "unknown template";
    case DependencyError::kTooManyFdiffs:
      return "too many frame diffs";
  }
  return "unknown";
}

DependencyError parse_dependency_descriptor(Bytes value, DependencyState& state,
                                            DependencyDescriptor& out) {
  out = DependencyDescriptor{};
  // mandatory_descriptor_fields(): 3 bytes.
  if (value.size() < 3) {
    return DependencyError::kTruncated;
  }
  BitReader in(value);
  out.start_of_frame = in.flag();
  out.end_of_frame = in.flag();
  out.template_id = static_cast<std::uint8_t>(in.bits(6));
  out.frame_number = static_cast<std::uint16_t>(in.bits(16));
  // The extended fields only when the element is longer than the mandatory ones.
  bool active_present = false;
  if (value.size() > 3) {
    out.has_structure = in.flag();
    active_present = in.flag();
    out.custom_dtis = in.flag();
    out.custom_fdiffs = in.flag();
    out.custom_chains = in.flag();
    if (!in.ok()) {
      return DependencyError::kTruncated;
    }
    if (out.has_structure) {
      if (auto e = read_structure(in, state.scratch); e != DependencyError::kNone) {
        return e;
      }
    }
  }
  if (!out.has_structure && !state.known) {
    return DependencyError::kNoStructure;
  }
  const DependencyStructure& s = out.has_structure ? state.scratch : state.structure;
  std::uint32_t all = s.decode_targets >= 32 ? ~0u : (1u << s.decode_targets) - 1u;
  std::uint32_t active = out.has_structure ? all : state.active_decode_targets;
  if (active_present) {
    out.has_active_decode_targets = true;
    active = in.bits(s.decode_targets);
  }
  // frame_dependency_definition().
  std::size_t index =
      (out.template_id + DependencyStructure::kMaxTemplates - s.template_id_offset) %
      DependencyStructure::kMaxTemplates;
  if (index >= s.template_count) {
    return DependencyError::kUnknownTemplate;
  }
  const auto& t = s.templates[index];
  out.spatial = t.spatial;
  out.temporal = t.temporal;
  for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
    out.dtis[dt] = out.custom_dtis ? static_cast<Dti>(in.bits(2)) : t.dtis[dt];
  }
  if (out.custom_fdiffs) {
    // frame_fdiffs(): next_fdiff_size (2 bits) says the nibbles of the next diff.
    for (std::uint32_t size = in.bits(2); size != 0 && in.ok(); size = in.bits(2)) {
      if (out.fdiff_count == DependencyStructure::kMaxFdiffs) {
        return DependencyError::kTooManyFdiffs;
      }
      out.fdiffs[out.fdiff_count++] = static_cast<std::uint16_t>(in.bits(4 * size) + 1);
    }
  } else {
    out.fdiff_count = t.fdiff_count;
    for (std::size_t i = 0; i < t.fdiff_count; ++i) {
      out.fdiffs[i] = t.fdiffs[i];
    }
  }
  for (std::size_t c = 0; c < s.chains; ++c) {
    out.chain_fdiffs[c] =
        out.custom_chains ? static_cast<std::uint8_t>(in.bits(8)) : t.chain_fdiffs[c];
  }
  if (!in.ok()) {
    return DependencyError::kTruncated;
  }
  // The rest is zero_padding. Only now, with all of it read, does the state change; a structure
  // from a little before the one in force (by the 16-bit frame number: a retransmission or a late
  // packet) described only its own frame. Far older is a restarted numbering, and taken.
  constexpr std::uint16_t kLateFrames = 1024;
  auto behind = static_cast<std::uint16_t>(state.structure_frame - out.frame_number);
  bool stale = out.has_structure && state.known && behind != 0 && behind <= kLateFrames;
  if (stale) {
    out.stale_structure = true;
    return DependencyError::kNone;
  }
  if (out.has_structure) {
    state.structure = state.scratch;
    state.structure_frame = out.frame_number;
    state.known = true;
  }
  state.active_decode_targets = active & all;
  return DependencyError::kNone;
}

}  // namespace ringlane::rtp
