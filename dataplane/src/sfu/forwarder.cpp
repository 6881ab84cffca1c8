// Forwarding: a publisher's SRTP is decrypted once, in place in the receive buffer; every
// subscriber gets a copy in a transmit buffer, renumbered to what it negotiated (SSRC, payload
// type, header extension ids) and protected with its own keys. No allocation, lock or log line
// per packet; all the copies of one receive batch leave in the backend's one submit. Video
// packets are also kept (retransmit_store.hpp) to answer NACKs.
#include <cstring>

#include "ringlane/dataplane/rtp/packet.hpp"
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
  bool rtx = false;
  Track* t = s.track(rtp->ssrc(), rtx);
  if (t == nullptr) {
    counters_.drop(Drop::kUnknownSsrc);
    return;
  }
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
  forward(*t, bytes);
}

void Engine::forward(Track& track, std::span<std::uint8_t> rtp) {
  // Parsed once for all the copies (on_rtp validated it; an unwrapped RTX moved its payload).
  auto view = rtp::RtpPacket::parse(rtp);
  if (!view) {
    return;
  }
  for (Route& r : track.routes) {
    if (!r.subscriber->connected()) {
      counters_.drop(Drop::kSubscriberNotReady);
      continue;
    }
    if (send_copy(r, *view, false)) {
      ++counters_.rtp_forwarded;
    }
  }
}

bool Engine::send_copy(Route& r, const rtp::RtpPacket& view, bool as_rtx) {
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
    std::memcpy(d, rtp.data(), length);
    d[1] = static_cast<std::uint8_t>((d[1] & 0x80) | r.payload_type);
    store_be32(d + 8, r.ssrc);
  }
  if (view.has_extension()) {
    auto offset = static_cast<std::size_t>(view.extension_block().data() - rtp.data());
    rewrite_extension_ids(d + offset, view.extension_block().size(), view.extension_profile(),
                          r.extensions);
  }
  auto n = sub.srtp_out->protect_rtp(MutableBytes(d, copy.capacity - copy.offset), length);
  if (!n) {
    out_.release(*id);
    return false;
  }
  copy.length = static_cast<std::uint32_t>(*n);
  counters_.bytes_forwarded += copy.length;
  out_.send(sub.socket, sub.remote, copy, *id);
  return true;
}

}  // namespace ringlane::sfu
