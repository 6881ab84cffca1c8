// AV1 scalability through the SFU, read from the Dependency Descriptor header extension (AV1 RTP
// payload format, Appendix A) instead of the payload: each packet names its frame's template, so
// its spatial and temporal ids, and whether the frame is a switching point of a decode target.
// These feed the same per-route decision as VP9 SVC (layers.cpp select_svc). The extension itself
// goes to the subscribers unchanged but for its id.
#include <algorithm>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {

Engine::Layering Engine::dependency_layering(Track& t, const rtp::RtpPacket& p) {
  Layering l;
  auto ext = p.extension(t.dependency_extension);
  if (!ext) {
    return l;
  }
  rtp::DependencyDescriptor d;
  rtp::DependencyError e = rtp::parse_dependency_descriptor(*ext, *t.dependency, d);
  if (e != rtp::DependencyError::kNone || d.stale_structure) {
    // Passed on whole, without layer decisions, as a malformed VP9 descriptor; so is a late copy
    // of an earlier keyframe's first packet (in the structure before the one in force).
    counters_.dependency_malformed += e != rtp::DependencyError::kNone ? 1 : 0;
    return l;
  }
  const rtp::DependencyStructure& s = t.dependency->structure;
  l.known = true;
  l.av1 = true;
  l.structure = &s;
  l.sid = d.spatial;
  l.tid = d.temporal;
  l.end = d.end_of_frame;
  // A temporal unit starts with its lowest spatial layer's frame; that is where a route's layers
  // change. A keyframe refers to no frame (no frame diffs) and starts a new sequence (the payload's
  // N bit) or comes with a new structure, which libwebrtc sends on keyframes.
  l.frame_start = d.start_of_frame && d.spatial == 0;
  l.keyframe = l.frame_start && d.fdiff_count == 0 &&
               (d.has_structure || rtp::starts_keyframe(shm::Codec::kAv1, p.payload()));
  for (std::size_t dt = 0; dt < s.decode_targets; ++dt) {
    if (d.dtis[dt] == rtp::Dti::kSwitch) {
      l.switch_targets |= 1u << dt;
    }
  }
  int own = s.decode_target(d.spatial, d.temporal);
  l.sync = own >= 0 && ((l.switch_targets >> own) & 1u) != 0;
  return l;
}

std::uint8_t Engine::dependency_temporal(const Layering& l, std::uint8_t spatial,
                                         std::uint8_t temporal, std::uint8_t target) {
  if (l.structure == nullptr || temporal >= target) {
    return temporal;
  }
  // In the layers the stream has: a route that may have everything (kAllLayers) is at the top.
  auto s = std::min(spatial, l.structure->max_spatial);
  auto top = std::min(target, l.structure->max_temporal);
  for (int tt = top; tt > temporal; --tt) {
    int dt = l.structure->decode_target(s, static_cast<std::uint8_t>(tt));
    if (dt >= 0 && ((l.switch_targets >> dt) & 1u) != 0) {
      // From here on every frame of that decode target refers only to this one, later ones, or
      // the lower layers the route already has. If the stream has no higher layer, the route's
      // target is its own (kAllLayers stays kAllLayers).
      return tt == l.structure->max_temporal ? target : static_cast<std::uint8_t>(tt);
    }
  }
  return temporal;
}

}  // namespace ringlane::sfu
