// Simulcast (RFC 8853): a publisher sends up to three encodings of one track, each its own SSRC
// named by a rid (RFC 8852); every subscriber receives one of them as a single continuous
// stream. The layer changes only on a keyframe of the new layer, and the route's renumbering
// (sequence numbers, timestamps, the VP8 picture numbering) hides the change. Which layer each
// route gets is the allocation: the highest its subscriber wants that fits that subscriber's
// bandwidth, going down at once and up only after the estimate has held.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {
namespace {

// A layer that sent nothing for this long is gone (the publisher paused it, or its encoder
// dropped it for lack of CPU or bandwidth): no route waits for it.
constexpr std::uint64_t kLayerIdleMs = 1000;
// A route goes to a higher layer only when it has not gone down for this long (the estimate held
// after falling); going up again after going up needs no wait.
constexpr std::uint64_t kUpHoldMs = 3000;
// A keyframe of the target that does not come is asked for again after this long.
constexpr std::uint64_t kLayerAskAgainMs = 1000;
// GCC answers an overuse with 0.85x the acknowledged rate (bandwidth_estimator.cpp), and on a
// link with room that is what the SFU sent: a receiver's CPU stall, which looks like a queue for a
// moment, brings the estimate just under the layers it carries. An estimate at least this share of
// what the subscriber's layers cost keeps them (a layer left for nothing costs a keyframe and
// kUpHoldMs) unless the link loses more than random loss does; a real fall goes below the share,
// or loses more (a link that carries less than the layers fills its queue until it drops). The
// loss read is the estimator's smoothed one: GCC's loss-based part holds its rate between 2% and
// 10%, a Wi-Fi's 2-3% random loss must not take the layers down on a receiver's stall, and one
// 20-packet window of it reads 5% or 10% often (SvcBandwidthTest's lossy-link case; likely what
// stalled 1 of 9 shaped-browser runs under 2% loss).
constexpr double kKeepShare = 0.75;
constexpr double kKeepMaxLoss = 0.05;

bool active(const Track* t, std::uint64_t now_ms) {
  return t != nullptr && t->ssrc != 0 && t->last_packet_ms != 0 &&
         now_ms - t->last_packet_ms < kLayerIdleMs;
}

// A layer a route may be given: one that flows, or, above the route's current one, one dynacast
// turned off (it comes back when chosen), at the bitrate it had. Going down never waits for a
// layer to start again: that takes the publisher a keyframe, while the link is already full.
bool available(const Track* t, const Route& r, std::uint64_t now_ms) {
  return active(t, now_ms) || (t != nullptr && t->ssrc != 0 && t->dynacast_off &&
                               r.current != Route::kNoLayer && t->layer > r.current);
}
std::uint64_t cost(const Track* t) {
  return t == nullptr ? 0 : t->dynacast_off ? t->flowing_bps : t->bitrate_bps;
}

// Dynacast: a layer no route took for this long is turned off at the publisher.
constexpr std::uint64_t kDynacastIdleMs = 5000;

bool same(Bytes value, const std::string& text) {
  return value.size() == text.size() && std::memcmp(value.data(), text.data(), text.size()) == 0;
}

// The route's layer stops mid-stream for it (the route is paused, or the layer restarted under a
// new SSRC): the subscriber's decoder loses its references, so the route takes the next keyframe
// of its target (asked for by the next allocation at once), numbered on from the last packet
// sent so there is no gap to NACK. Until then a NACK finds what was sent before in the layer it
// came from.
void interrupt(Route& r) {
  if (r.current == Route::kNoLayer) {
    return;
  }
  r.previous = r.current;
  r.previous_renumber = r.renumber;
  r.previous_from = r.switched_at;
  r.switched_at = static_cast<std::uint16_t>(r.last_sequence + 1);
  r.current = Route::kNoLayer;
  r.layer_asked_ms = 0;
}

}  // namespace

Track* Engine::learn_layer(Session& s, const rtp::RtpPacket& p, bool& rtx, const Now& now) {
  if (s.rid_extension == 0 || !p.has_extension()) {
    return nullptr;
  }
  auto rid = p.extension(s.rid_extension);
  auto repaired = s.repaired_rid_extension != 0 ? p.extension(s.repaired_rid_extension)
                                                : std::optional<MutableBytes>();
  if (!rid && !repaired) {
    return nullptr;
  }
  auto mid = s.mid_extension != 0 ? p.extension(s.mid_extension) : std::optional<MutableBytes>();
  Bytes name = rid ? *rid : *repaired;
  for (auto& t : s.tracks) {
    if (t.layers <= 1 || !same(name, t.rid) || (mid && !same(*mid, t.mid))) {
      continue;
    }
    rtx = !rid;
    if (rtx) {
      t.rtx_ssrc = p.ssrc();
    } else {
      // A new SSRC for a known rid (the publisher restarted that encoding): its numbering is new,
      // so the routes on it start over at its next keyframe.
      if (t.ssrc != 0) {
        if (Track* head = s.track_by_key(t.key)) {
          for (Route& r : head->routes) {
            if (r.current == t.layer) {
              interrupt(r);
            }
          }
        }
      }
      t.ssrc = p.ssrc();
      t.received = ReceiveStats{};
      if (t.keyframe_requested) {
        request_keyframe(s, t, now);
      }
    }
    ++counters_.layers_learned;
    return &t;
  }
  return nullptr;
}

Track& Engine::layer_for(Session& publisher, Track& head, const Session& subscriber,
                         std::uint32_t subscriber_ssrc) {
  Route* r = head.layers > 1 ? head.route(subscriber, subscriber_ssrc) : nullptr;
  Track* t = r != nullptr ? publisher.track_by_key(head.key, r->target) : nullptr;
  return t != nullptr ? *t : head;
}

bool Engine::select_layer(Route& r, const Track& layer, const rtp::RtpPacket& view,
                          const Now& now) {
  if (r.paused) {
    interrupt(r);  // at the first packet held back: the resume waits for a keyframe
    return false;
  }
  if (layer.layer == r.current) {
    return true;
  }
  if (layer.layer != r.target || !rtp::starts_keyframe(layer.codec, view.payload())) {
    return false;
  }
  // The switch: this keyframe continues the subscriber's stream where the last layer left it
  // (after an interruption, `previous` already holds the layer before it).
  if (r.current != Route::kNoLayer) {
    r.previous = r.current;
    r.previous_renumber = r.renumber;
    r.previous_from = r.switched_at;
  }
  if (r.sent_any) {
    r.renumber.sequence = static_cast<std::uint16_t>(r.last_sequence + 1 - view.sequence());
    // Layers have their own timestamp origins (each SSRC starts at a random one): the new one
    // is placed after the last packet sent by the time that has passed since, so frames keep
    // their spacing. Sender reports are renumbered by the same amount, so lip sync holds.
    std::uint64_t elapsed_ms = std::max<std::uint64_t>(1, now.mono_ms - r.last_sent_ms);
    auto elapsed = static_cast<std::uint32_t>(elapsed_ms * layer.clock_rate / 1000);
    r.renumber.timestamp = r.last_timestamp + elapsed - view.timestamp();
    if (layer.codec == shm::Codec::kVp8 && r.vp8_seen) {
      if (auto d = rtp::parse_vp8(view.payload()); d && d->has_picture_id) {
        r.renumber.picture_id =
            static_cast<std::uint16_t>((r.last_picture_id + 1 - d->picture_id) & 0x7FFF);
        r.renumber.tl0picidx = static_cast<std::uint8_t>(r.last_tl0picidx + 1 - d->tl0picidx);
        r.renumber.keyidx = static_cast<std::uint8_t>((r.last_keyidx + 1 - d->keyidx) & 0x1F);
      }
    }
  }
  r.switched_at = static_cast<std::uint16_t>(view.sequence() + r.renumber.sequence);
  r.renumber_from(r.switched_at);
  r.seen_in = false;  // the new layer numbers its packets its own way
  r.dropped_picture = false;
  if (r.current != Route::kNoLayer) {
    ++r.keyframe_switches;  // from one layer to another, at the keyframe it waited for
    ++counters_.layer_keyframe_waits;
  }
  r.current = layer.layer;
  ++counters_.layer_switches;
  return true;
}

Engine::Layering Engine::layering(shm::Codec codec, Bytes payload) {
  Layering l;
  if (codec == shm::Codec::kVp8) {
    auto d = rtp::parse_vp8(payload);
    if (!d || !d->has_tid) {
      return l;
    }
    l.known = true;
    l.tid = d->tid;
    l.sync = d->layer_sync;
    l.frame_start = d->start && d->partition == 0;
    l.keyframe = d->keyframe;
    l.has_picture_id = d->has_picture_id;
    l.picture_id = d->picture_id;
  } else if (codec == shm::Codec::kVp9) {
    auto d = rtp::parse_vp9(payload);
    if (!d || !d->has_layers) {
      return l;
    }
    l.known = true;
    l.vp9 = true;
    l.tid = d->tid;
    l.sid = d->sid;
    l.sync = d->switching_up;
    l.frame_start = d->starts_picture();
    l.end = d->end;
    l.keyframe = l.frame_start && !d->inter;
    l.has_picture_id = d->has_picture_id;
    l.picture_id = d->picture_id;
  }
  return l;
}

const Renumber* Engine::select_svc(Route& r, const Layering& l, std::uint16_t sequence) {
  bool newest = !r.seen_in || static_cast<std::uint16_t>(sequence - r.highest_in - 1) < 0x8000;
  if (!newest) {
    // Late (reordered upstream): dropped by the same rule, and numbered as the packets around it
    // were, which the drops since have not moved.
    if (l.known && (l.tid > r.temporal || ((l.vp9 || l.av1) && l.sid > r.spatial))) {
      return nullptr;
    }
    const Renumber* then = r.renumber_of_source(sequence);
    return then != nullptr ? then : &r.renumber;
  }
  r.seen_in = true;
  r.highest_in = sequence;
  if (l.known) {
    if (l.frame_start) {
      if (l.keyframe) {
        // A keyframe depends on nothing: every layer the route may have starts here (RFC 9628
        // §4: in _KEY modes the upper spatial layers refer to the lower only at a keyframe).
        r.temporal = r.temporal_target;
        if (r.keyframe_seen && r.spatial_target > r.spatial) {
          ++r.keyframe_switches;  // spatial layers up, at the keyframe they waited for
          ++counters_.layer_keyframe_waits;
        }
        r.keyframe_seen = true;
        r.spatial = r.spatial_target;
      } else {
        r.temporal = std::min(r.temporal, r.temporal_target);
        r.spatial = std::min(r.spatial, r.spatial_target);
        // Up: RFC 7741 §4.2 Y, the frame depends only on TL0; RFC 9628 §4.2 U, a switching-up
        // point; and a VP9 TL0 picture, which no later picture looks past.
        if (l.av1) {
          // AV1: where the frame is a switching point (DTI S) of a higher decode target.
          r.temporal = dependency_temporal(l, r.spatial, r.temporal, r.temporal_target);
        } else if (r.temporal < r.temporal_target && l.tid > r.temporal &&
                   l.tid <= r.temporal_target && l.sync) {
          r.temporal = l.tid;
        } else if (l.vp9 && l.tid == 0) {
          r.temporal = r.temporal_target;
        }
      }
    }
    bool drop = l.tid > r.temporal || ((l.vp9 || l.av1) && l.sid > r.spatial);
    if (drop) {
      // Taken out of the route's numbering: the next packet forwarded follows the last one.
      --r.renumber.sequence;
      // A VP8 frame dropped takes its picture id (TL0PICIDX counts TL0 frames, never dropped).
      // VP9's picture ids stay: flexible mode refers to pictures by their difference.
      if (!l.vp9 && l.has_picture_id &&
          (!r.dropped_picture || l.picture_id != r.last_dropped_picture)) {
        --r.renumber.picture_id;
        r.dropped_picture = true;
        r.last_dropped_picture = l.picture_id;
      }
      r.renumber_from(static_cast<std::uint16_t>(sequence + 1 + r.renumber.sequence));
      return nullptr;
    }
    // RFC 9628 §4.1: the marker ends the picture; without the upper spatial layers the end of
    // the highest one forwarded does.
    r.set_marker = (l.vp9 || l.av1) && l.end && l.sid == r.spatial;
  }
  r.note_numbering(static_cast<std::uint16_t>(sequence + r.renumber.sequence));
  return &r.renumber;
}

std::uint64_t Engine::choose_svc(const Track& t, std::uint8_t max_spatial,
                                 std::uint8_t max_temporal, std::uint64_t budget_bps,
                                 std::uint8_t& spatial, std::uint8_t& temporal) const {
  auto top_s = static_cast<std::uint8_t>(std::min<int>(max_spatial, t.svc_top_spatial));
  auto top_t = static_cast<std::uint8_t>(std::min<int>(max_temporal, t.svc_top_temporal));
  // A layer's packets need every layer below it: the cost of (s, t) is all of them.
  auto cost_of = [&](std::uint8_t s, std::uint8_t tt) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i <= s; ++i) {
      for (std::size_t j = 0; j <= tt; ++j) {
        sum += t.svc_bitrate_bps[i * Track::kSvcLayers + j];
      }
    }
    return sum;
  };
  // The full frame rate at the highest spatial layer that fits; below the lowest, fewer frames.
  for (int s = top_s; s >= 0; --s) {
    auto sl = static_cast<std::uint8_t>(s);
    if (std::uint64_t c = cost_of(sl, top_t); c <= budget_bps || (s == 0 && top_t == 0)) {
      spatial = sl;
      temporal = top_t;
      return c;
    }
  }
  spatial = 0;
  for (int tt = top_t; tt >= 0; --tt) {
    auto tl = static_cast<std::uint8_t>(tt);
    if (std::uint64_t c = cost_of(0, tl); c <= budget_bps || tt == 0) {
      temporal = tl;
      return c;
    }
  }
  temporal = 0;
  return cost_of(0, 0);
}

std::uint8_t Engine::choose_layer(Session& publisher, const Track& head, const Route& r,
                                  std::uint64_t budget_bps, const Now& now) {
  auto top = static_cast<std::uint8_t>(std::min<int>(r.max_spatial, head.layers - 1));
  std::uint8_t lowest = Route::kNoLayer;
  std::uint8_t best = Route::kNoLayer;
  for (std::uint8_t l = 0; l <= top; ++l) {
    const Track* t = publisher.track_by_key(head.key, l);
    if (!available(t, r, now.mono_ms)) {
      continue;
    }
    if (lowest == Route::kNoLayer) {
      lowest = l;
    }
    if (cost(t) <= budget_bps) {
      best = l;
    }
  }
  if (best != Route::kNoLayer) {
    return best;
  }
  // Nothing fits: the lowest layer that flows. Nothing flows yet: the most the subscriber wants
  // (the allocation moves it once layers are measured).
  return lowest != Route::kNoLayer ? lowest : top;
}

void Engine::allocate(Session& sub, const Now& now) {
  std::uint64_t budget = estimate_bps(sub);
  sub.allocated_estimate_bps = budget;
  // What is not simulcast cannot be adapted here: it comes off the top.
  struct Want {
    Session* publisher;
    Track* head;
    Route* route;
    std::uint64_t floor_bps;  // the lowest active layer's bitrate
  };
  std::array<Want, 64> wants;
  std::size_t n = 0;
  struct SvcWant {
    Session* publisher;
    Track* track;
    Route* route;
    std::uint64_t floor_bps;
  };
  std::array<SvcWant, 32> svc;
  std::size_t n_svc = 0;
  std::uint64_t fixed = 0;
  std::uint64_t carried = 0;  // what the routes' current targets cost, the fixed part with them
  for (const Subscription& x : sub.subscriptions) {
    Session* pub = find(x.publisher);
    Track* head = pub != nullptr ? pub->track_by_key(x.publisher_ssrc) : nullptr;
    Route* r = head != nullptr ? head->route(sub, x.ssrc) : nullptr;
    if (r == nullptr) {
      continue;
    }
    if (head->layers <= 1) {
      if (head->svc_layered && !r->paused && n_svc < svc.size()) {
        // Layers inside one stream: their lowest comes off the top with the plain tracks, the
        // rest from what the simulcast routes leave.
        std::uint8_t s0 = 0;
        std::uint8_t t0 = 0;
        std::uint64_t low = choose_svc(*head, 0, 0, 0, s0, t0);
        fixed += low;
        svc[n_svc++] = SvcWant{pub, head, r, low};
        std::uint64_t now_bps =
            choose_svc(*head, r->spatial_target, r->temporal_target, ~std::uint64_t{0}, s0, t0);
        carried += now_bps - low;  // the lowest is in `fixed`
        continue;
      }
      fixed += head->bitrate_bps;
      continue;
    }
    if (r->paused || n == wants.size()) {
      continue;
    }
    std::uint8_t low = choose_layer(*pub, *head, *r, 0, now);
    wants[n++] = Want{pub, head, r, cost(pub->track_by_key(head->key, low))};
    if (r->current != Route::kNoLayer) {
      carried += cost(pub->track_by_key(head->key, r->target));
    }
  }
  carried += fixed;
  // The layers stay where they are (no step down for the estimate) on a fall no deeper than an
  // overuse of a link with room makes, with no more loss than random loss.
  bool keep = sub.bwe && sub.bwe->stats().loss_smoothed <= kKeepMaxLoss &&
              static_cast<double>(budget) >= kKeepShare * static_cast<double>(carried);
  // Higher priorities (the active speaker) take from what is left first.
  std::stable_sort(
      wants.begin(), wants.begin() + static_cast<std::ptrdiff_t>(n),
      [](const Want& a, const Want& b) { return a.head->priority > b.head->priority; });
  std::stable_sort(
      svc.begin(), svc.begin() + static_cast<std::ptrdiff_t>(n_svc),
      [](const SvcWant& a, const SvcWant& b) { return a.track->priority > b.track->priority; });
  std::uint64_t floors = 0;
  for (std::size_t i = 0; i < n; ++i) {
    floors += wants[i].floor_bps;
  }
  std::uint64_t left = budget > fixed + floors ? budget - fixed - floors : 0;
  bool held_back = false;
  std::uint64_t wanted_total = fixed;
  for (std::size_t i = 0; i < n; ++i) {
    Want& w = wants[i];
    Route& r = *w.route;
    std::uint64_t allowed = left + w.floor_bps;
    std::uint8_t layer = choose_layer(*w.publisher, *w.head, r, allowed, now);
    if (layer > r.target && r.current != Route::kNoLayer) {
      // Up only with headroom: a layer that just fits a noisy estimate is soon left again (and
      // the link meanwhile overfilled). Staying needs it to fit, going up to fit 4/5 of it.
      std::uint8_t up = choose_layer(*w.publisher, *w.head, r, allowed / 5 * 4, now);
      bool target_flows = active(w.publisher->track_by_key(w.head->key, r.target), now.mono_ms);
      layer = target_flows ? std::max(up, r.target) : up;
    }
    std::uint8_t wanted = choose_layer(*w.publisher, *w.head, r, ~std::uint64_t{0}, now);
    if (layer > r.target && r.current != Route::kNoLayer && r.down_ms != 0 &&
        now.mono_ms - r.down_ms < kUpHoldMs) {
      layer = r.target;  // up only once the last fall has held
    }
    if (layer < r.target && keep && !r.by_preference && r.current != Route::kNoLayer &&
        r.target <= r.max_spatial &&
        active(w.publisher->track_by_key(w.head->key, r.target), now.mono_ms)) {
      layer = r.target;
      ++counters_.layer_down_kept;
    }
    held_back = held_back || layer < wanted;
    wanted_total += cost(w.publisher->track_by_key(w.head->key, wanted));
    std::uint64_t spent = cost(w.publisher->track_by_key(w.head->key, layer));
    left -= std::min(left, spent > w.floor_bps ? spent - w.floor_bps : 0);
    if (layer != r.target) {
      if (layer < r.target && !r.by_preference) {
        r.down_ms = now.mono_ms;  // the hold before going up is the bandwidth's, not a wish's
      }
      if (r.by_preference) {
        // Counted by route_layer as the subscriber's wish.
      } else if (layer < r.target) {
        ++counters_.layer_down;
        ++r.downs;
      } else {
        ++counters_.layer_up;
        ++r.ups;
      }
      r.target = layer;
      r.layer_asked_ms = 0;
    }
    if (r.target != r.current && now.mono_ms - r.layer_asked_ms >= kLayerAskAgainMs) {
      if (Track* t = w.publisher->track_by_key(w.head->key, r.target)) {
        request_keyframe(*w.publisher, *t, now);
        r.layer_asked_ms = now.mono_ms;
      }
    }
  }
  for (std::size_t i = 0; i < n_svc; ++i) {
    SvcWant& w = svc[i];
    Route& r = *w.route;
    std::uint64_t allowed = left + w.floor_bps;
    std::uint8_t spatial = 0;
    std::uint8_t temporal = 0;
    std::uint64_t spent =
        choose_svc(*w.track, r.max_spatial, r.max_temporal, allowed, spatial, temporal);
    std::uint8_t ws = 0;
    std::uint8_t wt = 0;
    wanted_total += choose_svc(*w.track, r.max_spatial, r.max_temporal, ~std::uint64_t{0}, ws, wt);
    auto rank = [](std::uint8_t s, std::uint8_t t) { return s * 8 + t; };
    // What the route has now, counted in the layers the track has (kAllLayers: all of them).
    auto cur_s = std::min(r.spatial_target, w.track->svc_top_spatial);
    auto cur_t = std::min(r.temporal_target, w.track->svc_top_temporal);
    if (rank(spatial, temporal) > rank(cur_s, cur_t)) {
      // Up as for simulcast: with headroom (fits 4/5 of the budget), once the last fall held.
      std::uint8_t us = 0;
      std::uint8_t ut = 0;
      choose_svc(*w.track, r.max_spatial, r.max_temporal, allowed / 5 * 4, us, ut);
      bool up = rank(us, ut) > rank(cur_s, cur_t) &&
                (r.down_ms == 0 || now.mono_ms - r.down_ms >= kUpHoldMs);
      spatial = up ? us : cur_s;
      temporal = up ? ut : cur_t;
      std::uint8_t cs = 0;
      std::uint8_t ct = 0;
      spent = choose_svc(*w.track, spatial, temporal, ~std::uint64_t{0}, cs, ct);
    } else if (rank(spatial, temporal) < rank(cur_s, cur_t) && keep && !r.by_preference &&
               cur_s <= r.max_spatial && cur_t <= r.max_temporal) {
      spatial = cur_s;
      temporal = cur_t;
      std::uint8_t cs = 0;
      std::uint8_t ct = 0;
      spent = choose_svc(*w.track, spatial, temporal, ~std::uint64_t{0}, cs, ct);
      ++counters_.layer_down_kept;
    }
    held_back = held_back || rank(spatial, temporal) < rank(ws, wt);
    left -= std::min(left, spent > w.floor_bps ? spent - w.floor_bps : 0);
    if (rank(spatial, temporal) != rank(cur_s, cur_t)) {
      bool down = rank(spatial, temporal) < rank(cur_s, cur_t);
      if (down && !r.by_preference) {
        r.down_ms = now.mono_ms;
      }
      if (r.by_preference) {
        // Counted by route_layer as the subscriber's wish.
      } else if (down) {
        ++counters_.layer_down;
        ++counters_.svc_layer_down;
        ++r.downs;
        // Down because the link is losing packets (a queue overflowed before the estimate fell):
        // what was lost of the pictures before the switch is repaired late or not at all, and
        // the subscriber's decoder would wait for them until its own keyframe request (about
        // 3 s in libwebrtc). A keyframe now lets it go on from the lower layers at once.
        constexpr double kLossyDown = 0.1;
        if (sub.bwe && sub.bwe->stats().loss_fraction > kLossyDown &&
            now.mono_ms - r.repair_keyframe_ms >= 1000) {
          r.repair_keyframe_ms = now.mono_ms;
          ++counters_.repair_keyframes;
          request_keyframe(*w.publisher, *w.track, now);
        }
      } else {
        ++counters_.layer_up;
        ++counters_.svc_layer_up;
        ++r.ups;
      }
      r.spatial_target = spatial;
      r.temporal_target = temporal;
      r.layer_asked_ms = 0;
    }
    // A higher spatial layer starts only at a keyframe.
    if (r.spatial < r.spatial_target && r.spatial < w.track->svc_top_spatial &&
        now.mono_ms - r.layer_asked_ms >= kLayerAskAgainMs) {
      request_keyframe(*w.publisher, *w.track, now);
      r.layer_asked_ms = now.mono_ms;
    }
  }
  if (held_back) {
    probe(sub, wanted_total, now);
  }
  if (trace_ && sub.bwe && now.mono_ms - sub.traced_ms >= 1000) {
    // RINGLANE_SFU_TRACE: a line per subscriber and second, for tuning (never per packet).
    sub.traced_ms = now.mono_ms;
    BandwidthEstimatorStats st = sub.bwe->stats();
    std::fprintf(stderr,
                 "sfu trace %llu session %u estimate %llu delay %llu loss-based %llu acked %llu "
                 "usage %d loss %.3f rtt %lld probing %d probes %llu saturated %llu fixed %llu",
                 static_cast<unsigned long long>(now.mono_ms), sub.id.value,
                 static_cast<unsigned long long>(st.estimate_bps),
                 static_cast<unsigned long long>(st.delay_based_bps),
                 static_cast<unsigned long long>(st.loss_based_bps),
                 static_cast<unsigned long long>(st.acked_bps), static_cast<int>(st.usage),
                 st.loss_fraction, static_cast<long long>(st.rtt_us), sub.bwe->probing() ? 1 : 0,
                 static_cast<unsigned long long>(st.probes),
                 static_cast<unsigned long long>(st.probes_saturated),
                 static_cast<unsigned long long>(fixed));
    for (std::size_t i = 0; i < n; ++i) {
      std::fprintf(stderr, " | route %u current %d target %d", wants[i].route->ssrc,
                   wants[i].route->current, wants[i].route->target);
    }
    for (std::size_t i = 0; i < n_svc; ++i) {
      const Route& r = *svc[i].route;
      std::fprintf(stderr, " | svc route %u spatial %d target %d temporal %d target %d", r.ssrc,
                   r.spatial, r.spatial_target, r.temporal, r.temporal_target);
    }
    std::fprintf(stderr, "\n");
  }
}

// Dynacast of the spatial layers inside one stream (VP9 or AV1 SVC): those above what any
// route's subscriber wants (its `layer` wish or its tile's size) for kDynacastIdleMs are turned
// off at the publisher (the event's mask: the spatial layers to keep encoding; the client lowers
// its scalabilityMode), and on again at the next turn (each second) when a subscriber wants them.
// A route held lower by its bandwidth alone keeps them: its estimate may come back, and going up
// needs them flowing.
void Engine::svc_dynacast(Session& pub, Track& t, const Now& now) {
  std::uint8_t want = 0;
  for (const Route& r : t.routes) {
    if (!r.paused) {
      want = std::max(want, std::min(r.max_spatial, t.svc_spatial_seen));
    }
  }
  std::uint8_t on = t.svc_spatial_on == Track::kSvcAll ? t.svc_spatial_seen : t.svc_spatial_on;
  // Each spatial layer from when nobody wanted it; the top ones go while they stay unwanted.
  auto& since = t.svc_unwanted_since_ms;
  for (std::uint8_t l = 0; l < since.size(); ++l) {
    if (l <= want) {
      since[l] = 0;
    } else if (since[l] == 0) {
      since[l] = now.mono_ms;
    }
  }
  std::uint8_t next = on;
  while (next > want && now.mono_ms - since[next] >= kDynacastIdleMs) {
    --next;
  }
  if (want > on) {
    next = want;  // on again at once
  }
  if (next != on) {
    t.svc_spatial_on = next;
    auto mask = static_cast<std::uint8_t>((1u << (next + 1)) - 1);
    out_.event(shm::Event::kLayersActive, shm::encode(shm::LayersActive{pub.id, t.key, mask}));
    ++counters_.dynacast_changes;
  }
}

void Engine::dynacast(const Now& now) {
  for (auto& [id, sp] : sessions_) {
    Session& pub = *sp;
    for (auto& head : pub.tracks) {
      if (head.layers <= 1 && head.svc_layered && head.svc_spatial_seen > 0) {
        svc_dynacast(pub, head, now);
        continue;
      }
      if (head.layers <= 1 || head.layer != 0) {
        continue;
      }
      std::uint8_t used = 1;  // layer 0 stays on
      for (const Route& r : head.routes) {
        if (!r.paused) {
          used |= static_cast<std::uint8_t>(1u << r.target);
          if (r.current != Route::kNoLayer) {
            used |= static_cast<std::uint8_t>(1u << r.current);
          }
        }
      }
      bool changed = false;
      std::uint8_t on = 0;
      for (std::uint8_t l = 0; l < head.layers; ++l) {
        Track* t = pub.track_by_key(head.key, l);
        if (t == nullptr) {
          continue;
        }
        if ((used >> l) & 1u) {
          t->unused_since_ms = 0;
          changed = changed || t->dynacast_off;
          t->dynacast_off = false;
        } else if (t->unused_since_ms == 0) {
          t->unused_since_ms = now.mono_ms;
        } else if (!t->dynacast_off && t->ssrc != 0 &&
                   now.mono_ms - t->unused_since_ms >= kDynacastIdleMs) {
          t->dynacast_off = true;
          changed = true;
        }
        on |= t->dynacast_off ? 0 : static_cast<std::uint8_t>(1u << l);
      }
      if (changed) {
        out_.event(shm::Event::kLayersActive, shm::encode(shm::LayersActive{pub.id, head.key, on}));
        ++counters_.dynacast_changes;
      }
    }
  }
}

}  // namespace ringlane::sfu
