#pragma once
// What a subscriber checks in each RTP packet it receives: the SSRC is one it was offered (or,
// over WHEP, one its publisher's payload names), the payload is intact and its publisher and
// kind are the stream's, the sequence number is the publisher's, the marker, payload type and
// audio level are as sent; then continuity per stream and, for packets sent inside the measured
// window, the end-to-end latency.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sfu_load/media.hpp"
#include "sfu_load/participant.hpp"
#include "sfu_load/report.hpp"

namespace sfu_load {

using People = std::vector<std::unique_ptr<Participant>>;

struct Receiver {
  std::uint64_t window_start = 0;           // 0 until the window opens
  std::uint64_t window_stop = 0;            // 0 while it is open
  std::array<LatencyHistogram, 2> latency;  // by Kind
  std::uint64_t integrity_failures = 0;
  // The server rewrites sequence numbers (Janus): the RTP sequence need not be the payload's
  // counter, only keep a fixed distance to it (changes are counted, loss is still exact).
  bool own_sequence_numbers = false;
  // --simulcast: video carries a VP8 prefix and comes from one of the publisher's encodings
  // (the server rewrites sequence numbers across its switches).
  bool simulcast = false;

  void on_rtp(Participant& p, const People& people, std::span<std::uint8_t> plain,
              std::uint64_t now) {
    auto rtp = ringlane::rtp::RtpPacket::parse(plain);
    if (!rtp) {
      ++p.malformed;
      return;
    }
    if (p.twcc) {
      auto tw = p.twcc_id != 0 ? rtp->extension(p.twcc_id) : std::nullopt;
      if (tw && tw->size() == 2) {
        p.twcc->on_packet(ringlane::load_be16(tw->data()), static_cast<std::int64_t>(now / 1000));
      }
    }
    auto it = p.streams.find(rtp->ssrc());
    if (it == p.streams.end() && simulcast &&
        std::find(p.rtx_ssrcs.begin(), p.rtx_ssrcs.end(), rtp->ssrc()) != p.rtx_ssrcs.end()) {
      // The server's RTX stream (RFC 4588): probes (padding only) and retransmissions.
      ++(rtp->payload().empty() ? p.padding_received : p.rtx_received);
      return;
    }
    if (it == p.streams.end() && (p.whep || p.janus)) {
      // A WHEP server need not say its SSRCs (a=ssrc is optional): the payload says whose it is.
      auto m = read_payload(rtp->payload());
      if (m && std::find(p.sources.begin(), p.sources.end(), m->sender) != p.sources.end()) {
        ReceivedStream r;
        r.publisher = m->sender;
        r.video = m->kind == Kind::kVideo;
        r.payload_type = rtp->payload_type();
        r.audio_level_id = p.janus ? 0 : kAudioLevelId;  // Janus's id is in the offer, not here
        it = p.streams.emplace(rtp->ssrc(), std::move(r)).first;
      }
    }
    if (it == p.streams.end()) {
      ++p.unknown_ssrc;
      return;
    }
    ReceivedStream& s = it->second;
    ringlane::Bytes payload = rtp->payload();
    std::optional<Vp8Prefix> vp8;
    if (simulcast && s.video) {
      vp8 = read_vp8_prefix(payload);
      payload = vp8 ? payload.subspan(vp8->size) : ringlane::Bytes();
    }
    auto meta = read_payload(payload);
    Kind kind = s.video ? Kind::kVideo : Kind::kAudio;
    if (!meta || meta->sender != s.publisher || meta->kind != kind ||
        (!own_sequence_numbers && (meta->seq & 0xFFFF) != rtp->sequence())) {
      ++s.integrity_failures;
      ++integrity_failures;
      return;
    }
    if (own_sequence_numbers) {
      auto offset = static_cast<std::uint16_t>(rtp->sequence() - meta->seq);
      if (s.any && offset != s.seq_offset) {
        ++s.seq_offset_changes;
      }
      s.seq_offset = offset;
    }
    bool header_ok =
        rtp->payload_type() == s.payload_type && rtp->marker() == ((meta->flags & 1) != 0);
    if (kind == Kind::kAudio && s.audio_level_id != 0) {
      auto level = rtp->extension(s.audio_level_id);
      header_ok = header_ok && level && level->size() == 1 && (*level)[0] == (0x80 | 30);
    }
    unsigned layer = kLayers - 1;
    if (vp8) {
      // The prefix says keyframe exactly when the payload does (on a frame's first packet).
      layer = std::min<unsigned>(layer_of(*meta), kLayers - 1);
      header_ok = header_ok && (!vp8->start || vp8->key == ((meta->flags & kFlagKey) != 0));
      ++p.layer_packets[layer];
      on_layer(p, rtp->ssrc(), layer, vp8->start && vp8->key, now);
    }
    if (!header_ok) {
      ++p.header_mismatches;
    }
    if (layer + 1 != kLayers) {
      return;  // counted above; loss and latency are the top layer's
    }
    const Outgoing& origin = people[meta->sender]->out[static_cast<int>(kind)];
    bool first = !s.any;
    s.on_packet(meta->seq - origin.initial);
    if (first && s.any) {
      ++p.flowing_streams;
    }
    if (window_start != 0 && meta->sent_ns >= window_start &&
        (window_stop == 0 || meta->sent_ns <= window_stop) && now >= meta->sent_ns) {
      latency[static_cast<int>(kind)].add((now - meta->sent_ns) / 1000);
    }
  }

  // A packet of `layer` on a simulcast stream: the end of a switch that was asked for it.
  static void on_layer(Participant& p, std::uint32_t ssrc, unsigned layer, bool keyframe_start,
                       std::uint64_t now) {
    for (LayerSwitch& w : p.switches) {
      if (w.ssrc == ssrc) {
        if (w.asked_ns != 0 && layer == w.asked) {
          p.switch_ms[w.asked == 0 ? 0 : 1].push_back(static_cast<double>(now - w.asked_ns) / 1e6);
          p.switch_not_at_keyframe += keyframe_start ? 0 : 1;
          w.asked_ns = 0;
        }
        w.current = static_cast<std::uint8_t>(layer);
      }
    }
  }
};

}  // namespace sfu_load
