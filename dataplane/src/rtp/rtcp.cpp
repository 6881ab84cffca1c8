#include "ringlane/dataplane/rtp/rtcp.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ringlane::rtcp {
namespace {

// A transport-cc feedback may describe at most this many packets; more is refused rather
// than allocated (a 2-byte run-length chunk can claim 8191 packets).
constexpr std::size_t kMaxTwccPackets = 16384;

ReportBlock read_block(const std::uint8_t* b) {
  ReportBlock r;
  r.ssrc = load_be32(b);
  r.fraction_lost = b[4];
  std::uint32_t lost = (std::uint32_t{b[5]} << 16) | (std::uint32_t{b[6]} << 8) | b[7];
  r.cumulative_lost = (lost & 0x800000) != 0 ? static_cast<std::int32_t>(lost | 0xFF000000u)
                                             : static_cast<std::int32_t>(lost);
  r.highest_sequence = load_be32(b + 8);
  r.jitter = load_be32(b + 12);
  r.last_sr = load_be32(b + 16);
  r.delay_since_last_sr = load_be32(b + 20);
  return r;
}

void write_block(std::uint8_t* b, const ReportBlock& r) {
  store_be32(b, r.ssrc);
  b[4] = r.fraction_lost;
  auto lost = static_cast<std::uint32_t>(r.cumulative_lost) & 0xFFFFFF;
  b[5] = static_cast<std::uint8_t>(lost >> 16);
  b[6] = static_cast<std::uint8_t>(lost >> 8);
  b[7] = static_cast<std::uint8_t>(lost);
  store_be32(b + 8, r.highest_sequence);
  store_be32(b + 12, r.jitter);
  store_be32(b + 16, r.last_sr);
  store_be32(b + 20, r.delay_since_last_sr);
}

// Writes the 4-byte header of a packet of `size` bytes (a multiple of 4).
void write_header(std::uint8_t* p, std::uint8_t count, std::uint8_t type, std::size_t size) {
  p[0] = static_cast<std::uint8_t>(0x80 | (count & 0x1F));
  p[1] = type;
  store_be16(p + 2, static_cast<std::uint16_t>(size / 4 - 1));
}

}  // namespace

std::optional<Compound> Compound::parse(Bytes d) {
  Compound c;
  std::size_t pos = 0;
  while (pos < d.size()) {
    if (d.size() - pos < 4 || (d[pos] >> 6) != 2) {
      return std::nullopt;
    }
    std::size_t length = (std::size_t{load_be16(d.data() + pos + 2)} + 1) * 4;
    if (length > d.size() - pos || c.count_ == kMaxPackets) {
      return std::nullopt;
    }
    Bytes packet = d.subspan(pos, length);
    if ((d[pos] & 0x20) != 0) {
      // RFC 3550 §6.4.1: only the last packet of a compound may be padded.
      std::uint8_t pad = packet[length - 1];
      if (pos + length != d.size() || pad == 0 || pad > length - 4) {
        return std::nullopt;
      }
      packet = packet.first(length - pad);
    }
    c.packets_[c.count_++] = Packet{static_cast<std::uint8_t>(d[pos] & 0x1F), d[pos + 1], packet};
    pos += length;
  }
  if (c.count_ == 0) {
    return std::nullopt;
  }
  return c;
}

std::optional<SenderReport> parse_sr(const Packet& p) {
  Bytes b = p.body();
  if (p.type != kSr || b.size() < 24 + 24u * p.count)
    return std::nullopt;
  SenderReport sr;
  sr.ssrc = load_be32(b.data());
  sr.ntp = load_be64(b.data() + 4);
  sr.rtp_timestamp = load_be32(b.data() + 12);
  sr.packet_count = load_be32(b.data() + 16);
  sr.octet_count = load_be32(b.data() + 20);
  for (std::size_t i = 0; i < p.count; ++i)
    sr.blocks.push_back(read_block(b.data() + 24 + 24 * i));
  return sr;
}

std::optional<ReceiverReport> parse_rr(const Packet& p) {
  Bytes b = p.body();
  if (p.type != kRr || b.size() < 4 + 24u * p.count)
    return std::nullopt;
  ReceiverReport rr;
  rr.ssrc = load_be32(b.data());
  for (std::size_t i = 0; i < p.count; ++i)
    rr.blocks.push_back(read_block(b.data() + 4 + 24 * i));
  return rr;
}

bool parse_sdes(const Packet& p, std::vector<SdesItem>& out) {
  if (p.type != kSdes)
    return false;
  Bytes b = p.body();
  std::size_t pos = 0;
  for (std::size_t chunk = 0; chunk < p.count; ++chunk) {
    if (b.size() - pos < 4)
      return false;
    std::uint32_t ssrc = load_be32(b.data() + pos);
    pos += 4;
    for (;;) {
      if (pos >= b.size())
        return false;
      std::uint8_t type = b[pos];
      if (type == 0) {
        // End of the item list: the chunk ends at the next 32-bit boundary (RFC 3550 §6.5).
        pos = (pos + 4) & ~std::size_t{3};
        break;
      }
      if (b.size() - pos < 2 || b[pos + 1] > b.size() - pos - 2)
        return false;
      out.push_back(SdesItem{ssrc, type, b.subspan(pos + 2, b[pos + 1])});
      pos += 2 + b[pos + 1];
    }
    if (pos > b.size())
      return false;
  }
  return true;
}

std::optional<Bye> parse_bye(const Packet& p) {
  Bytes b = p.body();
  if (p.type != kBye || b.size() < 4u * p.count)
    return std::nullopt;
  Bye bye;
  for (std::size_t i = 0; i < p.count; ++i)
    bye.ssrcs.push_back(load_be32(b.data() + 4 * i));
  std::size_t pos = 4u * p.count;
  if (pos < b.size()) {
    std::size_t len = b[pos];
    if (len > b.size() - pos - 1)
      return std::nullopt;
    bye.reason = b.subspan(pos + 1, len);
  }
  return bye;
}

std::optional<App> parse_app(const Packet& p) {
  Bytes b = p.body();
  if (p.type != kApp || b.size() < 8)
    return std::nullopt;
  App a;
  a.subtype = p.count;
  a.ssrc = load_be32(b.data());
  std::memcpy(a.name.data(), b.data() + 4, 4);
  a.data = b.subspan(8);
  return a;
}

std::optional<Feedback> parse_feedback(const Packet& p) {
  Bytes b = p.body();
  if ((p.type != kRtpfb && p.type != kPsfb) || b.size() < 8)
    return std::nullopt;
  return Feedback{p.count, load_be32(b.data()), load_be32(b.data() + 4), b.subspan(8)};
}

std::optional<std::vector<std::uint16_t>> parse_nack(const Feedback& f) {
  if (f.fmt != kFmtNack || f.fci.empty() || f.fci.size() % 4 != 0)
    return std::nullopt;
  std::vector<std::uint16_t> lost;
  for (std::size_t i = 0; i < f.fci.size(); i += 4) {
    std::uint16_t pid = load_be16(f.fci.data() + i);
    std::uint16_t blp = load_be16(f.fci.data() + i + 2);
    lost.push_back(pid);
    for (int bit = 0; bit < 16; ++bit) {
      if ((blp >> bit) & 1)
        lost.push_back(static_cast<std::uint16_t>(pid + bit + 1));
    }
  }
  return lost;
}

std::optional<std::vector<FirEntry>> parse_fir(const Feedback& f) {
  if (f.fmt != kFmtFir || f.fci.empty() || f.fci.size() % 8 != 0)
    return std::nullopt;
  std::vector<FirEntry> entries;
  for (std::size_t i = 0; i < f.fci.size(); i += 8) {
    entries.push_back(FirEntry{load_be32(f.fci.data() + i), f.fci[i + 4]});
  }
  return entries;
}

std::optional<Remb> parse_remb(const Feedback& f) {
  if (f.fmt != kFmtAfb || f.fci.size() < 8 || std::memcmp(f.fci.data(), "REMB", 4) != 0) {
    return std::nullopt;
  }
  std::size_t n = f.fci[4];
  if (f.fci.size() < 8 + 4 * n)
    return std::nullopt;
  unsigned exp = f.fci[5] >> 2;
  std::uint64_t mantissa = (std::uint64_t{f.fci[5] & 3u} << 16) | load_be16(f.fci.data() + 6);
  Remb r;
  // 18-bit mantissa: shifts past 46 would overflow 64 bits; such a rate means "unlimited".
  r.bitrate_bps = exp > 46 ? UINT64_MAX : mantissa << exp;
  for (std::size_t i = 0; i < n; ++i)
    r.ssrcs.push_back(load_be32(f.fci.data() + 8 + 4 * i));
  return r;
}

std::optional<TransportCc> parse_transport_cc(const Feedback& f) {
  if (f.fmt != kFmtTwcc || f.fci.size() < 8)
    return std::nullopt;
  const std::uint8_t* d = f.fci.data();
  TransportCc t;
  t.base_sequence = load_be16(d);
  std::size_t status_count = load_be16(d + 2);
  std::uint32_t ref = (std::uint32_t{d[4]} << 16) | (std::uint32_t{d[5]} << 8) | d[6];
  t.reference_time = (ref & 0x800000) != 0 ? static_cast<std::int32_t>(ref | 0xFF000000u)
                                           : static_cast<std::int32_t>(ref);
  t.feedback_count = d[7];
  if (status_count > kMaxTwccPackets)
    return std::nullopt;
  std::vector<std::uint8_t> symbols;
  symbols.reserve(status_count);
  std::size_t pos = 8;
  while (symbols.size() < status_count) {
    if (f.fci.size() - pos < 2)
      return std::nullopt;
    std::uint16_t chunk = load_be16(d + pos);
    pos += 2;
    std::size_t left = status_count - symbols.size();
    if ((chunk & 0x8000) == 0) {  // run length chunk
      auto symbol = static_cast<std::uint8_t>((chunk >> 13) & 3);
      std::size_t run = std::min<std::size_t>(chunk & 0x1FFF, left);
      symbols.insert(symbols.end(), run, symbol);
    } else if ((chunk & 0x4000) == 0) {  // status vector, 14 one-bit symbols
      for (int i = 13; i >= 0 && symbols.size() < status_count; --i) {
        symbols.push_back(static_cast<std::uint8_t>((chunk >> i) & 1));
      }
    } else {  // status vector, 7 two-bit symbols
      for (int i = 6; i >= 0 && symbols.size() < status_count; --i) {
        symbols.push_back(static_cast<std::uint8_t>((chunk >> (2 * i)) & 3));
      }
    }
  }
  t.packets.reserve(status_count);
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    TwccPacket pkt{static_cast<std::uint16_t>(t.base_sequence + i), false, 0};
    if (symbols[i] == 1) {  // received, small delta: 1 byte, unsigned, 250 us units
      if (f.fci.size() - pos < 1)
        return std::nullopt;
      pkt.received = true;
      pkt.delta_us = std::int64_t{d[pos]} * 250;
      pos += 1;
    } else if (symbols[i] == 2) {  // received, large or negative delta: 2 bytes, signed
      if (f.fci.size() - pos < 2)
        return std::nullopt;
      pkt.received = true;
      pkt.delta_us = std::int64_t{static_cast<std::int16_t>(load_be16(d + pos))} * 250;
      pos += 2;
    } else if (symbols[i] == 3) {
      return std::nullopt;  // reserved symbol
    }
    t.packets.push_back(pkt);
  }
  return t;
}

std::size_t build_rr(MutableBytes out, std::uint32_t sender_ssrc,
                     std::span<const ReportBlock> blocks) {
  std::size_t size = 8 + 24 * blocks.size();
  if (blocks.size() > 31 || out.size() < size)
    return 0;
  write_header(out.data(), static_cast<std::uint8_t>(blocks.size()), kRr, size);
  store_be32(out.data() + 4, sender_ssrc);
  for (std::size_t i = 0; i < blocks.size(); ++i)
    write_block(out.data() + 8 + 24 * i, blocks[i]);
  return size;
}

std::size_t build_pli(MutableBytes out, std::uint32_t sender_ssrc, std::uint32_t media_ssrc) {
  if (out.size() < 12)
    return 0;
  write_header(out.data(), kFmtPli, kPsfb, 12);
  store_be32(out.data() + 4, sender_ssrc);
  store_be32(out.data() + 8, media_ssrc);
  return 12;
}

std::size_t build_fir(MutableBytes out, std::uint32_t sender_ssrc,
                      std::span<const FirEntry> entries) {
  std::size_t size = 12 + 8 * entries.size();
  if (entries.empty() || out.size() < size)
    return 0;
  write_header(out.data(), kFmtFir, kPsfb, size);
  store_be32(out.data() + 4, sender_ssrc);
  store_be32(out.data() + 8, 0);  // RFC 5104 §4.3.1.2: media source SSRC is 0
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::uint8_t* e = out.data() + 12 + 8 * i;
    store_be32(e, entries[i].ssrc);
    e[4] = entries[i].sequence;
    e[5] = e[6] = e[7] = 0;
  }
  return size;
}

std::size_t build_nack(MutableBytes out, std::uint32_t sender_ssrc, std::uint32_t media_ssrc,
                       std::span<const std::uint16_t> lost) {
  if (lost.empty())
    return 0;
  // Pack into (PID, BLP) pairs: BLP bit i marks PID + i + 1 (RFC 4585 §6.2.1).
  std::size_t pairs = 0;
  std::size_t pos = 12;
  for (std::size_t i = 0; i < lost.size();) {
    if (out.size() < pos + 4)
      return 0;
    std::uint16_t pid = lost[i++];
    std::uint16_t blp = 0;
    while (i < lost.size()) {
      auto diff = static_cast<std::uint16_t>(lost[i] - pid);
      if (diff == 0) {  // duplicate
        ++i;
        continue;
      }
      if (diff > 16)
        break;
      blp = static_cast<std::uint16_t>(blp | (1u << (diff - 1)));
      ++i;
    }
    store_be16(out.data() + pos, pid);
    store_be16(out.data() + pos + 2, blp);
    pos += 4;
    ++pairs;
  }
  write_header(out.data(), kFmtNack, kRtpfb, pos);
  store_be32(out.data() + 4, sender_ssrc);
  store_be32(out.data() + 8, media_ssrc);
  return pairs > 0 ? pos : 0;
}

std::size_t build_remb(MutableBytes out, std::uint32_t sender_ssrc, std::uint64_t bitrate_bps,
                       std::span<const std::uint32_t> ssrcs) {
  std::size_t size = 20 + 4 * ssrcs.size();
  if (ssrcs.size() > 255 || out.size() < size)
    return 0;
  unsigned exp = 0;
  while ((bitrate_bps >> exp) > 0x3FFFF)
    ++exp;
  auto mantissa = static_cast<std::uint32_t>(bitrate_bps >> exp);
  write_header(out.data(), kFmtAfb, kPsfb, size);
  store_be32(out.data() + 4, sender_ssrc);
  store_be32(out.data() + 8, 0);
  std::memcpy(out.data() + 12, "REMB", 4);
  out[16] = static_cast<std::uint8_t>(ssrcs.size());
  out[17] = static_cast<std::uint8_t>((exp << 2) | (mantissa >> 16));
  store_be16(out.data() + 18, static_cast<std::uint16_t>(mantissa));
  for (std::size_t i = 0; i < ssrcs.size(); ++i)
    store_be32(out.data() + 20 + 4 * i, ssrcs[i]);
  return size;
}

namespace {

// Transport-cc feedback layout (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the
// RTCP header, sender and media SSRCs, then base sequence, status count, reference time and
// feedback count; packet status chunks follow, then the receive deltas.
constexpr std::size_t kTwccHeaderSize = 20;
constexpr std::size_t kChunkSize = 2;
// §3.1.3: a run length chunk holds up to 2^13 - 1 statuses of one symbol.
constexpr std::size_t kRunLengthCapacity = 0x1FFF;
// §3.1.4: a status vector chunk holds 14 one-bit or 7 two-bit symbols.
constexpr std::size_t kOneBitCapacity = 14;
constexpr std::size_t kTwoBitCapacity = 7;

enum class ChunkKind : std::uint8_t { kRunLength, kOneBit, kTwoBit };
struct Chunk {
  ChunkKind kind;
  std::size_t count;
};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::int64_t delta_ticks(const TwccPacket& p) {
  return floor_div(p.delta_us, kTwccDeltaTickUs);
}

// §3.1.1 status symbols: 0 not received, 1 received with a small delta (one byte, unsigned),
// 2 received with a large or negative delta (two bytes, signed). The symbol is also the
// number of delta bytes it takes.
std::uint8_t status_symbol(const TwccPacket& p) {
  if (!p.received) {
    return 0;
  }
  std::int64_t ticks = delta_ticks(p);
  return ticks >= 0 && ticks <= 0xFF ? 1 : 2;
}

// The chunk that describes most statuses from `i` on. A vector chunk that is not the last must
// be full (the parser takes all its symbols), so it holds min(capacity, left) statuses; a run is
// preferred whenever it covers at least as many.
Chunk next_chunk(std::span<const TwccPacket> p, std::size_t i) {
  std::size_t left = p.size() - i;
  std::uint8_t first = status_symbol(p[i]);
  std::size_t run = 1;
  while (run < left && run < kRunLengthCapacity && status_symbol(p[i + run]) == first) {
    ++run;
  }
  std::size_t one_bit = std::min(left, kOneBitCapacity);
  if (run >= one_bit) {
    return {ChunkKind::kRunLength, run};
  }
  bool small_only = true;
  for (std::size_t k = 0; k < one_bit; ++k) {
    small_only = small_only && status_symbol(p[i + k]) != 2;
  }
  if (small_only) {
    return {ChunkKind::kOneBit, one_bit};
  }
  std::size_t two_bit = std::min(left, kTwoBitCapacity);
  if (run >= two_bit) {
    return {ChunkKind::kRunLength, run};
  }
  return {ChunkKind::kTwoBit, two_bit};
}

// §3.1.3 run length chunk: T=0, S (2 bits), run length (13 bits). §3.1.4 status vector chunk:
// T=1, S=0 then 14 one-bit symbols, or S=1 then 7 two-bit symbols, first symbol most
// significant; the unused tail of a last, partial vector stays zero.
std::uint16_t encode_chunk(const Chunk& c, std::span<const TwccPacket> p, std::size_t i) {
  unsigned v = 0;
  switch (c.kind) {
    case ChunkKind::kRunLength:
      v = (unsigned{status_symbol(p[i])} << 13) | static_cast<unsigned>(c.count);
      break;
    case ChunkKind::kOneBit:
      v = 0x8000;
      for (std::size_t k = 0; k < c.count; ++k) {
        v |= unsigned{status_symbol(p[i + k])} << (13 - k);
      }
      break;
    case ChunkKind::kTwoBit:
      v = 0xC000;
      for (std::size_t k = 0; k < c.count; ++k) {
        v |= unsigned{status_symbol(p[i + k])} << (2 * (6 - k));
      }
      break;
  }
  return static_cast<std::uint16_t>(v);
}

std::size_t padded(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

}  // namespace

std::size_t build_transport_cc(MutableBytes out, std::uint32_t sender_ssrc,
                               std::uint32_t media_ssrc, std::uint16_t base_sequence,
                               std::int32_t reference_time, std::uint8_t feedback_count,
                               std::span<const TwccPacket> packets, std::size_t* covered) {
  if (covered != nullptr) {
    *covered = 0;
  }
  // What one feedback may describe: no more than our own parser accepts, and nothing from the
  // first delta that a signed 16-bit tick count cannot carry (§3.1.5).
  std::size_t n = std::min(packets.size(), kMaxTwccPackets);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t ticks = delta_ticks(packets[i]);
    if (packets[i].received && (ticks < std::numeric_limits<std::int16_t>::min() ||
                                ticks > std::numeric_limits<std::int16_t>::max())) {
      n = i;
      break;
    }
  }
  packets = packets.first(n);

  // Chunks go right after the fixed part, the deltas after the last chunk, so the chunks are
  // chosen (and written) first while the delta bytes they will need are counted; the last chunk
  // is cut short where the packet would outgrow `out`.
  std::size_t pos = kTwccHeaderSize;
  std::size_t delta_size = 0;
  std::size_t done = 0;
  while (done < packets.size()) {
    Chunk c = next_chunk(packets, done);
    std::size_t fit = 0;
    std::size_t chunk_deltas = 0;
    while (fit < c.count) {
      std::size_t d = status_symbol(packets[done + fit]);
      if (padded(pos + kChunkSize + delta_size + chunk_deltas + d) > out.size()) {
        break;
      }
      chunk_deltas += d;
      ++fit;
    }
    if (fit == 0) {
      break;
    }
    bool cut = fit < c.count;
    c.count = fit;
    store_be16(out.data() + pos, encode_chunk(c, packets, done));
    pos += kChunkSize;
    delta_size += chunk_deltas;
    done += fit;
    if (cut) {
      break;
    }
  }
  if (done == 0) {
    return 0;
  }
  // §3.1.5: one delta per received packet, in sequence order.
  for (std::size_t i = 0; i < done; ++i) {
    std::uint8_t symbol = status_symbol(packets[i]);
    std::int64_t ticks = delta_ticks(packets[i]);
    if (symbol == 1) {
      out[pos++] = static_cast<std::uint8_t>(ticks);
    } else if (symbol == 2) {
      store_be16(out.data() + pos, static_cast<std::uint16_t>(static_cast<std::int16_t>(ticks)));
      pos += 2;
    }
  }
  // §3.1 ends the deltas with zero padding to a 32-bit boundary, inside the packet and without
  // the P bit: RFC 3550 §6.4.1 allows padding only on the last packet of a compound, and this
  // feedback may be followed by others. The parser stops after the last delta.
  while (pos % 4 != 0) {
    out[pos++] = 0;
  }
  write_header(out.data(), kFmtTwcc, kRtpfb, pos);
  store_be32(out.data() + 4, sender_ssrc);
  store_be32(out.data() + 8, media_ssrc);
  store_be16(out.data() + 12, base_sequence);
  store_be16(out.data() + 14, static_cast<std::uint16_t>(done));
  auto reference = static_cast<std::uint32_t>(reference_time) & 0xFFFFFF;
  out[16] = static_cast<std::uint8_t>(reference >> 16);
  out[17] = static_cast<std::uint8_t>(reference >> 8);
  out[18] = static_cast<std::uint8_t>(reference);
  out[19] = feedback_count;
  if (covered != nullptr) {
    *covered = done;
  }
  return pos;
}

}  // namespace ringlane::rtcp
