// The AV1 Dependency Descriptor parser (AV1 RTP payload format, Appendix A). The input is a run
// of descriptors, each a length byte then that many bytes, parsed in order with one track state
// (a structure, then the packets that refer to it); a parse that succeeds must describe a frame
// its structure has.
#include <cstddef>
#include <cstdint>

#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"

namespace {

using ringlane::rtp::DependencyDescriptor;
using ringlane::rtp::DependencyError;
using ringlane::rtp::DependencyState;
using ringlane::rtp::DependencyStructure;

void check(const DependencyState& state, const DependencyDescriptor& d) {
  const DependencyStructure& s = d.stale_structure ? state.scratch : state.structure;
  if (!state.known || s.template_count == 0 ||
      s.template_count > DependencyStructure::kMaxTemplates || s.decode_targets == 0 ||
      s.decode_targets > DependencyStructure::kMaxDecodeTargets || s.chains > s.decode_targets ||
      s.max_spatial >= DependencyStructure::kMaxSpatial ||
      s.max_temporal >= DependencyStructure::kMaxTemporal || d.spatial > s.max_spatial ||
      d.temporal > s.max_temporal || d.fdiff_count > DependencyStructure::kMaxFdiffs) {
    __builtin_trap();
  }
  for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
    if ((s.chains != 0 && s.protected_by_chain[dt] >= s.chains) ||
        s.target_spatial[dt] > s.max_spatial || s.target_temporal[dt] > s.max_temporal) {
      __builtin_trap();
    }
  }
  // The active decode targets are the state's structure's (a stale one describes one frame).
  std::size_t targets = state.structure.decode_targets;
  if (targets == 0 || (targets < 32 && (state.active_decode_targets >> targets) != 0)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  static DependencyState state;  // 10 KB: not on the stack of every run
  static DependencyState whole;
  state = DependencyState{};
  DependencyDescriptor d;
  std::size_t at = 0;
  while (at < size) {
    std::size_t n = data[at++];
    if (n > size - at) {
      n = size - at;
    }
    if (rtp::parse_dependency_descriptor(Bytes(data + at, n), state, d) == DependencyError::kNone) {
      check(state, d);
    }
    at += n;
  }
  // The whole input as one descriptor, with no structure before it.
  whole = DependencyState{};
  if (rtp::parse_dependency_descriptor(Bytes(data, size), whole, d) == DependencyError::kNone) {
    check(whole, d);
  }
  return 0;
}
