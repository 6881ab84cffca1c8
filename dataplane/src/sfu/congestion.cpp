// Congestion control at the SFU. Towards publishers: transport-wide feedback for what arrives,
// so the browser's own send-side estimator works. Towards subscribers: the SFU numbers its own
// packets, estimates each subscriber's bandwidth from that subscriber's feedback, and probes
// with padding before the layer allocation (layers.cpp) moves a route up.
#include <algorithm>
#include <cstring>

#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {

namespace {

// Probes: the first soon after a route is held back, then every kProbeEveryMs while the link
// takes them, backing off (doubling to kProbeBackoffMaxMs) while they find it full. The cap is
// low on purpose: a link that was full recovers (a cap lifted, a Wi-Fi that came back) and the
// next probe is what finds out; at 32 s a shaped browser took longer than a person waits.
constexpr std::uint64_t kProbeEveryMs = 2000;
constexpr std::uint64_t kProbeBackoffMaxMs = 6000;
// After a probe that found room, the next may start this soon (the next allocation): each probe
// asks at most twice the estimate, so a cap lifted after a long cap is climbed back in a few
// 300 ms probes back to back. At 500 ms between them the climb took 0.8 s more in three probes
// (SvcBandwidthTest.ALongCapLiftedClimbsBackProbeByProbe).
constexpr std::uint64_t kProbeAgainMs = 100;
// A probe asks for what the held-back layers need plus headroom, at most this many times the
// estimate (a blind jump far above it would only fill the queue). Going up needs the layer to
// fit 4/5 of the estimate (layers.cpp), i.e. 1.25x its cost, and a probe's result is what was
// measured of it, a few % under what it asked: at 1.3x one probe was rarely enough, and a wish
// for the top layer after seconds on the lowest took 2-3 s of probes (sfu_load --switch-every).
constexpr double kProbeHeadroom = 1.5;
constexpr std::uint64_t kProbeMaxFactor = 2;
// An estimate this much below the last allocation's re-allocates at once (down switches are
// not left to the 200 ms timer).
constexpr double kReallocateBelow = 0.9;
// RFC 3550 §5.1: the padding count is one octet.
constexpr std::size_t kMaxPadding = 255;
constexpr std::size_t kMaxPaddingPackets = 32;  // per call

}  // namespace

std::uint64_t Engine::estimate_bps(const Session& subscriber) const {
  return subscriber.bwe ? subscriber.bwe->estimate_bps() : ~std::uint64_t{0};
}

void Engine::on_transport_sent(Session& subscriber, std::uint16_t seq, std::size_t bytes,
                               bool probe) {
  if (subscriber.bwe) {
    subscriber.bwe->on_sent(seq, bytes, now_us_, probe);
  }
}

void Engine::on_transport_feedback(Session& subscriber, const rtcp::Feedback& fb, const Now& now) {
  auto tcc = rtcp::parse_transport_cc(fb);
  if (!tcc || !subscriber.bwe) {
    return;
  }
  ++counters_.twcc_received;
  subscriber.bwe->on_feedback(*tcc, now.us());
  std::uint64_t estimate = subscriber.bwe->estimate_bps();
  if (static_cast<double>(estimate) <
      kReallocateBelow * static_cast<double>(subscriber.allocated_estimate_bps)) {
    allocate(subscriber, now);
  }
}

void Engine::probe(Session& subscriber, std::uint64_t target_bps, const Now& now) {
  BandwidthEstimator* bwe = subscriber.bwe.get();
  if (bwe == nullptr || bwe->probing()) {
    return;
  }
  BandwidthEstimatorStats st = bwe->stats();
  if (st.probes != subscriber.probes_seen) {
    // The last probe has concluded: back off when it found the link full. One that found room
    // is followed kProbeAgainMs later, not after the backoff the full ones before it set: a cap
    // just lifted is climbed probe by probe (each at most doubles the estimate), as libwebrtc's
    // probe controller probes further at once while its probes succeed.
    subscriber.probes_seen = st.probes;
    subscriber.probe_interval_ms =
        st.last_probe_saturated
            ? std::min(kProbeBackoffMaxMs,
                       std::max(kProbeEveryMs, subscriber.probe_interval_ms * 2))
            : kProbeEveryMs;
    if (!st.last_probe_saturated) {
      subscriber.next_probe_ms = std::min(subscriber.next_probe_ms, now.mono_ms + kProbeAgainMs);
    }
  }
  if (now.mono_ms < subscriber.next_probe_ms) {
    return;
  }
  std::uint64_t estimate = bwe->estimate_bps();
  auto target = static_cast<std::uint64_t>(static_cast<double>(target_bps) * kProbeHeadroom);
  target = std::min(target, estimate * kProbeMaxFactor);
  if (target <= estimate) {
    return;
  }
  bool has_rtx = false;
  for (const Subscription& x : subscriber.subscriptions) {
    has_rtx = has_rtx || x.rtx_ssrc != 0;
  }
  if (!has_rtx || !bwe->start_probe(target, now.us())) {
    return;  // padding goes on an RTX stream, so the subscriber's media numbering is untouched
  }
  ++counters_.probes;
  subscriber.next_probe_ms = now.mono_ms + std::max(kProbeEveryMs, subscriber.probe_interval_ms);
  if (std::find(probing_.begin(), probing_.end(), subscriber.id) == probing_.end()) {
    probing_.push_back(subscriber.id);
  }
  send_padding(subscriber, now);
}

void Engine::pad_probes(const Now& now) {
  last_padding_us_ = now.us();
  std::erase_if(probing_, [&](shm::SessionId id) {
    Session* s = find(id);
    return s == nullptr || !send_padding(*s, now);
  });
}

// RFC 4588 §4 with RFC 3550 §5.1 padding: an RTX packet with no payload and 255 bytes of padding,
// numbered on the transport like everything else, so the subscriber's feedback measures it.
bool Engine::send_padding(Session& sub, const Now& now) {
  if (!sub.bwe || !sub.bwe->probing() || !sub.connected() || sub.transport_cc_out == 0) {
    return false;
  }
  std::size_t due = sub.bwe->padding_due(now.us());
  if (due == 0) {
    return true;  // the probe waits for its feedback
  }
  Route* route = nullptr;
  for (const Subscription& x : sub.subscriptions) {
    Session* pub = x.rtx_ssrc != 0 ? find(x.publisher) : nullptr;
    Track* head = pub != nullptr ? pub->track_by_key(x.publisher_ssrc) : nullptr;
    route = head != nullptr ? head->route(sub, x.ssrc) : nullptr;
    if (route != nullptr && route->rtx_ssrc != 0) {
      break;
    }
    route = nullptr;
  }
  if (route == nullptr) {
    return false;
  }
  for (std::size_t sent = 0; due > 0 && sent < kMaxPaddingPackets; ++sent) {
    PacketBuffer pkt;
    auto id = out_.acquire(pkt);
    if (!id) {
      counters_.drop(Drop::kTxExhausted);
      break;
    }
    std::uint8_t* d = pkt.data();
    constexpr std::size_t kHeader = 12 + 8;  // fixed header, one-word extension block
    d[0] = 0xB0;                             // V=2, P=1, X=1
    d[1] = route->rtx_payload_type & 0x7F;
    store_be16(d + 2, route->rtx_sequence++);
    store_be32(d + 4, route->last_timestamp);
    store_be32(d + 8, route->rtx_ssrc);
    store_be16(d + 12, 0xBEDE);  // RFC 8285 §4.2
    store_be16(d + 14, 1);
    std::uint16_t seq = sub.transport_cc_next++;
    d[16] = static_cast<std::uint8_t>((sub.transport_cc_out << 4) | 1);
    store_be16(d + 17, seq);
    d[19] = 0;
    std::memset(d + kHeader, 0, kMaxPadding - 1);
    d[kHeader + kMaxPadding - 1] = static_cast<std::uint8_t>(kMaxPadding);
    auto n = sub.srtp_out->protect_rtp(MutableBytes(d, pkt.capacity - pkt.offset),
                                       kHeader + kMaxPadding);
    if (!n) {
      out_.release(*id);
      break;
    }
    pkt.length = static_cast<std::uint32_t>(*n);
    sub.bwe->on_sent(seq, pkt.length, now.us(), true);
    out_.send(sub.socket, sub.remote, pkt, *id);
    ++counters_.padding_sent;
    due = due > pkt.length ? due - pkt.length : 0;
  }
  return true;
}

// Everything recorded since the last feedback, in as many feedbacks as it takes (called on the
// 50 ms timer: libwebrtc's receivers answer every 50-100 ms too).
void Engine::send_transport_feedback(Session& publisher) {
  if (!publisher.twcc_in) {
    return;
  }
  // The media SSRC of transport feedback names no stream in particular (receivers ignore it);
  // the first stream the session sends, as libwebrtc does.
  std::uint32_t media = 0;
  for (const auto& t : publisher.tracks) {
    if (t.ssrc != 0) {
      media = t.ssrc;
      break;
    }
  }
  for (int i = 0; i < 8 && publisher.twcc_in->pending(); ++i) {
    PacketBuffer pkt;
    auto id = out_.acquire(pkt);
    if (!id) {
      counters_.drop(Drop::kTxExhausted);
      return;
    }
    // Room for the SRTCP trailer (index and tag) after the feedback.
    std::size_t room =
        std::min<std::size_t>(pkt.capacity - pkt.offset - 32, TwccRecorder::kMaxFeedbackSize);
    pkt.length = static_cast<std::uint32_t>(publisher.twcc_in->build_feedback(
        MutableBytes(pkt.data(), room), publisher.report_ssrc, media));
    if (pkt.length == 0) {
      out_.release(*id);
      return;
    }
    send_rtcp(publisher, pkt, *id);
    ++counters_.twcc_sent;
  }
}

// Every layer's received bitrate over the last window, for the allocation.
void Engine::measure_layers(const Now& now) {
  std::uint64_t elapsed = now.mono_ms - last_measure_ms_;
  last_measure_ms_ = now.mono_ms;
  if (elapsed == 0) {
    return;
  }
  for (auto& [id, sp] : sessions_) {
    for (auto& t : sp->tracks) {
      // Smoothed over a few windows: a keyframe (several times a delta frame's size) must not
      // look like a layer that no longer fits and move subscribers down for a moment.
      std::uint64_t now_bps = t.window_bytes * 8 * 1000 / elapsed;
      t.bitrate_bps =
          now_bps == 0 || t.bitrate_bps == 0 ? now_bps : (3 * t.bitrate_bps + now_bps) / 4;
      t.window_bytes = 0;
      if (t.bitrate_bps != 0) {
        t.flowing_bps = t.bitrate_bps;
      }
      if (t.svc_layered) {
        // The layers inside the stream, smoothed the same way; the highest that sent anything.
        t.svc_top_spatial = 0;
        t.svc_top_temporal = 0;
        for (std::size_t i = 0; i < t.svc_window_bytes.size(); ++i) {
          std::uint64_t bps = t.svc_window_bytes[i] * 8 * 1000 / elapsed;
          std::uint64_t& rate = t.svc_bitrate_bps[i];
          rate = bps == 0 || rate == 0 ? bps : (3 * rate + bps) / 4;
          t.svc_window_bytes[i] = 0;
          if (rate != 0) {
            t.svc_top_spatial =
                std::max(t.svc_top_spatial, static_cast<std::uint8_t>(i / Track::kSvcLayers));
            t.svc_top_temporal =
                std::max(t.svc_top_temporal, static_cast<std::uint8_t>(i % Track::kSvcLayers));
          }
        }
        t.svc_spatial_seen = std::max(t.svc_spatial_seen, t.svc_top_spatial);
      }
    }
  }
}

}  // namespace ringlane::sfu
