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

  void on_rtp(Participant& p, const People& people, std::span<std::uint8_t> plain,
              std::uint64_t now) {
    auto rtp = ringlane::rtp::RtpPacket::parse(plain);
    if (!rtp) {
      ++p.malformed;
      return;
    }
    auto it = p.streams.find(rtp->ssrc());
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
    auto meta = read_payload(rtp->payload());
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
    if (!header_ok) {
      ++p.header_mismatches;
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
};

}  // namespace sfu_load
