// Forwarding: a publisher's SRTP is decrypted once, in place in the receive buffer; every
// subscriber gets a copy in a transmit buffer, renumbered to what it negotiated (SSRC, payload
// type, header extension ids) and protected with its own keys. No allocation, lock or log line
// per packet; all the copies of one receive batch leave in the backend's one submit. Video
// packets are also kept (retransmit_store.hpp) to answer NACKs.
#include <algorithm>
#include <array>
#include <cstring>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/red.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "session.hpp"

namespace ringlane::sfu {
namespace {

// Rewrites the ids of an RFC 8285 header extension block in place. An element the subscriber
// did not negotiate becomes padding (zero bytes, which receivers skip: §4.2, §4.3), so the
// packet keeps its length and nothing moves.
void rewrite_extension_ids(std::uint8_t* block, std::size_t length, std::uint16_t profile,
                           const std::array<std::uint8_t, shm::kExtensionMap>& map) {
  std::size_t i = 0;
  if (profile == rtp::RtpPacket::kOneByteProfile) {
    while (i < length) {
      std::uint8_t b = block[i];
      if (b == 0) {
        ++i;
        continue;
      }
      std::uint8_t id = b >> 4;
      std::size_t len = (b & 0x0F) + 1u;
      if (id == 15 || i + 1 + len > length) {
        return;  // §4.2: id 15 ends the block
      }
      std::uint8_t to = map[id];
      if (to == 0) {
        std::memset(block + i, 0, 1 + len);
      } else {
        block[i] = static_cast<std::uint8_t>((to << 4) | (b & 0x0F));
      }
      i += 1 + len;
    }
  } else if ((profile & rtp::RtpPacket::kTwoByteProfileMask) == rtp::RtpPacket::kTwoByteProfile) {
    while (i < length) {
      std::uint8_t id = block[i];
      if (id == 0) {
        ++i;
        continue;
      }
      if (i + 2 > length || i + 2 + block[i + 1] > length) {
        return;
      }
      std::size_t len = block[i + 1];
      std::uint8_t to = id < map.size() ? map[id] : 0;
      if (to == 0) {
        std::memset(block + i, 0, 2 + len);
      } else {
        block[i] = to;
      }
      i += 2 + len;
    }
  }
}

// RFC 4588 §4: an RTX packet carries the original sequence number (OSN) in front of the
// original payload. Turns one back into the original packet, in place; false when it carries
// no media (a padding-only probe).
bool unwrap_rtx(rtp::RtpPacket& p, std::span<std::uint8_t>& rtp, const Track& t) {
  MutableBytes payload = p.payload();
  if (payload.size() <= 2) {
    return false;
  }
  std::uint16_t osn = load_be16(payload.data());
  std::size_t header = p.header_size();
  std::size_t rest = payload.size() - 2;
  std::memmove(rtp.data() + header, payload.data() + 2, rest);
  rtp = rtp.first(header + rest);
  rtp[0] = static_cast<std::uint8_t>(rtp[0] & ~0x20);  // the padding is gone
  rtp[1] = static_cast<std::uint8_t>((rtp[1] & 0x80) | t.payload_type);
  store_be16(rtp.data() + 2, osn);
  store_be32(rtp.data() + 8, t.ssrc);
  return true;
}

}  // namespace

void Engine::on_rtp(Session& s, PacketBuffer& pkt, const Now& now) {
  auto length = unprotect(s, pkt, false);
  if (!length) {
    return;
  }
  std::span<std::uint8_t> bytes(pkt.data(), *length);
  auto rtp = rtp::RtpPacket::parse(bytes);
  if (!rtp) {
    counters_.drop(Drop::kRtpMalformed);
    return;
  }
  ++counters_.rtp_in;
  if (s.transport_cc_in != 0) {
    // Only now: an arrival counts once SRTP has authenticated the header it is read from. Every
    // packet that arrived is reported, also one dropped below (it still crossed the link).
    if (auto ext = rtp->extension(s.transport_cc_in); ext && ext->size() == 2) {
      if (!s.twcc_in) {
        s.twcc_in = std::make_unique<TwccRecorder>();
      }
      s.twcc_in->on_packet(load_be16(ext->data()), now.us());
    }
  }
  bool rtx = false;
  Track* t = s.track(rtp->ssrc(), rtx);
  if (t == nullptr) {
    t = learn_layer(s, *rtp, rtx, now);
  }
  if (t == nullptr) {
    counters_.drop(Drop::kUnknownSsrc);
    return;
  }
  t->window_bytes += *length;
  if (s.audio_level_extension != 0 && t->kind == shm::MediaKind::kAudio) {
    // RFC 6464 §3: |V| level |, the level in -dBov (127: silence).
    if (auto ext = rtp->extension(s.audio_level_extension); ext && !ext->empty()) {
      t->loudness_peak = std::max<std::uint8_t>(
          t->loudness_peak, static_cast<std::uint8_t>(127 - ((*ext)[0] & 0x7F)));
    }
  }
  // The source was sending when its previous packet came less than a freeze ago (forward()).
  t->previous_packet_ms = t->last_packet_ms;
  t->last_packet_ms = now.mono_ms;
  if (rtx) {
    // A retransmission the publisher sent on a NACK: forwarded as the packet it repairs, so
    // every subscriber that lost it has it again (the others drop the duplicate).
    if (!unwrap_rtx(*rtp, bytes, *t)) {
      return;
    }
    ++counters_.rtx_received;
  } else {
    std::uint16_t seq = rtp->sequence();
    if (t->cache && t->received.started()) {
      // A gap in what the publisher sent: ask for the missing packets at once (RFC 4585
      // §3.5.1 immediate feedback), at most 32 of them; older losses are past repair.
      auto expected = static_cast<std::uint16_t>(t->received.highest() + 1);
      auto gap = static_cast<std::uint16_t>(seq - expected);
      if (gap > 0 && gap <= 32) {
        nack_upstream(s, *t, expected, static_cast<std::uint16_t>(seq - 1));
      }
    }
    t->received.on_packet(seq, rtp->timestamp(), now.mono_ms, t->clock_rate);
  }
  if (t->cache) {
    store_->put(t->token, *t->cache, load_be16(bytes.data() + 2), bytes, now.mono_ms);
  }
  Track* head = t->layers > 1 ? s.track_by_key(t->key) : t;
  if (head != nullptr) {
    forward(*head, *t, bytes, now);
  }
}

void Engine::forward(Track& head, Track& layer, std::span<std::uint8_t> rtp, const Now& now) {
  // Parsed once for all the copies (on_rtp validated it; an unwrapped RTX moved its payload).
  auto view = rtp::RtpPacket::parse(rtp);
  if (!view) {
    return;
  }
  std::optional<rtp::RedPayload> red;
  if (head.red_payload_type != 0 && view->payload_type() == head.red_payload_type) {
    red = rtp::parse_red(view->payload());
    if (!red) {
      counters_.drop(Drop::kRedMalformed);  // RFC 2198 blocks that do not fit: no copy at all
      return;
    }
  }
  bool simulcast = head.layers > 1;
  bool vp8 = head.codec == shm::Codec::kVp8;  // renumbered for simulcast and temporal drops
  bool video = head.kind == shm::MediaKind::kVideo;
  // AV1 layers come from the Dependency Descriptor where it was negotiated; without it (or before
  // its first structure) an AV1 packet goes to every route whole.
  Layering layers = !video             ? Layering{}
                    : layer.dependency ? dependency_layering(layer, *view)
                                       : layering(head.codec, view->payload());
  if (layers.known && !simulcast) {
    // Per spatial x temporal layer, for the allocation (measure_layers).
    std::size_t sid = std::min<std::size_t>(layers.sid, Track::kSvcLayers - 1);
    std::size_t tid = std::min<std::size_t>(layers.tid, Track::kSvcLayers - 1);
    head.svc_window_bytes[sid * Track::kSvcLayers + tid] += rtp.size();
    head.svc_top_spatial = std::max(head.svc_top_spatial, static_cast<std::uint8_t>(sid));
    head.svc_top_temporal = std::max(head.svc_top_temporal, static_cast<std::uint8_t>(tid));
    head.svc_layered = true;
  }
  // The publisher kept sending: a gap this long in what a subscriber got is a freeze it saw.
  bool sending =
      layer.previous_packet_ms != 0 && now.mono_ms - layer.previous_packet_ms < kFreezeMs;
  for (Route& r : head.routes) {
    if (!r.subscriber->connected()) {
      counters_.drop(Drop::kSubscriberNotReady);
      continue;
    }
    if (simulcast ? !select_layer(r, layer, *view, now) : r.paused) {
      continue;
    }
    const Renumber* numbering = select_svc(r, layers, view->sequence());
    if (numbering == nullptr) {
      continue;  // a temporal or spatial layer above the route's
    }
    Sent sent;
    bool copied = send_copy(r, *view, false, *numbering, vp8, &sent, red ? &*red : nullptr);
    r.set_marker = false;
    if (copied) {
      ++counters_.rtp_forwarded;
      r.report_bytes += sent.bytes;
      if (video && sending && r.forwarded_ms != 0 && now.mono_ms - r.forwarded_ms > kFreezeMs) {
        ++r.freezes;
        ++counters_.freezes;
      }
      r.forwarded_ms = now.mono_ms;
      if (video && view->marker()) {
        ++r.report_frames;  // RFC 3551 §4.1: the marker ends a video frame
      }
      // Where the next layer's numbering continues: the newest packet sent, not a late one.
      if (simulcast &&
          (!r.sent_any || static_cast<std::uint16_t>(sent.sequence - r.last_sequence) < 0x8000)) {
        r.last_sequence = sent.sequence;
        r.last_timestamp = sent.timestamp;
        r.last_sent_ms = now.mono_ms;
        r.sent_any = true;
        if (sent.vp8) {
          r.vp8_seen = true;
          r.last_picture_id = sent.picture_id;
          r.last_tl0picidx = sent.tl0picidx;
          r.last_keyidx = sent.keyidx;
        }
      }
    }
  }
}

bool Engine::send_copy(Route& r, const rtp::RtpPacket& view, bool as_rtx, const Renumber& renumber,
                       bool vp8, Sent* sent, const rtp::RedPayload* red) {
  Session& sub = *r.subscriber;
  Bytes rtp = view.bytes();
  PacketBuffer copy;
  auto id = out_.acquire(copy);
  if (!id) {
    counters_.drop(Drop::kTxExhausted);
    return false;
  }
  // A receive view may start earlier in its slot than a transmit view: what would not fit with
  // room for the SRTP tag is not copied (protect_rtp would refuse it anyway).
  std::size_t need = as_rtx ? view.header_size() + 2 + view.payload().size() : rtp.size();
  if (need + crypto::SrtpSession::kMaxTrailer > copy.capacity - copy.offset) {
    out_.release(*id);
    counters_.drop(Drop::kSrtpOther);
    return false;
  }
  std::uint8_t* d = copy.data();
  std::size_t header = view.header_size();
  std::size_t length = rtp.size();
  if (as_rtx) {
    // RFC 4588 §4: own SSRC, payload type and sequence; the OSN, then the original payload
    // (without its padding).
    MutableBytes payload = view.payload();
    std::memcpy(d, rtp.data(), header);
    store_be16(d + header, view.sequence());
    std::memcpy(d + header + 2, payload.data(), payload.size());
    length = header + 2 + payload.size();
    d[0] = static_cast<std::uint8_t>(d[0] & ~0x20);
    d[1] = static_cast<std::uint8_t>((d[1] & 0x80) | r.rtx_payload_type);
    store_be16(d + 2, r.rtx_sequence++);
    store_be32(d + 8, r.rtx_ssrc);
  } else {
    // RFC 2198 audio kept or stripped as the subscriber negotiated (rtp/red.hpp).
    length = rtp::copy_for_receiver(d, view, red, r.red_out, r.opus_in, r.payload_type);
    store_be32(d + 8, r.ssrc);
    if (r.set_marker) {
      d[1] = static_cast<std::uint8_t>(d[1] | 0x80);  // ends the highest spatial layer sent
    }
  }
  // The renumbering of a simulcast route (zero for a plain track); an RTX copy carries the
  // renumbered original sequence number as its OSN.
  auto sequence = static_cast<std::uint16_t>(view.sequence() + renumber.sequence);
  auto timestamp = view.timestamp() + renumber.timestamp;
  store_be32(d + 4, timestamp);
  store_be16(as_rtx ? d + header : d + 2, sequence);
  if (vp8) {
    std::uint8_t* payload = d + header + (as_rtx ? 2 : 0);
    std::size_t payload_size = view.payload().size();
    if (auto desc = rtp::parse_vp8(Bytes(payload, payload_size))) {
      auto pid = static_cast<std::uint16_t>((desc->picture_id + renumber.picture_id) & 0x7FFF);
      auto tl0 = static_cast<std::uint8_t>(desc->tl0picidx + renumber.tl0picidx);
      auto key = static_cast<std::uint8_t>((desc->keyidx + renumber.keyidx) & 0x1F);
      rtp::rewrite_vp8(MutableBytes(payload, payload_size), *desc, pid, tl0, key);
      if (sent != nullptr && desc->has_picture_id) {
        sent->vp8 = true;
        sent->picture_id = pid;
        sent->tl0picidx = tl0;
        sent->keyidx = key;
      }
    }
  }
  bool numbered = false;
  std::uint16_t transport_seq = sub.transport_cc_next;
  if (view.has_extension()) {
    auto offset = static_cast<std::size_t>(view.extension_block().data() - rtp.data());
    rewrite_extension_ids(d + offset, view.extension_block().size(), view.extension_profile(),
                          r.extensions);
    // The subscriber's transport is numbered by the SFU, not by the publisher (whose numbers
    // say nothing of this link): its feedback then drives this subscriber's estimate.
    if (sub.transport_cc_out != 0) {
      // The copy's extension ids are the subscriber's now: its own element takes the number
      // (RtpPacket reads both header forms, RFC 8285 §4.2/§4.3).
      std::array<std::uint8_t, 2> be{static_cast<std::uint8_t>(transport_seq >> 8),
                                     static_cast<std::uint8_t>(transport_seq)};
      auto copy_view = rtp::RtpPacket::parse(MutableBytes(d, length));
      numbered = copy_view && copy_view->set_extension(sub.transport_cc_out, be);
    }
  }
  auto n = sub.srtp_out->protect_rtp(MutableBytes(d, copy.capacity - copy.offset), length);
  if (!n) {
    out_.release(*id);
    return false;
  }
  copy.length = static_cast<std::uint32_t>(*n);
  counters_.bytes_forwarded += copy.length;
  if (numbered) {
    ++sub.transport_cc_next;
    on_transport_sent(sub, transport_seq, copy.length, false);
  }
  out_.send(sub.socket, sub.remote, copy, *id);
  if (sent != nullptr) {
    sent->sequence = sequence;
    sent->timestamp = timestamp;
    sent->bytes = copy.length;
  }
  return true;
}

}  // namespace ringlane::sfu
