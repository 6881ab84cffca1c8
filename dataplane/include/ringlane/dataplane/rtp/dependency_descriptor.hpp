#pragma once
// The AV1 Dependency Descriptor RTP header extension (AV1 RTP payload format, Appendix A; URI
// https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension): what
// an SFU needs to forward scalable video without reading the payload. Every packet carries the
// mandatory fields (frame start/end, a template id, the frame number); the first packet of a key
// frame carries the template dependency structure, which the later packets of the stream refer
// to by template id. The parser reads a bit string of the extension's value with every read
// bounds-checked, into fixed-size arrays (the spec's limits), and never allocates.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlane/common/bytes.hpp"

namespace ringlane::rtp {

inline constexpr std::string_view kDependencyDescriptorUri =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

// Decode target indication: how a frame relates to a decode target.
enum class Dti : std::uint8_t {
  kNotPresent = 0,   // '-': not part of the decode target
  kDiscardable = 1,  // 'D': no later frame of the target depends on it
  kSwitch = 2,       // 'S': the target can be decoded from here on (a switching point)
  kRequired = 3,     // 'R': the target needs it
};

// The template dependency structure: templates in layer order, each with its spatial and
// temporal id, DTIs, frame diffs and chain diffs; which chain protects each decode target; the
// layers each decode target holds (derived, decode_target_layers()); and, when present, the render
// resolution per spatial layer.
struct DependencyStructure {
  static constexpr std::size_t kMaxTemplates = 64;      // the 6-bit template id
  static constexpr std::size_t kMaxDecodeTargets = 32;  // dt_cnt_minus_one is 5 bits
  static constexpr std::size_t kMaxFdiffs = 16;         // per frame: ours (libwebrtc sends few)
  static constexpr std::size_t kMaxSpatial = 4;         // AV1 spatial_id is 2 bits
  static constexpr std::size_t kMaxTemporal = 8;        // ... temporal_id 3 bits

  struct Template {
    std::uint8_t spatial = 0;
    std::uint8_t temporal = 0;
    std::array<Dti, kMaxDecodeTargets> dtis{};
    std::uint8_t fdiff_count = 0;
    std::array<std::uint8_t, kMaxFdiffs> fdiffs{};  // 1-16
    std::array<std::uint8_t, kMaxDecodeTargets> chain_fdiffs{};
  };

  std::uint8_t template_id_offset = 0;
  std::uint8_t decode_targets = 0;  // DtCnt, 1-32
  std::uint8_t template_count = 0;
  std::uint8_t chains = 0;  // 0 (none) to DtCnt
  std::uint8_t max_spatial = 0;
  std::uint8_t max_temporal = 0;
  std::array<std::uint8_t, kMaxDecodeTargets> protected_by_chain{};
  // DecodeTargetSpatialId / DecodeTargetTemporalId.
  std::array<std::uint8_t, kMaxDecodeTargets> target_spatial{};
  std::array<std::uint8_t, kMaxDecodeTargets> target_temporal{};
  bool has_resolutions = false;
  std::array<std::uint16_t, kMaxSpatial> width{};  // max_render_width_minus_1 + 1
  std::array<std::uint16_t, kMaxSpatial> height{};
  std::array<Template, kMaxTemplates> templates{};

  // The decode target whose layers are exactly (spatial, temporal); -1 when there is none.
  int decode_target(std::uint8_t spatial, std::uint8_t temporal) const;
};

// One packet's descriptor, with the frame's dependency definition resolved (from its template,
// or the custom values the packet carries).
struct DependencyDescriptor {
  bool start_of_frame = false;
  bool end_of_frame = false;
  std::uint8_t template_id = 0;
  std::uint16_t frame_number = 0;
  bool has_structure = false;  // this packet attached a new structure
  // ... an older one, which did not replace the state's: the frame is described in the state's
  // scratch structure.
  bool stale_structure = false;
  bool has_active_decode_targets = false;  // ... or an active decode targets bitmask
  bool custom_dtis = false;
  bool custom_fdiffs = false;
  bool custom_chains = false;
  std::uint8_t spatial = 0;
  std::uint8_t temporal = 0;
  std::array<Dti, DependencyStructure::kMaxDecodeTargets> dtis{};
  std::uint8_t fdiff_count = 0;
  std::array<std::uint16_t, DependencyStructure::kMaxFdiffs> fdiffs{};  // custom: up to 4096
  std::array<std::uint8_t, DependencyStructure::kMaxDecodeTargets> chain_fdiffs{};
};

// What a track keeps between packets: the latest structure and active decode targets seen.
struct DependencyState {
  bool known = false;
  DependencyStructure structure;
  std::uint32_t active_decode_targets = 0;  // bit i: decode target i is active
  // The frame number of the packet that attached `structure`: one up to 1024 frames older
  // attaching a structure (a retransmission or a late packet of an earlier keyframe) does not
  // replace it.
  std::uint16_t structure_frame = 0;
  // Where an attached structure is read first: it replaces `structure` only once the whole
  // descriptor parsed (and no packet without one pays for clearing it).
  DependencyStructure scratch;
};

enum class DependencyError : std::uint8_t {
  kNone = 0,
  kTruncated,        // a field runs past the end of the extension
  kNoStructure,      // no structure attached and none seen before
  kBadStructure,     // too many templates or layers, or a chain/decode target out of range
  kUnknownTemplate,  // the template id names no template of the structure
  kTooManyFdiffs,    // more frame diffs than kMaxFdiffs
};
const char* dependency_error_name(DependencyError e);

// Parses the value of one dependency descriptor extension element. With a structure attached it
// becomes the state's (and every decode target active, unless a bitmask follows), unless its
// frame number is a little older than the one in force (then it describes its own frame only); an
// active decode targets bitmask updates the state. On an error the state is left as it was (but
// for its scratch space); the mandatory fields are in `out` whenever the first 3 bytes were there.
DependencyError parse_dependency_descriptor(Bytes value, DependencyState& state,
                                            DependencyDescriptor& out);

}  // namespace ringlane::rtp
