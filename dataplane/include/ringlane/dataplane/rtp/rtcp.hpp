#pragma once
// RTCP compound packets (RFC 3550 §6), feedback (RFC 4585, RFC 5104), REMB
// (draft-alvestrand-rmcat-remb) and transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01). A compound packet is validated whole
// before any part of it is handed out: one bad length refuses it all, nothing is half-read.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "ringlane/common/bytes.hpp"

namespace ringlane::rtcp {

enum Type : std::uint8_t {
  kSr = 200,
  kRr = 201,
  kSdes = 202,
  kBye = 203,
  kApp = 204,
  kRtpfb = 205,
  kPsfb = 206
};
// Feedback message types (the FMT field).
inline constexpr std::uint8_t kFmtNack = 1;   // RTPFB, RFC 4585 §6.2.1
inline constexpr std::uint8_t kFmtTwcc = 15;  // RTPFB, transport-wide CC
inline constexpr std::uint8_t kFmtPli = 1;    // PSFB, RFC 4585 §6.3.1
inline constexpr std::uint8_t kFmtFir = 4;    // PSFB, RFC 5104 §4.3.1
inline constexpr std::uint8_t kFmtAfb = 15;   // PSFB application layer (REMB)

// One packet of a compound: header fields and its bytes (padding excluded).
struct Packet {
  std::uint8_t count = 0;  // RC/SC/FMT field
  std::uint8_t type = 0;
  Bytes bytes;  // the whole packet, header included
  Bytes body() const { return bytes.subspan(4); }
};

class Compound {
 public:
  static constexpr std::size_t kMaxPackets = 32;
  static std::optional<Compound> parse(Bytes data);
  std::span<const Packet> packets() const { return {packets_.data(), count_}; }

 private:
  std::array<Packet, kMaxPackets> packets_{};
  std::size_t count_ = 0;
};

struct ReportBlock {
  std::uint32_t ssrc = 0;
  std::uint8_t fraction_lost = 0;
  std::int32_t cumulative_lost = 0;  // 24-bit signed
  std::uint32_t highest_sequence = 0;
  std::uint32_t jitter = 0;
  std::uint32_t last_sr = 0;
  std::uint32_t delay_since_last_sr = 0;
  bool operator==(const ReportBlock&) const = default;
};

struct SenderReport {
  std::uint32_t ssrc = 0;
  std::uint64_t ntp = 0;
  std::uint32_t rtp_timestamp = 0;
  std::uint32_t packet_count = 0;
  std::uint32_t octet_count = 0;
  std::vector<ReportBlock> blocks;
};
struct ReceiverReport {
  std::uint32_t ssrc = 0;
  std::vector<ReportBlock> blocks;
};
struct SdesItem {
  std::uint32_t ssrc;
  std::uint8_t type;  // 1 CNAME, 2 NAME, ...
  Bytes value;
};
struct Bye {
  std::vector<std::uint32_t> ssrcs;
  Bytes reason;
};
struct App {
  std::uint8_t subtype = 0;
  std::uint32_t ssrc = 0;
  std::array<std::uint8_t, 4> name{};
  Bytes data;
};
// Common part of RTPFB/PSFB messages (RFC 4585 §6.1).
struct Feedback {
  std::uint8_t fmt = 0;
  std::uint32_t sender_ssrc = 0;
  std::uint32_t media_ssrc = 0;
  Bytes fci;
};
struct FirEntry {
  std::uint32_t ssrc;
  std::uint8_t sequence;
  bool operator==(const FirEntry&) const = default;
};
struct Remb {
  std::uint64_t bitrate_bps = 0;
  std::vector<std::uint32_t> ssrcs;
};
// Transport-cc time units (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): receive
// deltas count 250 us ticks, the reference time 64 ms ticks.
inline constexpr std::int64_t kTwccDeltaTickUs = 250;
inline constexpr std::int64_t kTwccReferenceTickUs = 64'000;
struct TwccPacket {
  std::uint16_t sequence;
  bool received;
  std::int64_t delta_us;  // receive-time delta from the previous received packet (or reference)
};
struct TransportCc {
  std::uint16_t base_sequence = 0;
  std::int32_t reference_time = 0;  // multiples of 64 ms, 24-bit signed
  std::uint8_t feedback_count = 0;
  std::vector<TwccPacket> packets;
};

std::optional<SenderReport> parse_sr(const Packet& p);
std::optional<ReceiverReport> parse_rr(const Packet& p);
// Calls out for every item; false (and nothing more) when a chunk does not parse.
bool parse_sdes(const Packet& p, std::vector<SdesItem>& out);
std::optional<Bye> parse_bye(const Packet& p);
std::optional<App> parse_app(const Packet& p);
std::optional<Feedback> parse_feedback(const Packet& p);  // RTPFB or PSFB
// Lost sequence numbers of a generic NACK, in order.
std::optional<std::vector<std::uint16_t>> parse_nack(const Feedback& f);
std::optional<std::vector<FirEntry>> parse_fir(const Feedback& f);
std::optional<Remb> parse_remb(const Feedback& f);
std::optional<TransportCc> parse_transport_cc(const Feedback& f);

// Builders: write into `out`, return the bytes written, 0 when it does not fit.
std::size_t build_rr(MutableBytes out, std::uint32_t sender_ssrc,
                     std::span<const ReportBlock> blocks);
std::size_t build_pli(MutableBytes out, std::uint32_t sender_ssrc, std::uint32_t media_ssrc);
std::size_t build_fir(MutableBytes out, std::uint32_t sender_ssrc,
                      std::span<const FirEntry> entries);
// `lost` sorted ascending (with wrap-around handled by the caller's order).
std::size_t build_nack(MutableBytes out, std::uint32_t sender_ssrc, std::uint32_t media_ssrc,
                       std::span<const std::uint16_t> lost);
std::size_t build_remb(MutableBytes out, std::uint32_t sender_ssrc, std::uint64_t bitrate_bps,
                       std::span<const std::uint32_t> ssrcs);
// Transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1), the exact
// inverse of parse_transport_cc. packets[i] is the status of base_sequence + i (its `sequence`
// field is not read). A received packet's delta_us counts from the previous received packet, the
// first one's from reference_time * 64 ms; it goes out in 250 us ticks, rounded down, so callers
// holding absolute times should round those and pass differences of rounded times (TwccRecorder
// does). reference_time is sent as its low 24 bits. Covers the longest prefix of `packets` that
// fits `out`, stops before a delta that 16 signed bits of ticks cannot express (such a packet
// must open the next feedback, with a new reference time) and at the parser's cap of 16384;
// stores the number of packets covered in *covered. Returns the bytes written, 0 (covering
// nothing) when not even the first status fits or `packets` is empty.
std::size_t build_transport_cc(MutableBytes out, std::uint32_t sender_ssrc,
                               std::uint32_t media_ssrc, std::uint16_t base_sequence,
                               std::int32_t reference_time, std::uint8_t feedback_count,
                               std::span<const TwccPacket> packets, std::size_t* covered = nullptr);

}  // namespace ringlane::rtcp
