// What each subscriber gets of each track, told to the control plane every report interval
// (shm::RouteReport): the layer, the bitrate and frame rate sent, layer changes, freezes, the
// subscriber's own loss and jitter, and its transport's estimate and round trip. One event per
// route (an event slot holds one); the control plane turns them into /metrics.
#include <algorithm>

#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {

void Engine::report_routes(const Now& now) {
  std::uint64_t elapsed = now.mono_ms - last_route_report_ms_;
  last_route_report_ms_ = now.mono_ms;
  if (elapsed == 0) {
    return;
  }
  for (auto& [id, sp] : sessions_) {
    Session& sub = *sp;
    if (sub.subscriptions.empty() || !sub.connected()) {
      continue;
    }
    std::uint32_t estimate = 0;
    std::uint32_t rtt = 0;
    if (sub.bwe) {
      BandwidthEstimatorStats st = sub.bwe->stats();
      estimate = static_cast<std::uint32_t>(std::min<std::uint64_t>(st.estimate_bps, 0xFFFFFFFF));
      rtt = static_cast<std::uint32_t>(std::max<std::int64_t>(0, st.rtt_us / 1000));
    }
    for (const Subscription& x : sub.subscriptions) {
      Session* pub = find(x.publisher);
      Track* head = pub != nullptr ? pub->track_by_key(x.publisher_ssrc) : nullptr;
      Route* r = head != nullptr ? head->route(sub, x.ssrc) : nullptr;
      if (r == nullptr) {
        continue;
      }
      shm::RouteReport m;
      m.subscriber = sub.id;
      m.ssrc = r->ssrc;
      m.kind = head->kind;
      if (head->layers > 1) {
        m.layer = r->current;
        m.target = r->target;
      } else if (head->svc_layered && !r->paused) {
        // Layers inside the stream, counted in those the track has (kAllLayers: all of them).
        m.layer = std::min(r->spatial, head->svc_top_spatial);
        m.target = std::min(r->spatial_target, head->svc_top_spatial);
        m.temporal = std::min(r->temporal, head->svc_top_temporal);
        m.temporal_target = std::min(r->temporal_target, head->svc_top_temporal);
      }
      m.preference_changes = r->preference_changes;
      m.keyframe_switches = r->keyframe_switches;
      m.bitrate_bps = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(r->report_bytes * 8 * 1000 / elapsed, 0xFFFFFFFF));
      m.frame_rate_milli =
          static_cast<std::uint32_t>(std::uint64_t{r->report_frames} * 1000 * 1000 / elapsed);
      m.layer_ups = r->ups;
      m.layer_downs = r->downs;
      m.freezes = r->freezes;
      m.fraction_lost = r->fraction_lost;
      m.jitter_ms = static_cast<std::uint32_t>(std::uint64_t{r->jitter} * 1000 / head->clock_rate);
      m.estimate_bps = estimate;
      m.rtt_ms = rtt;
      r->report_bytes = 0;
      r->report_frames = 0;
      out_.event(shm::Event::kRouteReport, shm::encode(m));
      ++counters_.route_reports;
    }
  }
}

void Engine::report_levels() {
  shm::AudioLevels m;
  auto flush = [&] {
    if (!m.tracks.empty()) {
      out_.event(shm::Event::kAudioLevels, shm::encode(m));
      m.tracks.clear();
    }
  };
  for (auto& [id, sp] : sessions_) {
    for (auto& t : sp->tracks) {
      if (t.kind != shm::MediaKind::kAudio) {
        continue;
      }
      // The peak: a syllable (or a short sound) in the interval counts whole.
      std::uint8_t level = t.loudness_peak;
      t.loudness_peak = 0;
      // Silence is told for a few intervals after the track was loud (long enough for the
      // control plane to end its turn as a speaker), then no more.
      constexpr std::uint8_t kQuietReports = 8;
      if (level != 0) {
        t.quiet_reports = 0;
      } else if (t.quiet_reports >= kQuietReports) {
        continue;
      } else {
        ++t.quiet_reports;
      }
      m.tracks.push_back(shm::AudioLevel{sp->id, t.key, level});
      if (m.tracks.size() == shm::AudioLevels::kMax) {
        flush();
      }
    }
  }
  flush();
}

}  // namespace ringlane::sfu
