// RTCP at the SFU: sender reports passed to subscribers under the SSRC they see, keyframe
// requests from subscribers to the publisher (throttled per track), NACKs passed upstream, and
// the SFU's own receiver reports to publishers (with REMB to those without transport-cc).
#include <algorithm>
#include <array>
#include <cstring>

#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {

std::optional<std::size_t> Engine::unprotect(Session& s, PacketBuffer& pkt, bool rtcp) {
  if (!s.srtp_in) {
    counters_.drop(Drop::kSrtpNotReady);
    return std::nullopt;
  }
  const crypto::SrtpCounters before = s.srtp_in->counters();
  MutableBytes room(pkt.data(), pkt.capacity - pkt.offset);
  auto length = rtcp ? s.srtp_in->unprotect_rtcp(room, pkt.length)
                     : s.srtp_in->unprotect_rtp(room, pkt.length);
  if (!length) {
    const crypto::SrtpCounters& after = s.srtp_in->counters();
    counters_.drop(after.auth_failures != before.auth_failures       ? Drop::kSrtpAuth
                   : after.replay_failures != before.replay_failures ? Drop::kSrtpReplay
                                                                     : Drop::kSrtpOther);
  }
  return length;
}

template <typename Build>
bool Engine::send_new_rtcp(Session& s, Build&& build) {
  PacketBuffer pkt;
  auto id = out_.acquire(pkt);
  if (!id) {
    counters_.drop(Drop::kTxExhausted);
    return false;
  }
  pkt.length =
      static_cast<std::uint32_t>(build(MutableBytes(pkt.data(), pkt.capacity - pkt.offset)));
  send_rtcp(s, pkt, *id);
  return true;
}

void Engine::on_rtcp(Session& s, PacketBuffer& pkt, const Now& now) {
  auto length = unprotect(s, pkt, true);
  if (!length) {
    return;
  }
  auto compound = rtcp::Compound::parse(Bytes(pkt.data(), *length));
  if (!compound) {
    counters_.drop(Drop::kRtcpMalformed);
    return;
  }
  ++counters_.rtcp_in;
  for (const rtcp::Packet& p : compound->packets()) {
    if (p.type == rtcp::kSr) {
      auto sr = rtcp::parse_sr(p);
      bool rtx = false;
      Track* t = sr ? s.track(sr->ssrc, rtx) : nullptr;
      if (t != nullptr && !rtx) {
        t->received.on_sender_report(sr->ntp, now.mono_ms);
        forward_sender_report(s, p.bytes);
      }
    } else if (p.type == rtcp::kRtpfb || p.type == rtcp::kPsfb) {
      on_feedback(s, p.bytes, now);
    } else if (p.type == rtcp::kRr) {
      on_receiver_report(s, p);
    }
    // SDES, BYE, APP from a peer need nothing from the SFU.
  }
}

// A subscriber's receiver report: its loss and jitter per stream it receives, for the route's
// report (RFC 3550 §6.4.1). A block for an SSRC it does not receive is ignored.
void Engine::on_receiver_report(Session& subscriber, const rtcp::Packet& p) {
  auto rr = rtcp::parse_rr(p);
  if (!rr) {
    return;
  }
  for (const rtcp::ReportBlock& b : rr->blocks) {
    const Subscription* x = subscriber.subscription(b.ssrc);
    Session* pub = x != nullptr ? find(x->publisher) : nullptr;
    Track* head = pub != nullptr ? pub->track_by_key(x->publisher_ssrc) : nullptr;
    if (Route* r = head != nullptr ? head->route(subscriber, x->ssrc) : nullptr) {
      r->fraction_lost = b.fraction_lost;
      r->jitter = b.jitter;
    }
  }
}

// RFC 3550 §6.4.1: the sender info (NTP and RTP time of one instant, counts) without the
// publisher's report blocks, under the SSRC the subscriber sees. Timestamps are forwarded
// unchanged, so the publisher's NTP/RTP mapping holds for the subscriber: lip sync keeps.
void Engine::forward_sender_report(Session& publisher, Bytes sr) {
  constexpr std::size_t kSenderInfo = 28;
  if (sr.size() < kSenderInfo) {
    return;
  }
  bool rtx = false;
  Track* t = publisher.track(load_be32(sr.data() + 4), rtx);
  Track* head = t != nullptr && t->layers > 1 ? publisher.track_by_key(t->key) : t;
  if (head == nullptr) {
    return;
  }
  for (const Route& r : head->routes) {
    // A simulcast subscriber hears of the layer it receives, renumbered as its packets are.
    if (!r.subscriber->connected() || (head->layers > 1 && r.current != t->layer)) {
      continue;
    }
    PacketBuffer pkt;
    auto id = out_.acquire(pkt);
    if (!id) {
      counters_.drop(Drop::kTxExhausted);
      continue;
    }
    std::uint8_t* d = pkt.data();
    std::memcpy(d, sr.data(), kSenderInfo);
    d[0] = 0x80;  // V=2, no padding, no report blocks
    store_be16(d + 2, kSenderInfo / 4 - 1);
    store_be32(d + 4, r.ssrc);
    store_be32(d + 16, load_be32(d + 16) + r.renumber.timestamp);
    pkt.length = kSenderInfo;
    ++counters_.sr_forwarded;
    send_rtcp(*r.subscriber, pkt, *id);
  }
}

void Engine::on_feedback(Session& subscriber, Bytes packet, const Now& now) {
  rtcp::Packet p;
  if (packet.size() < 12) {
    return;
  }
  p.count = packet[0] & 0x1F;
  p.type = packet[1];
  p.bytes = packet;
  auto fb = rtcp::parse_feedback(p);
  if (!fb) {
    return;
  }
  if (p.type == rtcp::kRtpfb && fb->fmt == rtcp::kFmtTwcc) {
    // About the subscriber's transport, not one track: its media SSRC may name any of them.
    on_transport_feedback(subscriber, *fb, now);
    return;
  }
  // FIR names its SSRCs in the FCI; PLI and NACK in the media SSRC field.
  std::uint32_t media = fb->media_ssrc;
  if (p.type == rtcp::kPsfb && fb->fmt == rtcp::kFmtFir && fb->fci.size() >= 8) {
    media = load_be32(fb->fci.data());
  }
  const Subscription* x = subscriber.subscription(media);
  Session* pub = x != nullptr ? find(x->publisher) : nullptr;
  Track* t = pub != nullptr ? pub->track_by_key(x->publisher_ssrc) : nullptr;
  if (t == nullptr) {
    return;
  }
  if (p.type == rtcp::kPsfb && (fb->fmt == rtcp::kFmtPli || fb->fmt == rtcp::kFmtFir)) {
    ++counters_.pli_received;
    request_keyframe(*pub, layer_for(*pub, *t, subscriber, x->ssrc), now);
  } else if (p.type == rtcp::kRtpfb && fb->fmt == rtcp::kFmtNack) {
    ++counters_.nack_received;
    if (auto lost = rtcp::parse_nack(*fb)) {
      on_nack(subscriber, *pub, *t, media, *lost, now);
    }
  }
}

// Answers a subscriber's NACK from the store (as RTX when that subscriber negotiated it, RFC
// 4588; the packet itself otherwise). What is no longer kept is asked of the publisher.
void Engine::on_nack(Session& subscriber, Session& publisher, Track& track,
                     std::uint32_t media_ssrc, std::span<const std::uint16_t> lost,
                     const Now& now) {
  Route* route = track.route(subscriber, media_ssrc);
  if (route == nullptr || !subscriber.connected()) {
    return;
  }
  bool vp8 = track.codec == shm::Codec::kVp8;
  Track* upstream = nullptr;  // the layer the store's misses are asked of
  // One NACK may name thousands of packets (296 FCI entries of 17 in a 1,200-byte packet): a
  // subscriber could make the worker resend its whole store. Each sequence number counts once,
  // and at most kMaxResendPerNack of them are resent; the rest count as missed.
  constexpr std::size_t kMaxResendPerNack = 64;
  // A browser NACKs a packet again after about an RTT without it; a resend younger than this is
  // probably on its way, so it is not sent twice (libwebrtc guards its own resends the same way).
  constexpr std::uint64_t kResendGuardMs = 100;
  std::array<std::uint16_t, kMaxResendPerNack> done;
  std::size_t n = 0;
  // What the store no longer has, asked of the publisher (RFC 4585 §6.2.1), at most one NACK's
  // worth: the retransmission comes back through on_rtp and reaches every subscriber.
  std::array<std::uint16_t, 32> missed;
  std::size_t n_missed = 0;
  bool expired = false;  // a packet named is past repair: too old to resend, or not known
  for (std::uint16_t seq : lost) {
    if (std::find(done.begin(), done.begin() + static_cast<std::ptrdiff_t>(n), seq) !=
        done.begin() + static_cast<std::ptrdiff_t>(n)) {
      continue;
    }
    if (n == done.size()) {
      ++counters_.retransmit_missed;
      continue;
    }
    done[n++] = seq;
    if (route->resent_recently(seq, now.mono_ms, kResendGuardMs)) {
      ++counters_.retransmit_throttled;
      continue;
    }
    // Simulcast: the subscriber names packets as it numbered them; each came from the layer it
    // was on then (the one before the last switch, or the current one), renumbered by its
    // offsets then.
    Track* source = &track;
    const Renumber* renumber = &route->renumber;
    if (track.layers > 1) {
      bool before = static_cast<std::uint16_t>(seq - route->switched_at) >= 0x8000;
      // Two switches ago or more: no longer known which layer it was, so it is not resent (a
      // packet of another layer under its number would break the decoder).
      bool older = before && (route->previous == Route::kNoLayer ||
                              static_cast<std::uint16_t>(seq - route->previous_from) >= 0x8000);
      std::uint8_t layer = older ? Route::kNoLayer : before ? route->previous : route->current;
      renumber = before ? &route->previous_renumber : &route->renumber;
      source = layer == Route::kNoLayer ? nullptr : publisher.track_by_key(track.key, layer);
      if (source == nullptr) {
        // Past repair as a packet too old to resend: the decoder gets a keyframe instead of
        // waiting for it until its own request (seconds, across a congested link).
        ++counters_.retransmit_missed;
        expired = true;
        continue;
      }
    }
    // Numbered as it was sent: the packets dropped since (temporal and spatial layers above the
    // route's) moved the numbering on. Older than the numbering history (many drops since): the
    // packet is not known, and another one under its number would break the decoder, so it is
    // past repair.
    if (!route->renumber_known(seq)) {
      ++counters_.retransmit_missed;
      expired = true;
      continue;
    }
    renumber = &route->renumber_at(seq, *renumber);
    auto original = static_cast<std::uint16_t>(seq - renumber->sequence);
    auto kept = source != nullptr && source->cache
                    ? store_->find(source->token, *source->cache, original, now.mono_ms,
                                   config_.retransmit_max_age_ms)
                    : std::nullopt;
    // The store keeps packets on_rtp validated; parse() only finds the fields again.
    auto view = kept ? rtp::RtpPacket::parse(
                           MutableBytes(const_cast<std::uint8_t*>(kept->data()), kept->size()))
                     : std::nullopt;
    if (view && send_copy(*route, *view, route->rtx_ssrc != 0, *renumber, vp8)) {
      ++counters_.retransmitted;
      route->resent(seq, now.mono_ms);
    } else {
      ++counters_.retransmit_missed;
      if (!kept && source != nullptr && source->cache &&
          store_->find(source->token, *source->cache, original, now.mono_ms, ~std::uint64_t{0})) {
        expired = true;
      }
      if (source != nullptr && source->ssrc != 0 && (upstream == nullptr || upstream == source) &&
          n_missed < missed.size()) {
        upstream = source;
        missed[n_missed++] = original;
      }
    }
  }
  // The SFU had the packet but it is past resending (a congested link delayed the NACK and the
  // resends), or no longer knows which it was: the subscriber's decoder would wait for it until
  // its own keyframe request (about 3 s in libwebrtc), so it gets a keyframe now, at most once
  // per kRepairKeyframeMs.
  constexpr std::uint64_t kRepairKeyframeMs = 1000;
  if (expired && now.mono_ms - route->repair_keyframe_ms >= kRepairKeyframeMs) {
    route->repair_keyframe_ms = now.mono_ms;
    ++counters_.repair_keyframes;
    request_keyframe(publisher, layer_for(publisher, track, subscriber, route->ssrc), now);
  }
  if (n_missed == 0 || upstream == nullptr || !publisher.connected()) {
    return;
  }
  if (send_new_rtcp(publisher, [&](MutableBytes out) {
        return rtcp::build_nack(out, publisher.report_ssrc, upstream->ssrc,
                                std::span(missed.data(), n_missed));
      })) {
    ++counters_.nack_forwarded;
  }
}

void Engine::nack_upstream(Session& publisher, Track& track, std::uint16_t from, std::uint16_t to) {
  if (!publisher.connected()) {
    return;
  }
  std::array<std::uint16_t, 32> lost;
  std::size_t n = 0;
  for (std::uint16_t seq = from; n < lost.size(); ++seq) {
    lost[n++] = seq;
    if (seq == to) {
      break;
    }
  }
  if (send_new_rtcp(publisher, [&](MutableBytes out) {
        return rtcp::build_nack(out, publisher.report_ssrc, track.ssrc, std::span(lost.data(), n));
      })) {
    ++counters_.upstream_nacks;
  }
}

void Engine::request_keyframe(Session& publisher, Track& track, const Now& now) {
  if (track.kind != shm::MediaKind::kVideo) {
    return;
  }
  if (!publisher.connected() || track.ssrc == 0) {
    track.keyframe_requested = true;  // sent once its keys are up, or its layer's SSRC known
    return;
  }
  if (track.last_keyframe_request_ms != 0 &&
      now.mono_ms - track.last_keyframe_request_ms < config_.keyframe_interval_ms) {
    // Held back, not lost: one request goes out when the interval is over (Engine::on_timer),
    // for all that came meanwhile. A subscriber switching layers would otherwise wait for the
    // layer's next request (kLayerAskAgainMs) or its periodic keyframe.
    ++counters_.pli_throttled;
    track.keyframe_requested = true;
    publisher.keyframe_owed = true;
    return;
  }
  if (send_new_rtcp(publisher, [&](MutableBytes out) {
        return rtcp::build_pli(out, publisher.report_ssrc, track.ssrc);
      })) {
    track.last_keyframe_request_ms = now.mono_ms;
    track.keyframe_requested = false;
    ++counters_.pli_sent;
  }
}

void Engine::send_receiver_reports(Session& publisher, const Now& now) {
  std::array<rtcp::ReportBlock, 16> blocks;
  std::size_t n = 0;
  for (auto& t : publisher.tracks) {
    if (t.ssrc != 0 && t.received.started() && n < blocks.size()) {
      blocks[n++] = t.received.report(t.ssrc, now.mono_ms);
    }
  }
  if (n == 0) {
    return;
  }
  if (send_new_rtcp(publisher, [&](MutableBytes out) {
        return rtcp::build_rr(out, publisher.report_ssrc, std::span(blocks.data(), n));
      })) {
    ++counters_.rr_sent;
  }
  if (!publisher.remb) {
    return;  // never to a transport-cc publisher (add_track): it estimates on its own
  }
  // REMB (draft-alvestrand-rmcat-remb §2.2) for every stream of the publisher, from what arrived
  // of all of them and the worst loss of the interval just reported (remb_estimate.hpp).
  std::uint64_t incoming = 0;
  std::uint8_t lost = 0;
  std::array<std::uint32_t, 16> ssrcs;
  std::size_t k = 0;
  for (const auto& t : publisher.tracks) {
    incoming += t.bitrate_bps;
    if (t.ssrc != 0 && k < ssrcs.size()) {
      ssrcs[k++] = t.ssrc;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    lost = std::max(lost, blocks[i].fraction_lost);
  }
  std::uint64_t estimate = publisher.remb_estimate.update(incoming, lost);
  if (send_new_rtcp(publisher, [&](MutableBytes out) {
        return rtcp::build_remb(out, publisher.report_ssrc, estimate, std::span(ssrcs.data(), k));
      })) {
    ++counters_.remb_sent;
  }
}

void Engine::send_rtcp(Session& s, PacketBuffer& pkt, io::BufferId id) {
  if (pkt.length == 0 || !s.srtp_out) {
    out_.release(id);
    return;
  }
  auto n =
      s.srtp_out->protect_rtcp(MutableBytes(pkt.data(), pkt.capacity - pkt.offset), pkt.length);
  if (!n) {
    out_.release(id);
    return;
  }
  pkt.length = static_cast<std::uint32_t>(*n);
  out_.send(s.socket, s.remote, pkt, id);
}

}  // namespace ringlane::sfu
