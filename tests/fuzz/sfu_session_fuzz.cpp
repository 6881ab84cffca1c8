// The SFU engine driven by a sequence of steps: ring commands, datagrams from the validated
// addresses and from others, signed ICE checks, time passing, and (when a step asks for one) a
// real DTLS handshake, after which the harness protects the fuzzer's RTP and RTCP with the
// browser's keys so the forwarding and feedback paths see decrypted packets of any shape.
// Besides a plain video and an audio track, the publisher has a simulcast VP8 track (RFC 8853:
// rids "q", "h", "f", their SSRCs learned from the RID extension of RFC 8852), which the
// subscriber receives with the SFU's own transport-wide numbering, so its feedback drives the
// bandwidth estimate, the layer allocation and the probes.
//
// Input: steps of [op u8][length u16 big-endian][length bytes]. With op bit 7 clear, the low 3
// bits choose:
//   0 command: payload[0] picks the type (10 + b % 11), the rest is its payload
//   1 datagram: bits 3-4 the source address, bit 5 the socket, bit 6 the receive offset
//   2 ICE check signed by the harness: payload[0] bits 0-1 credentials (publisher,
//     subscriber, last created, unknown), bit 2 ICE-CONTROLLED, bit 3 USE-CANDIDATE, bit 4 no
//     FINGERPRINT, bit 5 wrong password; op bits 3-4 address, bit 5 socket
//   3 time: advance by payload[0..1] ms (50 when absent), then on_timer
//   4 DTLS handshake of the publisher (bit 3 clear) or the subscriber (set)
//   5 RTP from the publisher (bit 3 clear) or subscriber, SRTP-protected when it has keys
//   6 RTCP likewise, SRTCP-protected
//   7 ICE restart of the publisher (bit 3 clear) or the subscriber: new credentials, which
//     the harness's checks then use
// With op bit 7 set, the low 4 bits choose a step of the simulcast track or of congestion
// control. The harness keeps each layer's numbering (sequence, timestamp, VP8 picture id) and
// does the browser's DTLS handshake first when it has not been done, so the fuzzer shapes
// packets, not counters. Absent payload bytes read as 0, the well-formed choice.
//   0 layer RTP: [shape][extensions][look][sequence step i8][body...]
//     shape: bits 0-1 layer (3: a rid no layer has), bit 2 two-byte extension profile, bit 3
//       marker (the frame ends: the layer's timestamp and picture id move on), bit 4 padding,
//       bit 5 the layer restarts under a new SSRC, bit 6 not a keyframe, bit 7 body only (no
//       payload descriptor)
//     extensions: bit 0 no rid, 1 no mid, 2 no transport-wide sequence, 3 a repaired-rid too,
//       4 a junk element first (one-byte id 15, which ends the block; two-byte id 200), 5 no
//       extension block; bits 6-7 one wrong element: 1 the rid (a letter too many; empty in
//       the two-byte form), 2 the transport-wide sequence's length (1 or 3), 3 the mid
//     look: bits 0-2 the payload descriptor (media_payload), bit 3 not the frame's first packet,
//       bit 7 at the uring receive offset
//   1 stream: frames on the layers, each followed by a timer tick, with the subscriber's
//     transport-cc feedback as a browser sends it over a modelled link:
//     [flags][frames][frame ms][size][keyframe every][feedback every][stopping layers]
//     flags: bits 0-2 the layers (0: all), bit 3 no feedback, bit 4 the link's queue grows, bit
//       5 the link loses every 5th packet, bit 6 no keyframe first, bit 7 an RTX copy per frame
//   2 transport-cc feedback (rtcp::build_transport_cc) from the subscriber:
//     [flags][base][reference shift i8][count?][statuses...]; flags bit 0 base is a u16 (else
//     an i8 from the oldest packet not yet reported), bit 1 feedback count given, bits 2-4 the
//     media SSRC (kSubSsrcs), bit 5 the packets stay unreported. A status byte: bit 7 lost,
//     bit 6 a large delta in the next byte (i8 x 300 ticks, past what 16 bits carry), else
//     bits 0-5 minus 8 ticks of 250 us. No statuses: every pending packet received 1 ms apart
//   3 raw subscriber RTCP in a valid header: [type and count][media SSRC][body...]; bits 0-2
//     the type (RTPFB, PSFB, RR, SR, SDES, BYE, APP, XR), bits 3-7 the count/FMT; media byte
//     bits 0-2 kSubSsrcs, bit 6 a PLI after it, bit 7 an empty RR before it
//   4 receiver report: [blocks][per block: SSRC, fraction lost, cumulative u16, highest u16,
//     jitter u16, LSR u16, DLSR u16]
//   5 NACK: [SSRC, bit 3 raw sequence numbers, bit 4 unsorted][count][per number: u8 back
//     from the last one received on that SSRC, or a u16]
//   6 PLI, or FIR (bit 3): [SSRC][FIR sequence]
//   7 RouteLayer: [SSRC (bits 0-2), bit 3 paused, bit 7 the publisher's session][max_spatial]
//   8 clock: [total ms u16 (1000 when 0)][tick ms (50 when 0)][flags: bit 0 no consent checks,
//     bit 1 no feedback]: on_timer every tick, so allocation (200 ms), layer measurement
//     (500 ms), route reports (2 s), probes and padding all run
//   9 republish: [codec][flags]: the simulcast track removed and added again with that codec
//     (b % 6) and 1-3 rids (flags bits 0-1, 0: 3), bit 4 an empty mid; bit 5 only unsubscribed;
//     then subscribed again unless bit 6, bit 2 without transport-cc, bit 3 without RTX
//   10 sender report: [which][RTP timestamp u32 (0: the layer's)][raw RTCP after it...]; which
//     % 6: a layer, the plain video, the audio, layer 0's RTX
//   11 layer RTX (RFC 4588): [shape][back][body...]; shape bits 0-1 layer, bit 2 padding only,
//     bit 3 no repaired-rid, bit 4 a rid instead, bit 5 no transport-wide sequence, bit 6 a
//     keyframe, bit 7 two-byte profile; the OSN is `back` before the layer's last sequence
//   12-15 as 1
// Never crashes, never leaks or double-returns a buffer, never writes past a slot, keeps its
// gauges from wrapping, emits only events that decode (route reports naming a layer the track
// can have, layer masks of those layers, RFC 6464 audio levels), and sends only SRTP the
// browser it goes to can authenticate and then parse, the probes' padding included.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/shm/media.hpp"

namespace {
using namespace ringlane;

constexpr std::uint32_t kSlotSize = 2048;
constexpr std::uint32_t kTxOffset = 128;
constexpr std::uint32_t kUringRxOffset = 108;  // 64 + io_uring_recvmsg_out + sockaddr_in6
constexpr std::size_t kSlots = 48;
constexpr std::size_t kMaxSteps = 64;
// Datagrams and timer ticks the simulcast steps may spend on one input, so each stays fast.
constexpr std::size_t kBudget = 1500;

// The simulcast track and the extension ids of its publisher (RFC 8285 one-byte ids).
constexpr std::uint32_t kSimTrack = 0x5000;
constexpr std::array<std::uint32_t, 3> kLayerSsrc = {0x1000, 0x2000, 0x3000};
constexpr std::array<std::uint32_t, 3> kLayerRtx = {0x1001, 0x2001, 0x3001};
constexpr std::array<std::string_view, 4> kRids = {"q", "h", "f", "x"};  // "x" names no layer
constexpr std::string_view kMid = "v";
constexpr std::uint8_t kMidExt = 1;
constexpr std::uint8_t kRidExt = 2;
constexpr std::uint8_t kRepairedRidExt = 3;
constexpr std::uint8_t kTwccExt = 5;
constexpr std::uint8_t kSimPt = 98;
constexpr std::uint8_t kSimRtxPt = 99;
// ... and as the subscriber receives it.
constexpr std::uint32_t kSubSim = 0x5555;
constexpr std::uint32_t kSubSimRtx = 0x5556;
constexpr std::uint8_t kSubSimPt = 102;
constexpr std::uint8_t kSubSimRtxPt = 103;
constexpr std::uint8_t kSubTwccExt = 7;
constexpr std::uint32_t kSubReportSsrc = 0x0BAD5EED;  // the subscriber's own RTCP SSRC
// What the subscriber's feedback steps name (a byte & 7): the SSRCs it receives (simulcast and
// its RTX, plain video and its RTX, audio), a publisher-side SSRC, zero, a stranger.
constexpr std::array<std::uint32_t, 8> kSubSsrcs = {kSubSim, kSubSimRtx,    0x2222, 0x2223,
                                                    0x4444,  kLayerSsrc[0], 0,      0xDEADBEEF};

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// A step's payload read field by field; what is past its end reads as zero.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> p) : p_(p) {}
  std::uint8_t u8() { return at_ < p_.size() ? p_[at_++] : 0; }
  std::uint16_t u16() {
    std::uint16_t hi = u8();
    return static_cast<std::uint16_t>((hi << 8) | u8());
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  std::int8_t i8() { return static_cast<std::int8_t>(u8()); }
  std::span<const std::uint8_t> rest(std::size_t most = 1100) {
    auto r = p_.subspan(at_, std::min(most, p_.size() - at_));
    at_ = p_.size();
    return r;
  }

 private:
  std::span<const std::uint8_t> p_;
  std::size_t at_ = 0;
};

// An RFC 8285 header extension element (what the harness sends holds at most 20 bytes).
struct Element {
  std::uint8_t id = 0;
  std::uint8_t size = 0;
  std::array<std::uint8_t, 20> value{};
};

Element element(std::uint8_t id, Bytes value) {
  Element e;
  e.id = id;
  e.size = static_cast<std::uint8_t>(std::min(value.size(), e.value.size()));
  std::memcpy(e.value.data(), value.data(), e.size);
  return e;
}

Element element(std::uint8_t id, std::string_view text) {
  return element(id, as_bytes(text));
}

// A transport-wide sequence number element (2 bytes; `size` other than 2 is a wrong one).
Element transport_seq(std::uint16_t seq, std::size_t size = 2) {
  Element e;
  e.id = kTwccExt;
  e.size = static_cast<std::uint8_t>(size);
  e.value.fill(0x55);
  store_be16(e.value.data(), seq);
  return e;
}

// A few elements, in the order they go into the block.
struct Elements {
  std::array<Element, 6> e;
  std::size_t n = 0;
  void add(const Element& x) {
    if (n < e.size()) {
      e[n++] = x;
    }
  }
};

// RTP (RFC 3550 §5.1) with an RFC 8285 extension block when `block`, one-byte (§4.2: values
// of 1-16 bytes) or two-byte (§4.3: 0-255), and `padding` bytes of padding.
std::vector<std::uint8_t> rtp_packet(std::uint32_t ssrc, std::uint8_t pt, std::uint16_t seq,
                                     std::uint32_t ts, bool marker, bool block, bool two_byte,
                                     const Elements& ext, Bytes payload, std::uint8_t padding) {
  std::array<std::uint8_t, 4 + 6 * 22 + 3> b{};  // the block's header, elements, padding
  std::size_t n = 4;
  for (std::size_t i = 0; i < ext.n; ++i) {
    const Element& e = ext.e[i];
    if (two_byte) {
      b[n++] = e.id;
      b[n++] = e.size;
      std::memcpy(&b[n], e.value.data(), e.size);
      n += e.size;
    } else {
      std::size_t size = std::clamp<std::size_t>(e.size, 1, 16);  // an empty one: a zero byte
      b[n++] = static_cast<std::uint8_t>((e.id << 4) | (size - 1));
      std::memcpy(&b[n], e.value.data(), size);
      n += size;
    }
  }
  n = (n + 3) / 4 * 4;
  store_be16(&b[0], two_byte ? rtp::RtpPacket::kTwoByteProfile : rtp::RtpPacket::kOneByteProfile);
  store_be16(&b[2], static_cast<std::uint16_t>(n / 4 - 1));
  if (!block) {
    n = 0;
  }
  std::vector<std::uint8_t> p(12 + n + payload.size() + padding, 0);
  p[0] = static_cast<std::uint8_t>(0x80 | (block ? 0x10 : 0) | (padding != 0 ? 0x20 : 0));
  p[1] = static_cast<std::uint8_t>((marker ? 0x80 : 0) | (pt & 0x7F));
  store_be16(&p[2], seq);
  store_be32(&p[4], ts);
  store_be32(&p[8], ssrc);
  std::memcpy(&p[12], b.data(), n);
  if (!payload.empty()) {
    std::memcpy(&p[12 + n], payload.data(), payload.size());
  }
  if (padding != 0) {
    p.back() = padding;
  }
  return p;
}

// Bytes that fill a payload after its descriptor.
Bytes filler(std::size_t n) {
  static const auto bytes = [] {
    std::array<std::uint8_t, 1100> a{};
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    return a;
  }();
  return Bytes(bytes.data(), std::min(n, bytes.size()));
}

// A layer as the publisher numbers it.
struct Layer {
  std::uint32_t ssrc;
  std::uint32_t rtx_ssrc;
  std::uint16_t sequence;  // the last one sent
  std::uint32_t timestamp;
  std::uint16_t picture_id;
  std::uint8_t tl0picidx;
  std::uint8_t keyidx = 0;
  std::uint16_t rtx_sequence = 0;
};

// A payload that looks like `look`: 0 VP8 with every descriptor field (RFC 7741 §4.2), 1 VP8
// with a 7-bit picture id, 2 VP8 with no extension, 3 VP9 non-flexible with layer indices (RFC
// 9628 §4.2), 4 an H264 NAL unit (RFC 6184 §5.6), 5 a STAP-A of SPS and PPS (§5.7.1), 6 an FU-A
// (§5.8), 7 AV1 (its RTP format §4.4); of a keyframe when `key`, the frame's first packet when
// `start`; then `body`.
std::vector<std::uint8_t> media_payload(int look, bool key, bool start, const Layer& l,
                                        Bytes body) {
  std::vector<std::uint8_t> p;
  auto pid = static_cast<std::uint16_t>(l.picture_id & 0x7FFF);
  std::uint8_t s = start ? 0x10 : 0;
  switch (look & 7) {
    case 0:
      p = {static_cast<std::uint8_t>(0x80 | s),
           0xF0,
           static_cast<std::uint8_t>(0x80 | (pid >> 8)),
           static_cast<std::uint8_t>(pid),
           l.tl0picidx,
           static_cast<std::uint8_t>(0x20 | (l.keyidx & 0x1F))};
      break;
    case 1:
      p = {static_cast<std::uint8_t>(0x80 | s), 0x80, static_cast<std::uint8_t>(pid & 0x7F)};
      break;
    case 2:
      p = {s};
      break;
    case 3:
      p = {static_cast<std::uint8_t>(0xA0 | (key ? 0 : 0x40) | (start ? 0x08 : 0)),
           static_cast<std::uint8_t>(0x80 | (pid >> 8)), static_cast<std::uint8_t>(pid), 0x00,
           l.tl0picidx};
      break;
    case 4:
      p = {static_cast<std::uint8_t>(key ? 0x65 : 0x41)};
      break;
    case 5:
      p = key ? std::vector<std::uint8_t>{0x78, 0, 4, 0x67, 0x42, 0, 0x1F, 0, 2, 0x68, 0xCE}
              : std::vector<std::uint8_t>{0x78, 0, 2, 0x06, 0x05, 0, 1, 0x41};
      break;
    case 6:
      p = {0x7C, static_cast<std::uint8_t>((start ? 0x80 : 0) | (key ? 5 : 1))};
      break;
    default:
      p = {static_cast<std::uint8_t>((start ? 0 : 0x80) | 0x10 | (key && start ? 0x08 : 0)),
           static_cast<std::uint8_t>(key ? 0x0A : 0x32)};
      break;
  }
  if ((look & 7) <= 2 && start) {
    // RFC 7741 §4.3: the VP8 payload header, P (bit 0) clear on a keyframe, then its start code.
    if (key) {
      p.insert(p.end(), {0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A});
    } else {
      p.push_back(0x11);
    }
  }
  p.insert(p.end(), body.begin(), body.end());
  return p;
}

// The descriptor a codec's stream carries.
int look_of(shm::Codec codec, bool key, bool start) {
  switch (codec) {
    case shm::Codec::kVp9:
      return 3;
    case shm::Codec::kH264:
      return key && start ? 5 : start ? 4 : 6;
    case shm::Codec::kAv1:
      return 7;
    default:
      return 0;
  }
}

struct Sent {
  Endpoint to;
  std::vector<std::uint8_t> bytes;
};

class Output final : public sfu::Output {
 public:
  Output() {
    for (auto& s : slots_) {
      s = std::make_unique<std::uint8_t[]>(kSlotSize);  // its own allocation: ASan sees overruns
    }
  }
  std::optional<io::BufferId> acquire(PacketBuffer& out) override { return take(out, kTxOffset); }
  void send(SocketId, const Endpoint& to, const PacketBuffer& pkt, io::BufferId id) override {
    give_back(id);
    check(pkt.base == slots_[id.value].get() && pkt.offset <= kSlotSize &&
          pkt.length <= kSlotSize - pkt.offset);
    sent.push_back(Sent{to, {pkt.data(), pkt.data() + pkt.length}});
  }
  void release(io::BufferId id) override { give_back(id); }
  void event(shm::Event type, std::span<const std::uint8_t> payload) override {
    if (type == shm::Event::kRouteReport) {
      auto r = shm::decode_route_report(payload);
      check(r.has_value());
      // A layer the track can have, or none (a plain track, or nothing chosen or sent yet).
      check(r->layer < shm::kMaxLayers || r->layer == 0xFF);
      check(r->target < shm::kMaxLayers || r->target == 0xFF);
      reports.push_back(*r);
      return;
    }
    if (type == shm::Event::kLayersActive) {
      auto m = shm::decode_layers_active(payload);
      check(m.has_value() && m->mask < (1u << shm::kMaxLayers));
      return;
    }
    if (type == shm::Event::kAudioLevels) {
      check(shm::decode_audio_levels(payload).has_value());  // RFC 6464 levels, at most kMax
      return;
    }
    check(type == shm::Event::kSessionEvent);
    auto e = shm::decode_session_event(payload);
    check(e.has_value());
    events.push_back(*e);
  }
  std::optional<io::BufferId> take(PacketBuffer& out, std::uint32_t offset) {
    for (std::size_t i = 0; i < kSlots; ++i) {
      if (!busy_[i]) {
        busy_[i] = true;
        out = PacketBuffer{slots_[i].get(), kSlotSize, offset, 0};
        return io::BufferId{static_cast<std::uint32_t>(i)};
      }
    }
    return std::nullopt;
  }
  bool idle() const {
    for (bool b : busy_) {
      if (b) {
        return false;
      }
    }
    return true;
  }
  std::vector<Sent> sent;
  std::vector<shm::SessionEvent> events;
  std::vector<shm::RouteReport> reports;

 private:
  void give_back(io::BufferId id) {
    check(id.value < kSlots && busy_[id.value]);
    busy_[id.value] = false;
  }
  std::array<std::unique_ptr<std::uint8_t[]>, kSlots> slots_;
  std::array<bool, kSlots> busy_{};
};

struct Credentials {
  shm::SessionId id;
  std::string ufrag;
  std::string pwd;
};

// A browser end of one of the two set-up sessions.
struct Browser {
  std::shared_ptr<const crypto::DtlsCertificate> cert;
  Credentials creds;
  Endpoint home;
  std::unique_ptr<crypto::DtlsEndpoint> dtls;
  std::unique_ptr<crypto::SrtpSession> tx;
  std::unique_ptr<crypto::SrtpSession> rx;
  bool engine_connected = false;  // the engine said kDtlsConnected and has not closed it since
};

struct Statics {
  std::shared_ptr<const crypto::DtlsCertificate> engine_cert = crypto::DtlsCertificate::generate();
  std::shared_ptr<const crypto::DtlsCertificate> pub_cert = crypto::DtlsCertificate::generate();
  std::shared_ptr<const crypto::DtlsCertificate> sub_cert = crypto::DtlsCertificate::generate();
  std::array<Endpoint, 4> addresses = {
      *Endpoint::parse("10.0.0.1:5000"), *Endpoint::parse("10.0.0.2:5002"),
      *Endpoint::parse("10.0.0.3:6000"), *Endpoint::parse("[2001:db8::9]:7000")};
};

class Harness {
 public:
  explicit Harness(const Statics& st) : st_(st), engine_(config(st), out_) {
    pub_.cert = st.pub_cert;
    pub_.creds = {shm::SessionId{1}, "pubufrag", "publisher-password-0123"};
    pub_.home = st.addresses[0];
    sub_.cert = st.sub_cert;
    sub_.creds = {shm::SessionId{2}, "subufrag", "subscriber-password-012"};
    sub_.home = st.addresses[1];
    last_created_ = {shm::SessionId{3}, "none", "none"};

    shm::SessionCreate p{pub_.creds.id, false, pub_.creds.ufrag, pub_.creds.pwd,
                         *shm::fingerprint_bytes(st.pub_cert->fingerprint())};
    command(shm::Command::kSessionCreate, shm::encode(p));
    // The subscriber's fingerprint comes later (kSessionRemote), as when it is created first.
    shm::SessionCreate s{sub_.creds.id, false, sub_.creds.ufrag, sub_.creds.pwd, {}};
    command(shm::Command::kSessionCreate, shm::encode(s));
    auto track = [&](std::uint32_t ssrc, std::uint32_t rtx_ssrc, shm::MediaKind kind,
                     std::uint8_t pt, std::uint8_t rtx_pt, std::uint32_t clock) {
      shm::TrackAdd t;
      t.session = pub_.creds.id;
      t.ssrc = ssrc;
      t.rtx_ssrc = rtx_ssrc;
      t.kind = kind;
      t.payload_type = pt;
      t.rtx_payload_type = rtx_pt;
      t.clock_rate = clock;
      return t;
    };
    command(shm::Command::kTrackAdd,
            shm::encode(track(0x1111, 0x1112, shm::MediaKind::kVideo, 96, 97, 90000)));
    command(shm::Command::kTrackAdd,
            shm::encode(track(0x3333, 0, shm::MediaKind::kAudio, 111, 0, 48000)));
    shm::Subscribe video{sub_.creds.id, pub_.creds.id, 0x1111, 0x2222, 0x2223, 100, 101, {}, 0};
    video.extensions[13] = 3;
    video.extensions[2] = 2;
    video.extensions[kTwccExt] = kSubTwccExt;
    command(shm::Command::kSubscribe, shm::encode(video));
    shm::Subscribe audio{sub_.creds.id, pub_.creds.id, 0x3333, 0x4444, 0, 111, 0, {}, 0};
    command(shm::Command::kSubscribe, shm::encode(audio));
    publish_simulcast(shm::Codec::kVp8, 3, std::string(kMid));
    subscribe_simulcast(true, true);
    ice(pub_.creds, 0, st.addresses[0], SocketId{0});
    ice(sub_.creds, 0, st.addresses[1], SocketId{0});
    settle();
  }

  void step(std::uint8_t op, std::span<const std::uint8_t> p) {
    if (op & 0x80) {
      Reader r(p);
      simulcast_step(op & 0x0F, r);
      settle();
      check(out_.idle());
      return;
    }
    switch (op & 7) {
      case 0:
        if (!p.empty()) {
          command(static_cast<shm::Command>(10 + p[0] % 11), p.subspan(1));
        }
        break;
      case 7: {
        // An ICE restart of one browser's session; its checks then sign with the new
        // credentials (the engine still answers the old ones until the new ones are used).
        Browser& b = (op & 8) ? sub_ : pub_;
        shm::SessionIceRestart r{b.creds.id, b.creds.ufrag + "r", b.creds.pwd + "r"};
        if (r.ice_ufrag.size() < shm::kMaxIceUfrag &&
            engine_.on_command(shm::Command::kSessionIceRestart, shm::encode(r), now_)) {
          b.creds.ufrag = r.ice_ufrag;
          b.creds.pwd = r.ice_pwd;
        }
        break;
      }
      case 2: {
        std::uint8_t flags = p.empty() ? 0 : p[0];
        const Credentials& c = (flags & 3) == 0   ? pub_.creds
                               : (flags & 3) == 1 ? sub_.creds
                               : (flags & 3) == 2 ? last_created_
                                                  : unknown_;
        ice(c, flags, st_.addresses[(op >> 3) & 3], SocketId{(op >> 5) & 1u});
        break;
      }
      case 3: {
        std::uint64_t ms = p.size() >= 2 ? load_be16(p.data()) : 50;
        advance_us(static_cast<std::int64_t>(ms) * 1000);
        engine_.on_timer(now_);
        break;
      }
      case 4:
        handshake((op & 8) ? sub_ : pub_);
        break;
      case 5:
      case 6: {
        Browser& b = (op & 8) ? sub_ : pub_;
        from_browser(b, {p.begin(), p.end()}, (op & 7) == 6,
                     (op & 0x40) ? kUringRxOffset : kTxOffset);
        break;
      }
      default:
        deliver(st_.addresses[(op >> 3) & 3], p, SocketId{(op >> 5) & 1u},
                (op & 0x40) ? kUringRxOffset : kTxOffset);
        break;
    }
    settle();
    check(out_.idle());  // the engine keeps no buffer past the call it was given one in
  }

  void finish() {
    settle();
    check(out_.idle());
  }

 private:
  static sfu::EngineConfig config(const Statics& st) {
    sfu::EngineConfig c;
    c.certificate = st.engine_cert;
    c.max_sessions = 16;
    return c;
  }

  void publish_simulcast(shm::Codec codec, std::size_t rids, std::string mid) {
    shm::TrackAdd t;
    t.session = pub_.creds.id;
    t.ssrc = kSimTrack;
    t.kind = shm::MediaKind::kVideo;
    t.payload_type = kSimPt;
    t.rtx_payload_type = kSimRtxPt;
    t.clock_rate = 90000;
    t.codec = codec;
    for (std::size_t i = 0; i < rids; ++i) {
      t.rids.emplace_back(kRids[i]);
    }
    t.rid_extension = kRidExt;
    t.repaired_rid_extension = kRepairedRidExt;
    t.transport_cc_extension = kTwccExt;
    t.mid_extension = kMidExt;
    t.mid = std::move(mid);
    command(shm::Command::kTrackAdd, shm::encode(t));
    codec_ = codec;
  }

  void subscribe_simulcast(bool transport_cc, bool rtx) {
    shm::Subscribe s{sub_.creds.id, pub_.creds.id, kSimTrack, kSubSim, rtx ? kSubSimRtx : 0,
                     kSubSimPt,     kSubSimRtxPt,  {},        0};
    s.extensions[kMidExt] = 1;
    s.extensions[kTwccExt] = kSubTwccExt;
    s.transport_cc_extension = transport_cc ? kSubTwccExt : 0;
    command(shm::Command::kSubscribe, shm::encode(s));
  }

  void command(shm::Command type, std::span<const std::uint8_t> payload) {
    bool ok = engine_.on_command(type, payload, now_);
    if (!ok) {
      return;
    }
    // Mirror what the harness needs to know: credentials to sign checks with, and which of
    // its browsers' sessions the engine no longer has keys for.
    if (type == shm::Command::kSessionCreate) {
      auto c = shm::decode_session_create(payload);
      check(c.has_value());
      last_created_ = {c->session, c->ice_ufrag, c->ice_pwd};
    } else if (type == shm::Command::kSessionClose) {
      auto c = shm::decode_session_close(payload);
      check(c.has_value());
      for (Browser* b : {&pub_, &sub_}) {
        if (b->creds.id == c->session) {
          b->engine_connected = false;
        }
      }
    }
  }

  void advance_us(std::int64_t us) {
    now_.mono_us = now_.us() + us;
    now_.mono_ms = static_cast<std::uint64_t>(now_.mono_us / 1000);
    now_.unix_s = static_cast<std::int64_t>(now_.mono_ms / 1000);
  }

  void ice(const Credentials& c, std::uint8_t flags, const Endpoint& from, SocketId socket) {
    std::array<std::uint8_t, 512> buf{};
    stun::TransactionId tid{};
    tid[0] = ++tid_;
    stun::Builder b(buf, stun::Method::kBinding, stun::Class::kRequest, tid);
    b.add_string(stun::attr::kUsername, c.ufrag + ":browser");
    b.add_u32(stun::attr::kPriority, 0x6E7F1EFF);
    b.add_u64((flags & 4) ? stun::attr::kIceControlled : stun::attr::kIceControlling, 42);
    if (flags & 8) {
      b.add_bytes(stun::attr::kUseCandidate, {});
    }
    std::string pwd = (flags & 32) ? c.pwd + "!" : c.pwd;
    b.add_integrity(as_bytes(pwd));
    if (!(flags & 16)) {
      b.add_fingerprint();
    }
    check(b.ok());
    deliver(from, b.bytes(), socket, kTxOffset);
  }

  void deliver(const Endpoint& from, std::span<const std::uint8_t> data, SocketId socket,
               std::uint32_t offset) {
    PacketBuffer pkt;
    auto id = out_.take(pkt, offset);
    check(id.has_value());  // every earlier step returned its buffers
    std::size_t n = std::min<std::size_t>(data.size(), kSlotSize - offset);
    std::copy(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), pkt.data());
    pkt.length = static_cast<std::uint32_t>(n);
    engine_.on_datagram(socket, from, pkt, *id, now_);
  }

  // The browser's RTP or RTCP from its own address, protected with its keys when it has them.
  void from_browser(Browser& b, std::vector<std::uint8_t> wire, bool rtcp,
                    std::uint32_t offset = kTxOffset) {
    if (b.tx) {
      std::size_t n = wire.size();
      wire.resize(n + crypto::SrtpSession::kMaxTrailer);
      auto len = rtcp ? b.tx->protect_rtcp(wire, n) : b.tx->protect_rtp(wire, n);
      wire.resize(len ? *len : n);
    }
    deliver(b.home, wire, SocketId{0}, offset);
  }

  // A simulcast step may spend from the input's budget; the browser's handshake comes first.
  bool ready(Browser& b) {
    if (budget_ == 0) {
      return false;
    }
    --budget_;
    if (!b.tx) {
      handshake(b);
    }
    return b.tx != nullptr;
  }

  // What the engine sent so far is checked, and it holds no buffer.
  void pump() {
    settle();
    check(out_.idle());
  }

  // Real DTLS with the browser as the client; the engine's session then has keys.
  void handshake(Browser& b) {
    if (b.engine_connected || handshakes_ >= 2) {
      return;  // a second handshake on a connected session is not a browser's behaviour
    }
    ++handshakes_;
    if (&b == &sub_) {
      shm::SessionRemote r{sub_.creds.id, false, *shm::fingerprint_bytes(sub_.cert->fingerprint())};
      command(shm::Command::kSessionRemote, shm::encode(r));
    }
    b.tx.reset();
    b.rx.reset();
    b.dtls = std::make_unique<crypto::DtlsEndpoint>(b.cert, crypto::DtlsRole::kClient,
                                                    st_.engine_cert->fingerprint());
    b.dtls->start();
    std::vector<std::uint8_t> d;
    for (int round = 0; round < 12; ++round) {
      bool moved = false;
      while (b.dtls->pop(d)) {
        deliver(b.home, d, SocketId{0}, kTxOffset);
        moved = true;
      }
      std::vector<Sent> sent = std::move(out_.sent);
      out_.sent.clear();
      for (auto& s : sent) {
        if (rtp::classify(s.bytes) == rtp::PacketKind::kDtls) {
          b.dtls->on_datagram(s.bytes);
          moved = true;
        } else {
          out_.sent.push_back(std::move(s));
        }
      }
      if (!moved) {
        break;
      }
    }
    if (b.dtls->state() == crypto::DtlsState::kConnected) {
      auto profile = b.dtls->srtp_profile();
      auto material = b.dtls->srtp_keying_material();
      check(profile && material);
      auto m = crypto::split_srtp_keying_material(*profile, *material, true);
      check(m.has_value());
      b.tx = crypto::SrtpSession::create(*profile, m->local, crypto::SrtpDirection::kOutbound);
      b.rx = crypto::SrtpSession::create(*profile, m->remote, crypto::SrtpDirection::kInbound);
      check(b.tx && b.rx);
    }
  }

  // Looks at what the engine emitted since the last step.
  void settle() {
    for (const auto& e : out_.events) {
      for (Browser* b : {&pub_, &sub_}) {
        if (b->creds.id == e.session) {
          b->engine_connected =
              e.state == shm::SessionState::kDtlsConnected ||
              (b->engine_connected && e.state == shm::SessionState::kIceConnected);
        }
      }
    }
    out_.events.clear();
    out_.reports.clear();
    for (auto& s : out_.sent) {
      auto kind = rtp::classify(s.bytes);
      if (kind != rtp::PacketKind::kRtp && kind != rtp::PacketKind::kRtcp) {
        continue;
      }
      // SRTP the engine sends is protected with the keys of a session one of the browsers
      // negotiated; it must authenticate under one of them (a replay is not a forgery: the
      // engine may send an index twice, as a retransmission).
      bool tried = false;
      bool ok = false;
      bool replay = false;
      std::array<Browser*, 2> order = {&pub_, &sub_};
      if (s.to == sub_.home) {
        std::swap(order[0], order[1]);  // the likelier one first: one authentication, not two
      }
      for (Browser* b : order) {
        if (!b->rx || ok) {
          continue;
        }
        tried = true;
        std::vector<std::uint8_t> copy = s.bytes;
        auto before = b->rx->counters();
        auto len = kind == rtp::PacketKind::kRtp ? b->rx->unprotect_rtp(copy, copy.size())
                                                 : b->rx->unprotect_rtcp(copy, copy.size());
        ok = len.has_value();
        replay = replay || b->rx->counters().replay_failures != before.replay_failures;
        if (ok) {
          copy.resize(*len);
          received(*b, kind, copy);
        }
      }
      check(!tried || ok || replay);
    }
    out_.sent.clear();
    const sfu::Counters& c = engine_.counters();
    constexpr std::uint64_t kSane = 1u << 20;
    check(c.sessions <= 16 && c.sessions_connected <= c.sessions && c.tracks < kSane &&
          c.subscriptions < kSane);
  }

  // A packet a browser decrypted: whole (what the engine forwards it parsed on the way in, and
  // its rewrites keep the layout; its RTCP it builds or copies whole). The subscriber notes
  // what it got, for its NACKs and transport-cc feedback.
  void received(Browser& b, rtp::PacketKind kind, std::vector<std::uint8_t>& plain) {
    if (kind == rtp::PacketKind::kRtcp) {
      check(rtcp::Compound::parse(plain).has_value());
      return;
    }
    auto p = rtp::RtpPacket::parse(plain);
    check(p.has_value());
    if (&b != &sub_) {
      return;
    }
    last_sequence_[p->ssrc()] = p->sequence();
    auto t = p->extension(kSubTwccExt);
    if (!t || t->size() != 2) {
      return;
    }
    bool lost = link_loss_every_ != 0 && ++link_packets_ % link_loss_every_ == 0;
    if (arrivals_.size() >= 4096) {
      arrivals_.erase(arrivals_.begin(), arrivals_.begin() + 1024);
    }
    arrivals_.push_back(Arrival{load_be16(t->data()), lost ? -1 : now_.us() + link_delay_us_});
  }

  void simulcast_step(std::uint8_t kind, Reader& r) {
    switch (kind) {
      case 0:
        layer_rtp(r);
        break;
      case 1:
        stream(r);
        break;
      case 2:
        transport_cc(r);
        break;
      case 3:
        raw_rtcp(r);
        break;
      case 4:
        receiver_report(r);
        break;
      case 5:
        nack(r);
        break;
      case 6:
        keyframe_request(r);
        break;
      case 7:
        route_layer(r);
        break;
      case 8:
        run_clock(r);
        break;
      case 9:
        republish(r);
        break;
      case 10:
        sender_report(r);
        break;
      case 11:
        layer_rtx(r);
        break;
      default:
        stream(r);
        break;
    }
  }

  void layer_rtp(Reader& r) {
    std::uint8_t shape = r.u8();
    std::uint8_t ext = r.u8();
    std::uint8_t look = r.u8();
    std::int8_t step = r.i8();
    Bytes body = r.rest();
    if (!ready(pub_)) {
      return;
    }
    Layer& l = layers_[shape & 3];
    if (shape & 0x20) {
      l.ssrc ^= 0x00010000;  // the encoding restarted: same rid, new SSRC and numbering
    }
    l.sequence = static_cast<std::uint16_t>(l.sequence + (step == 0 ? 1 : step));
    bool two_byte = (shape & 0x04) != 0;
    int wrong = ext >> 6;
    std::string_view rid = kRids[shape & 3];
    Elements e;
    if (ext & 0x10) {
      std::array<std::uint8_t, 20> junk;
      junk.fill(0xAB);
      e.add(two_byte ? element(200, junk) : element(15, Bytes(junk.data(), 1)));
    }
    if (!(ext & 0x02)) {
      e.add(element(kMidExt, wrong == 3 ? std::string_view("w") : kMid));
    }
    if (!(ext & 0x01)) {
      std::string wrong_rid = two_byte ? std::string() : std::string(rid) + "x";
      e.add(element(kRidExt, wrong == 1 ? std::string_view(wrong_rid) : rid));
    }
    if (ext & 0x08) {
      e.add(element(kRepairedRidExt, rid));
    }
    if (!(ext & 0x04)) {
      e.add(transport_seq(pub_twcc_++, wrong != 2 ? 2 : (l.sequence & 1) ? 1 : 3));
    }
    bool key = !(shape & 0x40);
    std::vector<std::uint8_t> payload =
        (shape & 0x80)
            ? std::vector<std::uint8_t>(body.begin(), body.end())
            : media_payload(look & 7, key, !(look & 0x08), l, body.empty() ? filler(80) : body);
    std::uint8_t padding = (shape & 0x10) ? static_cast<std::uint8_t>(1 + body.size() % 40) : 0;
    bool marker = (shape & 0x08) != 0;
    from_browser(pub_,
                 rtp_packet(l.ssrc, kSimPt, l.sequence, l.timestamp, marker, !(ext & 0x20),
                            two_byte, e, payload, padding),
                 false, (look & 0x80) ? kUringRxOffset : kTxOffset);
    if (marker) {
      next_frame(l, key, 33);
    }
  }

  static void next_frame(Layer& l, bool key, std::uint64_t frame_ms) {
    l.timestamp += static_cast<std::uint32_t>(90 * frame_ms);
    l.picture_id = static_cast<std::uint16_t>((l.picture_id + 1) & 0x7FFF);
    ++l.tl0picidx;
    if (key) {
      ++l.keyidx;
    }
  }

  // One packet of a frame with every extension right, as a browser sends it.
  void frame_packet(Layer& l, std::size_t layer, bool key, bool start, bool marker,
                    std::size_t bytes) {
    Elements e;
    e.add(element(kMidExt, kMid));
    e.add(element(kRidExt, kRids[layer]));
    e.add(transport_seq(pub_twcc_++));
    l.sequence = static_cast<std::uint16_t>(l.sequence + 1);
    auto payload = media_payload(look_of(codec_, key, start), key, start, l, filler(bytes));
    from_browser(
        pub_,
        rtp_packet(l.ssrc, kSimPt, l.sequence, l.timestamp, marker, true, false, e, payload, 0),
        false);
    advance_us(100);  // the browser's pacer spaces a frame's packets
    pump();
  }

  // The RTX (RFC 4588 §4) of a layer's packet `back` before its last: the OSN, then a payload.
  void rtx_packet(Layer& l, std::size_t layer, std::uint8_t shape, std::uint8_t back, Bytes body) {
    Elements e;
    e.add(element(kMidExt, kMid));
    if (!(shape & 0x08)) {
      e.add(element((shape & 0x10) ? kRidExt : kRepairedRidExt, kRids[layer]));
    }
    if (!(shape & 0x20)) {
      e.add(transport_seq(pub_twcc_++));
    }
    std::vector<std::uint8_t> payload;
    std::uint8_t padding = 0;
    if (shape & 0x04) {
      padding = std::max<std::uint8_t>(1, back);  // padding only: a probe of the publisher's own
    } else {
      payload = {0, 0};
      store_be16(payload.data(), static_cast<std::uint16_t>(l.sequence - back));
      auto media = media_payload(look_of(codec_, (shape & 0x40) != 0, true), (shape & 0x40) != 0,
                                 true, l, body.empty() ? filler(60) : body);
      payload.insert(payload.end(), media.begin(), media.end());
    }
    l.rtx_sequence = static_cast<std::uint16_t>(l.rtx_sequence + 1);
    from_browser(pub_,
                 rtp_packet(l.rtx_ssrc, kSimRtxPt, l.rtx_sequence, l.timestamp, false, true,
                            (shape & 0x80) != 0, e, payload, padding),
                 false);
  }

  void layer_rtx(Reader& r) {
    std::uint8_t shape = r.u8();
    std::uint8_t back = r.u8();
    Bytes body = r.rest();
    if (ready(pub_)) {
      rtx_packet(layers_[shape & 3], shape & 3, shape, back, body);
    }
  }

  // The publisher's frames on the layers, a timer tick after each, and the subscriber's
  // feedback on what reached it over the modelled link.
  void stream(Reader& r) {
    std::uint8_t flags = r.u8();
    std::size_t frames = r.u8();
    std::uint64_t frame_ms = r.u8();
    std::uint8_t size = r.u8();
    std::uint8_t key_every = r.u8();
    std::uint8_t feedback_every = r.u8();
    std::uint8_t stopping = r.u8();
    if (!ready(pub_) || !ready(sub_)) {
      return;
    }
    frames = frames == 0 ? 15 : std::min<std::size_t>(frames, 120);
    frame_ms = frame_ms == 0 ? 33 : frame_ms;
    feedback_every = feedback_every == 0 ? 2 : feedback_every;
    std::uint8_t mask = (flags & 7) != 0 ? flags & 7 : 7;
    link_loss_every_ = (flags & 0x20) ? 5 : 0;
    // Packets per frame and their size: the layers' bitrates from ~100 kbit/s for "q" at the
    // smallest to ~5 Mbit/s for "f" at the largest.
    constexpr std::array<std::size_t, 3> kPackets = {1, 2, 5};
    std::size_t per = 1 + (size & 3);
    std::size_t bytes = 400 + (size >> 2) * 11u;
    for (std::size_t f = 0; f < frames && budget_ > 0; ++f) {
      for (std::size_t i = 0; i < 3; ++i) {
        bool stopped = ((stopping >> i) & 1) != 0 && f >= frames / 2;
        if (!((mask >> i) & 1) || stopped) {
          continue;
        }
        Layer& l = layers_[i];
        bool key = (f == 0 && !(flags & 0x40)) || (key_every != 0 && f % key_every == 0);
        std::size_t n = kPackets[i] * per;
        for (std::size_t k = 0; k < n && budget_ > 0; ++k, --budget_) {
          frame_packet(l, i, key, k == 0, k + 1 == n, bytes);
        }
        if (flags & 0x80) {
          rtx_packet(l, i, 0, static_cast<std::uint8_t>(n - 1), {});
          pump();
        }
        next_frame(l, key, frame_ms);
      }
      if (flags & 0x10) {
        link_delay_us_ += 4'000;  // a queue builds on the link: the trendline sees overuse
      } else if (link_delay_us_ > 20'000) {
        link_delay_us_ -= 1'000;
      }
      if (!(flags & 0x08) && f % feedback_every == feedback_every - 1u) {
        feedback();
      }
      tick(frame_ms, true);
    }
  }

  // Time passing in steps of at most 50 ms (the worker's timer), consent kept by the browsers.
  void tick(std::uint64_t ms, bool keepalive) {
    while (ms > 0 && budget_ > 0) {
      --budget_;
      std::uint64_t d = std::min<std::uint64_t>(ms, 50);
      ms -= d;
      advance_us(static_cast<std::int64_t>(d) * 1000);
      if (keepalive && now_.mono_ms - last_keepalive_ms_ >= 2500) {
        last_keepalive_ms_ = now_.mono_ms;
        ice(pub_.creds, 0, pub_.home, SocketId{0});
        ice(sub_.creds, 0, sub_.home, SocketId{0});
      }
      engine_.on_timer(now_);
      pump();
    }
  }

  void run_clock(Reader& r) {
    std::uint64_t total = r.u16();
    std::uint64_t each = r.u8();
    std::uint8_t flags = r.u8();
    total = total == 0 ? 1000 : total;
    each = each == 0 ? 50 : each;
    for (std::uint64_t t = 0; t < total && budget_ > 0; t += each) {
      tick(each, !(flags & 1));
      if (!(flags & 2)) {
        feedback();
      }
    }
  }

  // The subscriber's transport-cc feedback on every packet that reached it since the last, with
  // the arrival times of the link (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
  void feedback() {
    if (arrivals_.empty() || !sub_.tx) {
      return;
    }
    std::uint16_t base = arrivals_.front().seq;
    std::vector<std::int64_t> at;  // by sequence from base, -1: lost
    for (const Arrival& a : arrivals_) {
      auto i = static_cast<std::uint16_t>(a.seq - base);
      if (i >= 2048) {
        continue;
      }
      if (at.size() <= i) {
        at.resize(i + 1u, -1);
      }
      at[i] = a.at_us;
    }
    arrivals_.clear();
    std::size_t from = 0;
    for (int n = 0; n < 8 && from < at.size(); ++n) {
      // The reference time is the first received packet's, in 64 ms; deltas run in 250 us ticks.
      std::int64_t first = now_.us();
      for (std::size_t i = from; i < at.size(); ++i) {
        if (at[i] >= 0) {
          first = at[i];
          break;
        }
      }
      auto reference = static_cast<std::int32_t>(first / rtcp::kTwccReferenceTickUs);
      std::int64_t previous = reference * rtcp::kTwccReferenceTickUs / rtcp::kTwccDeltaTickUs;
      std::vector<rtcp::TwccPacket> packets;
      for (std::size_t i = from; i < at.size(); ++i) {
        auto seq = static_cast<std::uint16_t>(base + i);
        if (at[i] < 0) {
          packets.push_back({seq, false, 0});
          continue;
        }
        std::int64_t ticks = at[i] / rtcp::kTwccDeltaTickUs;
        packets.push_back({seq, true, (ticks - previous) * rtcp::kTwccDeltaTickUs});
        previous = ticks;
      }
      std::size_t covered = send_transport_cc(static_cast<std::uint16_t>(base + from), reference,
                                              feedback_count_++, kSubSim, packets);
      if (covered == 0) {
        break;
      }
      from += covered;
    }
  }

  std::size_t send_transport_cc(std::uint16_t base, std::int32_t reference, std::uint8_t count,
                                std::uint32_t media, std::span<const rtcp::TwccPacket> packets) {
    std::array<std::uint8_t, 1200> out{};
    std::size_t covered = 0;
    std::size_t n = rtcp::build_transport_cc(out, kSubReportSsrc, media, base, reference, count,
                                             packets, &covered);
    if (n != 0) {
      from_browser(sub_, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)}, true);
      pump();
    }
    return n == 0 ? 0 : covered;
  }

  void transport_cc(Reader& r) {
    std::uint8_t flags = r.u8();
    std::uint16_t base = arrivals_.empty() ? 0 : arrivals_.front().seq;
    base = (flags & 1) ? r.u16() : static_cast<std::uint16_t>(base + r.i8());
    std::int32_t reference =
        static_cast<std::int32_t>(now_.us() / rtcp::kTwccReferenceTickUs) + r.i8();
    std::uint8_t count = (flags & 2) ? r.u8() : feedback_count_++;
    std::uint32_t media = kSubSsrcs[(flags >> 2) & 7];
    Bytes statuses = r.rest();
    if (!ready(sub_)) {
      return;
    }
    std::vector<rtcp::TwccPacket> packets;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      std::uint8_t s = statuses[i];
      std::int64_t delta = (static_cast<std::int64_t>(s & 0x3F) - 8) * rtcp::kTwccDeltaTickUs;
      if ((s & 0x40) && i + 1 < statuses.size()) {
        delta = static_cast<std::int8_t>(statuses[++i]) * rtcp::kTwccDeltaTickUs * 300;
      }
      packets.push_back({static_cast<std::uint16_t>(base + packets.size()), !(s & 0x80), delta});
    }
    if (packets.empty()) {
      for (std::size_t i = 0; i < arrivals_.size(); ++i) {
        packets.push_back({static_cast<std::uint16_t>(base + i), true, 1000});
      }
    }
    std::span<const rtcp::TwccPacket> left(packets);
    for (int n = 0; n < 4 && !left.empty(); ++n) {
      std::size_t covered = send_transport_cc(base, reference, count++, media, left);
      if (covered == 0) {
        break;
      }
      left = left.subspan(covered);
      base = static_cast<std::uint16_t>(base + covered);
    }
    if (!(flags & 0x20)) {
      arrivals_.clear();
    }
  }

  void raw_rtcp(Reader& r) {
    constexpr std::array<std::uint8_t, 8> kTypes = {205, 206, 201, 200, 202, 203, 204, 207};
    std::uint8_t head = r.u8();
    std::uint8_t media = r.u8();
    Bytes body = r.rest();
    if (!ready(sub_)) {
      return;
    }
    std::vector<std::uint8_t> p;
    if (media & 0x80) {
      p.resize(8);  // an empty receiver report first, as a compound begins (RFC 3550 §6.1)
      p[0] = 0x80;
      p[1] = rtcp::kRr;
      store_be16(&p[2], 1);
      store_be32(&p[4], kSubReportSsrc);
    }
    std::uint8_t type = kTypes[head & 7];
    bool feedback = type == rtcp::kRtpfb || type == rtcp::kPsfb;
    std::size_t at = p.size();
    std::size_t words = (feedback ? 2 : 1) + (body.size() + 3) / 4;
    p.resize(at + 4 + words * 4, 0);
    p[at] = static_cast<std::uint8_t>(0x80 | (head >> 3));
    p[at + 1] = type;
    store_be16(&p[at + 2], static_cast<std::uint16_t>(words));
    store_be32(&p[at + 4], kSubReportSsrc);
    if (feedback) {
      store_be32(&p[at + 8], kSubSsrcs[media & 7]);
    }
    std::copy(body.begin(), body.end(),
              p.begin() + static_cast<std::ptrdiff_t>(at + (feedback ? 12 : 8)));
    if (media & 0x40) {
      std::array<std::uint8_t, 12> pli{};
      rtcp::build_pli(pli, kSubReportSsrc, kSubSim);
      p.insert(p.end(), pli.begin(), pli.end());
    }
    from_browser(sub_, p, true);
  }

  void receiver_report(Reader& r) {
    std::size_t n = r.u8() % 32;
    std::vector<rtcp::ReportBlock> blocks(n);
    for (rtcp::ReportBlock& b : blocks) {
      b.ssrc = kSubSsrcs[r.u8() & 7];
      b.fraction_lost = r.u8();
      b.cumulative_lost = static_cast<std::int16_t>(r.u16());
      b.highest_sequence = static_cast<std::uint16_t>(last_sequence_[b.ssrc] + r.u16());
      b.jitter = std::uint32_t{r.u16()} << 4;
      b.last_sr = std::uint32_t{r.u16()} << 8;
      b.delay_since_last_sr = r.u16();
    }
    if (!ready(sub_)) {
      return;
    }
    std::array<std::uint8_t, 8 + 24 * 31> out{};
    std::size_t len = rtcp::build_rr(out, kSubReportSsrc, blocks);
    from_browser(sub_, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(len)}, true);
  }

  void nack(Reader& r) {
    std::uint8_t which = r.u8();
    std::size_t n = std::max<std::size_t>(1, r.u8());
    std::uint32_t media = kSubSsrcs[which & 7];
    std::uint16_t last = last_sequence_[media];
    std::vector<std::uint16_t> lost;
    for (std::size_t i = 0; i < n; ++i) {
      lost.push_back((which & 8) ? r.u16() : static_cast<std::uint16_t>(last - r.u8()));
    }
    if (!(which & 0x10)) {
      // In order from the oldest (RFC 4585 §6.2.1 packs each into a PID and the 16 after it).
      std::uint16_t oldest = static_cast<std::uint16_t>(last - 0x8000);
      std::sort(lost.begin(), lost.end(), [&](std::uint16_t a, std::uint16_t b) {
        return static_cast<std::uint16_t>(a - oldest) < static_cast<std::uint16_t>(b - oldest);
      });
    }
    if (!ready(sub_)) {
      return;
    }
    std::array<std::uint8_t, 1200> out{};
    std::size_t len = rtcp::build_nack(out, kSubReportSsrc, media, lost);
    if (len != 0) {
      from_browser(sub_, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(len)}, true);
    }
  }

  void keyframe_request(Reader& r) {
    std::uint8_t which = r.u8();
    std::uint8_t sequence = r.u8();
    if (!ready(sub_)) {
      return;
    }
    std::array<std::uint8_t, 28> out{};
    std::size_t len = 0;
    if (which & 8) {
      std::array<rtcp::FirEntry, 2> fir = {
          {{kSubSsrcs[which & 7], sequence}, {kSubSsrcs[(which >> 4) & 7], sequence}}};
      len = rtcp::build_fir(out, kSubReportSsrc, fir);
    } else {
      len = rtcp::build_pli(out, kSubReportSsrc, kSubSsrcs[which & 7]);
    }
    from_browser(sub_, {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(len)}, true);
  }

  void route_layer(Reader& r) {
    std::uint8_t which = r.u8();
    std::uint8_t max_spatial = r.u8();
    shm::RouteLayer m{(which & 0x80) ? pub_.creds.id : sub_.creds.id, kSubSsrcs[which & 7],
                      max_spatial, (which & 8) != 0};
    command(shm::Command::kRouteLayer, shm::encode(m));
  }

  void republish(Reader& r) {
    auto codec = static_cast<shm::Codec>(r.u8() % 6);
    std::uint8_t flags = r.u8();
    if (flags & 0x20) {
      command(shm::Command::kUnsubscribe, shm::encode(shm::Unsubscribe{sub_.creds.id, kSubSim}));
    } else {
      command(shm::Command::kTrackRemove, shm::encode(shm::TrackRemove{pub_.creds.id, kSimTrack}));
      std::size_t rids = (flags & 3) == 0 ? 3 : flags & 3;
      publish_simulcast(codec, rids, (flags & 0x10) ? std::string() : std::string(kMid));
    }
    if (!(flags & 0x40)) {
      subscribe_simulcast(!(flags & 4), !(flags & 8));
    }
  }

  void sender_report(Reader& r) {
    std::uint8_t which = r.u8();
    std::uint32_t ts = r.u32();
    Bytes after = r.rest();
    if (!ready(pub_)) {
      return;
    }
    std::size_t i = which % 6;
    std::uint32_t ssrc = i < 3    ? layers_[i].ssrc
                         : i == 3 ? 0x1111
                         : i == 4 ? 0x3333
                                  : layers_[0].rtx_ssrc;
    if (i < 3 && ts == 0) {
      ts = layers_[i].timestamp;
    }
    std::vector<std::uint8_t> p(28, 0);
    p[0] = 0x80;
    p[1] = rtcp::kSr;
    store_be16(&p[2], 6);
    store_be32(&p[4], ssrc);
    store_be32(&p[8], static_cast<std::uint32_t>(now_.unix_s + 2'208'988'800LL));  // NTP era 0
    store_be32(&p[12], static_cast<std::uint32_t>(now_.mono_ms % 1000 * 4'294'967));
    store_be32(&p[16], ts);
    store_be32(&p[20], 100);
    store_be32(&p[24], 100'000);
    p.insert(p.end(), after.begin(), after.end());
    from_browser(pub_, p, true);
  }

  const Statics& st_;
  Output out_;
  sfu::Engine engine_;
  Now now_{1'000'000, 1'000, 1'000'000'000};
  Browser pub_;
  Browser sub_;
  Credentials last_created_;
  Credentials unknown_{shm::SessionId{99}, "nobody", "nobody-password"};
  std::uint8_t tid_ = 0;
  int handshakes_ = 0;

  // The publisher's numbering: layers 0-2 and a fourth whose rid names no layer; layer 2's
  // sequence, timestamp, picture id and TL0PICIDX close to their wraps.
  std::array<Layer, 4> layers_ = {{{kLayerSsrc[0], kLayerRtx[0], 100, 1000, 10, 1},
                                   {kLayerSsrc[1], kLayerRtx[1], 20000, 500000, 3000, 100},
                                   {kLayerSsrc[2], kLayerRtx[2], 65530, 0xFFFFF000u, 0x7FFC, 254},
                                   {0x4000, 0x4001, 7, 7, 7, 7}}};
  shm::Codec codec_ = shm::Codec::kVp8;
  std::uint16_t pub_twcc_ = 65530;
  // The subscriber's side: the last sequence number received per SSRC, the SFU's transport-wide
  // numbers that reached it since its last feedback, and the link in between.
  struct Arrival {
    std::uint16_t seq;
    std::int64_t at_us;  // < 0: lost on the link
  };
  std::map<std::uint32_t, std::uint16_t> last_sequence_;
  std::vector<Arrival> arrivals_;
  std::uint8_t feedback_count_ = 0;
  std::int64_t link_delay_us_ = 20'000;
  std::uint32_t link_loss_every_ = 0;
  std::uint32_t link_packets_ = 0;
  std::uint64_t last_keepalive_ms_ = 0;
  std::size_t budget_ = kBudget;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Statics statics;
  Harness h(statics);
  std::size_t at = 0;
  for (std::size_t steps = 0; at < size && steps < kMaxSteps; ++steps) {
    std::uint8_t op = data[at++];
    std::size_t len = 0;
    if (size - at >= 2) {
      len = load_be16(data + at);
      at += 2;
    }
    len = std::min(len, size - at);
    h.step(op, std::span(data + at, len));
    at += len;
  }
  h.finish();
  return 0;
}
