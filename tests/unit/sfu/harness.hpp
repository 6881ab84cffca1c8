#pragma once
// Drives an sfu::Engine the way two browsers would, with real crypto: ICE-lite checks built
// with stun::Builder, a DTLS endpoint per browser, SRTP keys derived from its handshake. The
// engine's output goes to a FakeOutput that owns the buffers, so every test can tell whether a
// buffer was lost, returned twice or written past its end.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/crypto/digest.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "ringlane/dataplane/rtp/rtcp.hpp"
#include "ringlane/dataplane/sfu/engine.hpp"
#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/shm/media.hpp"

namespace ringlane::sfu::testing {

struct Sent {
  SocketId socket;
  Endpoint to;
  std::vector<std::uint8_t> bytes;
};

// A small pool of slots laid out as the io backends lay them out; each slot is its own
// allocation followed by guard bytes, so a write past a slot's end is seen (and caught by ASan).
class FakeOutput final : public Output {
 public:
  static constexpr std::uint32_t kSlotSize = 2048;
  static constexpr std::uint32_t kTxOffset = 128;
  static constexpr std::size_t kGuard = 64;
  static constexpr std::uint8_t kGuardByte = 0xA5;

  explicit FakeOutput(std::size_t slots = 64) {
    for (std::size_t i = 0; i < slots; ++i) {
      auto slot = std::make_unique<std::uint8_t[]>(kSlotSize + kGuard);
      std::fill(slot.get() + kSlotSize, slot.get() + kSlotSize + kGuard, kGuardByte);
      slots_.push_back(std::move(slot));
      busy_.push_back(false);
    }
  }

  std::optional<io::BufferId> acquire(PacketBuffer& out) override {
    if (fail_acquire) {
      return std::nullopt;
    }
    auto id = take(out, kTxOffset);
    if (id) {
      ++acquired;
    }
    return id;
  }
  void send(SocketId from, const Endpoint& to, const PacketBuffer& pkt, io::BufferId id) override {
    if (!give_back(id)) {
      return;
    }
    if (pkt.base != slots_[id.value].get() || pkt.offset + pkt.length > kSlotSize) {
      ++misuse;  // the view must lie inside the slot the id names
      return;
    }
    sent.push_back(Sent{from, to, {pkt.data(), pkt.data() + pkt.length}});
    ++sends;
  }
  void release(io::BufferId id) override {
    if (give_back(id)) {
      ++releases;
    }
  }
  void event(shm::Event type, std::span<const std::uint8_t> payload) override {
    if (type == shm::Event::kLayersActive) {
      auto l = shm::decode_layers_active(payload);
      if (!l) {
        ++misuse;
        return;
      }
      layers_active.push_back(*l);
      return;
    }
    if (type == shm::Event::kAudioLevels) {
      auto l = shm::decode_audio_levels(payload);
      if (!l) {
        ++misuse;
        return;
      }
      audio_levels.push_back(*l);
      return;
    }
    if (type == shm::Event::kRouteReport) {
      auto r = shm::decode_route_report(payload);
      if (!r) {
        ++misuse;
        return;
      }
      route_reports.push_back(*r);
      return;
    }
    if (type != shm::Event::kSessionEvent) {
      ++misuse;
      return;
    }
    auto e = shm::decode_session_event(payload);
    if (!e) {
      ++misuse;
      return;
    }
    events.push_back(*e);
  }

  // A slot holding `data` at `offset`, as a backend hands a received datagram to the engine.
  std::optional<io::BufferId> receive(Bytes data, PacketBuffer& out, std::uint32_t offset) {
    auto id = take(out, offset);
    if (id) {
      std::copy(data.begin(), data.end(), out.data());
      out.length = static_cast<std::uint32_t>(data.size());
      ++received;
    }
    return id;
  }

  std::size_t in_flight() const {
    return static_cast<std::size_t>(std::count(busy_.begin(), busy_.end(), true));
  }
  bool guards_intact() const {
    for (const auto& s : slots_) {
      if (std::any_of(s.get() + kSlotSize, s.get() + kSlotSize + kGuard,
                      [](std::uint8_t b) { return b != kGuardByte; })) {
        return false;
      }
    }
    return true;
  }

  bool fail_acquire = false;
  std::vector<Sent> sent;
  std::vector<shm::SessionEvent> events;
  std::vector<shm::RouteReport> route_reports;
  std::vector<shm::AudioLevels> audio_levels;
  std::vector<shm::LayersActive> layers_active;
  std::size_t acquired = 0;  // transmit buffers handed out
  std::size_t received = 0;  // receive buffers handed to the engine
  std::size_t sends = 0;
  std::size_t releases = 0;
  std::size_t misuse = 0;  // a buffer returned that was not out, or a bad view or event

 private:
  std::optional<io::BufferId> take(PacketBuffer& out, std::uint32_t offset) {
    for (std::size_t i = 0; i < busy_.size(); ++i) {
      if (!busy_[i]) {
        busy_[i] = true;
        std::fill(slots_[i].get(), slots_[i].get() + kSlotSize, std::uint8_t{0xEE});
        out = PacketBuffer{slots_[i].get(), kSlotSize, offset, 0};
        return io::BufferId{static_cast<std::uint32_t>(i)};
      }
    }
    return std::nullopt;
  }
  bool give_back(io::BufferId id) {
    if (id.value >= busy_.size() || !busy_[id.value]) {
      ++misuse;
      return false;
    }
    busy_[id.value] = false;
    return true;
  }

  std::vector<std::unique_ptr<std::uint8_t[]>> slots_;
  std::vector<bool> busy_;
};

// One browser peer connection: its address, the ICE credentials its SDP exchange produced, its
// own certificate and, once DTLS is up, its SRTP sessions.
struct Browser {
  Browser(std::uint32_t id, std::string tag, Endpoint from)
      : session{id},
        address(from),
        server_ufrag("srv" + tag),
        server_pwd("server-password-" + tag + "-0123456789"),
        client_ufrag("cli" + tag),
        cert(crypto::DtlsCertificate::generate()) {}

  shm::SessionId session;
  Endpoint address;
  std::string server_ufrag;
  std::string server_pwd;
  std::string client_ufrag;
  std::shared_ptr<const crypto::DtlsCertificate> cert;
  std::unique_ptr<crypto::DtlsEndpoint> dtls;
  std::unique_ptr<crypto::SrtpSession> tx;  // protects what this browser sends
  std::unique_ptr<crypto::SrtpSession> rx;  // unprotects what it receives
  std::deque<Sent> inbox;                   // what the engine sent here, not yet looked at
  std::string username() const { return server_ufrag + ":" + client_ufrag; }
};

// An RTP packet as a publisher sends it: one-byte header extensions with ids 4 (two bytes)
// and 13 (one byte), then a payload pattern.
struct Rtp {
  std::uint32_t ssrc = 0x1111;
  std::uint8_t payload_type = 96;
  std::uint16_t sequence = 1000;
  std::uint32_t timestamp = 90000;
  bool marker = false;
  bool extensions = true;
  std::size_t payload = 100;
};

inline std::vector<std::uint8_t> build_rtp(const Rtp& r) {
  const std::size_t header = r.extensions ? 24 : 12;
  std::vector<std::uint8_t> p(header + r.payload);
  p[0] = r.extensions ? 0x90 : 0x80;
  p[1] = static_cast<std::uint8_t>((r.marker ? 0x80 : 0) | r.payload_type);
  store_be16(&p[2], r.sequence);
  store_be32(&p[4], r.timestamp);
  store_be32(&p[8], r.ssrc);
  if (r.extensions) {
    // RFC 8285 §4.2: 0xBEDE, length 2 words; id 4 L=1 (2 bytes), id 13 L=0 (1 byte), padding.
    const std::array<std::uint8_t, 12> ext = {0xBE, 0xDE, 0x00, 0x02, 0x41, 0xAA,
                                              0xBB, 0xD0, 0xCC, 0,    0,    0};
    std::copy(ext.begin(), ext.end(), p.begin() + 12);
  }
  for (std::size_t i = 0; i < r.payload; ++i) {
    p[header + i] = static_cast<std::uint8_t>(i * 7 + r.sequence);
  }
  return p;
}

// Sender report: sender info plus one report block (which the SFU must not pass on).
inline std::vector<std::uint8_t> build_sr(std::uint32_t ssrc, std::uint64_t ntp,
                                          std::uint32_t rtp_ts, std::uint32_t packets,
                                          std::uint32_t octets) {
  std::vector<std::uint8_t> p(52);
  p[0] = 0x81;
  p[1] = rtcp::kSr;
  store_be16(&p[2], 52 / 4 - 1);
  store_be32(&p[4], ssrc);
  store_be64(&p[8], ntp);
  store_be32(&p[16], rtp_ts);
  store_be32(&p[20], packets);
  store_be32(&p[24], octets);
  store_be32(&p[28], 0xDEADBEEF);  // report block about some stream the publisher receives
  return p;
}

enum class Role { kControlling, kControlled, kNone };

struct CheckOptions {
  Role role = Role::kControlling;
  bool use_candidate = true;
  bool fingerprint = true;
  std::uint8_t tid_seed = 1;
};

// A Binding request as a browser's ICE agent sends it (RFC 8445 §7.2.2).
inline std::vector<std::uint8_t> binding_request(std::string_view username, std::string_view pwd,
                                                 const CheckOptions& o = {}) {
  std::vector<std::uint8_t> buf(512);
  stun::TransactionId tid;
  for (std::size_t i = 0; i < tid.size(); ++i) {
    tid[i] = static_cast<std::uint8_t>(o.tid_seed + i);
  }
  stun::Builder b(buf, stun::Method::kBinding, stun::Class::kRequest, tid);
  b.add_string(stun::attr::kUsername, username);
  b.add_u32(stun::attr::kPriority, 0x6E7F1EFF);
  if (o.role == Role::kControlling) {
    b.add_u64(stun::attr::kIceControlling, 0x0102030405060708ull);
  } else if (o.role == Role::kControlled) {
    b.add_u64(stun::attr::kIceControlled, 0x0102030405060708ull);
  }
  if (o.use_candidate) {
    b.add_bytes(stun::attr::kUseCandidate, {});
  }
  b.add_integrity(as_bytes(pwd));
  if (o.fingerprint) {
    b.add_fingerprint();
  }
  EXPECT_TRUE(b.ok());
  buf.resize(b.size());
  return buf;
}

inline Endpoint ep(std::string_view text) {
  auto e = Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(Endpoint{});
}

// Publisher A (video 0x1111 pt 96, audio 0x3333 pt 111) and subscriber B, both with the
// engine as the DTLS server, as the brief of a two-party call sets them up.
class EngineTest : public ::testing::Test {
 protected:
  static constexpr std::uint32_t kVideo = 0x1111;
  static constexpr std::uint32_t kAudio = 0x3333;
  static constexpr std::uint32_t kSubVideo = 0x2222;
  static constexpr std::uint32_t kSubRtx = 0x2223;

  EngineTest() {
    config_.certificate = engine_cert_;
    engine_ = std::make_unique<Engine>(config_, out_);
  }

  void TearDown() override {
    route();
    EXPECT_EQ(out_.in_flight(), 0u) << "a buffer was neither sent nor released";
    EXPECT_EQ(out_.misuse, 0u) << "a buffer was returned twice, or a view or event was bad";
    EXPECT_EQ(out_.acquired + out_.received, out_.sends + out_.releases);
    EXPECT_TRUE(out_.guards_intact()) << "the engine wrote past the end of a slot";
  }

  bool command(shm::Command type, const std::vector<std::uint8_t>& payload) {
    return engine_->on_command(type, payload, now_);
  }
  const Counters& counters() const { return engine_->counters(); }
  std::uint64_t dropped(Drop d) const { return engine_->counters().dropped(d); }
  void advance(std::uint64_t ms) {
    now_.mono_ms += ms;
    now_.unix_s = static_cast<std::int64_t>(1'700'000'000 + now_.mono_ms / 1000);
  }

  // kSessionCreate; with `fingerprint`, the browser's fingerprint is known from its SDP.
  bool create(Browser& b, bool fingerprint = true, bool engine_is_client = false) {
    shm::SessionCreate c;
    c.session = b.session;
    c.dtls_client = engine_is_client;
    c.ice_ufrag = b.server_ufrag;
    c.ice_pwd = b.server_pwd;
    if (fingerprint) {
      auto fp = shm::fingerprint_bytes(b.cert->fingerprint());
      EXPECT_TRUE(fp);
      c.remote_fingerprint = fp.value_or(c.remote_fingerprint);
    }
    return command(shm::Command::kSessionCreate, shm::encode(c));
  }
  bool add_track(Browser& b, std::uint32_t ssrc, shm::MediaKind kind, std::uint8_t pt,
                 std::uint32_t rtx_ssrc = 0, std::uint8_t rtx_pt = 0) {
    shm::TrackAdd t;
    t.session = b.session;
    t.ssrc = ssrc;
    t.rtx_ssrc = rtx_ssrc;
    t.kind = kind;
    t.payload_type = pt;
    t.rtx_payload_type = rtx_pt;
    t.clock_rate = kind == shm::MediaKind::kVideo ? 90000 : 48000;
    return command(shm::Command::kTrackAdd, shm::encode(t));
  }
  // sub <- pub's track, renumbered; extension 4 is stripped and 13 becomes 3.
  bool subscribe(Browser& sub, Browser& pub, std::uint32_t pub_ssrc, std::uint32_t ssrc,
                 std::uint8_t pt, std::uint32_t rtx_ssrc = 0, std::uint8_t rtx_pt = 0) {
    shm::Subscribe s;
    s.subscriber = sub.session;
    s.publisher = pub.session;
    s.publisher_ssrc = pub_ssrc;
    s.ssrc = ssrc;
    s.rtx_ssrc = rtx_ssrc;
    s.payload_type = pt;
    s.rtx_payload_type = rtx_pt;
    s.extensions[4] = 0;
    s.extensions[13] = 3;
    return command(shm::Command::kSubscribe, shm::encode(s));
  }
  bool unsubscribe(Browser& sub, std::uint32_t ssrc) {
    return command(shm::Command::kUnsubscribe, shm::encode(shm::Unsubscribe{sub.session, ssrc}));
  }
  bool close(Browser& b) {
    return command(shm::Command::kSessionClose, shm::encode(shm::SessionClose{b.session}));
  }

  // A datagram from `from`, in a receive slot whose payload starts at `offset`.
  void deliver(const Endpoint& from, Bytes data, SocketId socket = SocketId{0},
               std::uint32_t offset = FakeOutput::kTxOffset) {
    PacketBuffer pkt;
    auto id = out_.receive(data, pkt, offset);
    ASSERT_TRUE(id) << "the fake's pool is exhausted";
    engine_->on_datagram(socket, from, pkt, *id, now_);
  }
  void timer() { engine_->on_timer(now_); }

  // Moves what the engine sent into the inboxes of the browsers it was sent to.
  void route() {
    for (auto& s : out_.sent) {
      Browser* to = nullptr;
      for (Browser* b : {&a_, &b_, &c_}) {
        if (b->address == s.to) {
          to = b;
        }
      }
      if (to != nullptr) {
        to->inbox.push_back(std::move(s));
      } else {
        stray_.push_back(std::move(s));
      }
    }
    out_.sent.clear();
  }
  // Takes what `b` received of one kind (STUN, DTLS, RTP or RTCP), leaving the rest.
  std::vector<Sent> take(Browser& b, rtp::PacketKind kind) {
    route();
    std::vector<Sent> out;
    for (auto it = b.inbox.begin(); it != b.inbox.end();) {
      if (rtp::classify(it->bytes) == kind) {
        out.push_back(std::move(*it));
        it = b.inbox.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }
  std::vector<shm::SessionEvent> take_events() {
    auto e = std::move(out_.events);
    out_.events.clear();
    return e;
  }

  // A valid check from the browser's address; returns the engine's response.
  std::optional<stun::Message> ice(Browser& b, std::vector<std::uint8_t>& response,
                                   const CheckOptions& o = {}) {
    deliver(b.address, binding_request(b.username(), b.server_pwd, o));
    auto stun = take(b, rtp::PacketKind::kStun);
    if (stun.size() != 1) {
      ADD_FAILURE() << "expected one STUN response, got " << stun.size();
      return std::nullopt;
    }
    response = std::move(stun[0].bytes);
    return stun::Message::parse(response);
  }

  // DTLS between the browser (client unless the engine is) and the engine, until both sides
  // are connected; then the browser's SRTP sessions from its exported keys.
  void handshake(Browser& b, bool browser_is_client = true) {
    if (!b.dtls) {
      b.dtls = std::make_unique<crypto::DtlsEndpoint>(
          b.cert, browser_is_client ? crypto::DtlsRole::kClient : crypto::DtlsRole::kServer,
          "sha-256 " + engine_cert_->fingerprint());
      if (browser_is_client) {
        b.dtls->start();
      }
    }
    std::vector<std::uint8_t> d;
    for (int round = 0; round < 20; ++round) {
      bool moved = false;
      while (b.dtls->pop(d)) {
        deliver(b.address, d);
        moved = true;
      }
      for (auto& s : take(b, rtp::PacketKind::kDtls)) {
        b.dtls->on_datagram(s.bytes);
        moved = true;
      }
      if (!moved) {
        break;
      }
    }
    ASSERT_EQ(b.dtls->state(), crypto::DtlsState::kConnected) << b.dtls->error();
    auto profile = b.dtls->srtp_profile();
    auto material = b.dtls->srtp_keying_material();
    ASSERT_TRUE(profile && material);
    auto masters = crypto::split_srtp_keying_material(*profile, *material, browser_is_client);
    ASSERT_TRUE(masters);
    b.tx = crypto::SrtpSession::create(*profile, masters->local, crypto::SrtpDirection::kOutbound);
    b.rx = crypto::SrtpSession::create(*profile, masters->remote, crypto::SrtpDirection::kInbound);
    ASSERT_TRUE(b.tx && b.rx);
  }
  // Create, one nominating check, DTLS: the session is connected.
  void connect(Browser& b) {
    ASSERT_TRUE(create(b));
    std::vector<std::uint8_t> response;
    ASSERT_TRUE(ice(b, response));
    handshake(b);
  }
  // The usual call: A publishes video and audio and B subscribes to the video, both connected.
  void call() {
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
    ASSERT_TRUE(add_track(a_, kAudio, shm::MediaKind::kAudio, 111));
    ASSERT_NO_FATAL_FAILURE(connect(b_));
    ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
    take_events();
  }

  std::vector<std::uint8_t> protect_rtp(Browser& b, std::vector<std::uint8_t> packet) {
    std::size_t n = packet.size();
    packet.resize(n + crypto::SrtpSession::kMaxTrailer);
    auto len = b.tx->protect_rtp(packet, n);
    EXPECT_TRUE(len);
    packet.resize(len.value_or(0));
    return packet;
  }
  std::vector<std::uint8_t> protect_rtcp(Browser& b, std::vector<std::uint8_t> packet) {
    std::size_t n = packet.size();
    packet.resize(n + crypto::SrtpSession::kMaxTrailer);
    auto len = b.tx->protect_rtcp(packet, n);
    EXPECT_TRUE(len);
    packet.resize(len.value_or(0));
    return packet;
  }
  // Protects and sends; returns the bytes on the wire (for replays).
  std::vector<std::uint8_t> send_rtp(Browser& b, const Rtp& r) {
    auto wire = protect_rtp(b, build_rtp(r));
    deliver(b.address, wire);
    return wire;
  }
  void send_rtcp(Browser& b, std::vector<std::uint8_t> packet) {
    deliver(b.address, protect_rtcp(b, std::move(packet)));
  }
  // RTP the browser received, unprotected with its keys; a packet it cannot unprotect fails.
  std::vector<std::vector<std::uint8_t>> rtp_at(Browser& b) {
    std::vector<std::vector<std::uint8_t>> out;
    for (auto& s : take(b, rtp::PacketKind::kRtp)) {
      auto len = b.rx->unprotect_rtp(s.bytes, s.bytes.size());
      EXPECT_TRUE(len) << "the browser cannot unprotect what it received";
      if (len) {
        s.bytes.resize(*len);
        out.push_back(std::move(s.bytes));
      }
    }
    return out;
  }
  // RTCP packets the browser received, unprotected and split out of their compounds.
  struct Rtcp {
    std::uint8_t type;
    std::uint8_t count;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Rtcp> rtcp_at(Browser& b) {
    std::vector<Rtcp> out;
    for (auto& s : take(b, rtp::PacketKind::kRtcp)) {
      auto len = b.rx->unprotect_rtcp(s.bytes, s.bytes.size());
      EXPECT_TRUE(len) << "the browser cannot unprotect what it received";
      if (!len) {
        continue;
      }
      auto c = rtcp::Compound::parse(Bytes(s.bytes.data(), *len));
      EXPECT_TRUE(c);
      if (c) {
        for (const auto& p : c->packets()) {
          out.push_back(Rtcp{p.type, p.count, {p.bytes.begin(), p.bytes.end()}});
        }
      }
    }
    return out;
  }
  static rtcp::Packet view(const Rtcp& r) { return rtcp::Packet{r.count, r.type, r.bytes}; }

  std::shared_ptr<const crypto::DtlsCertificate> engine_cert_ = crypto::DtlsCertificate::generate();
  EngineConfig config_;
  FakeOutput out_;
  std::unique_ptr<Engine> engine_;
  Now now_{1'000'000, 1'700'001'000};
  Browser a_{1, "A", ep("127.0.0.1:5000")};
  Browser b_{2, "B", ep("127.0.0.1:5002")};
  Browser c_{3, "C", ep("[::1]:5004")};
  std::vector<Sent> stray_;  // sent to an address no browser has
};

}  // namespace ringlane::sfu::testing
