// The SFU engine driven by a sequence of steps: ring commands, datagrams from the validated
// addresses and from others, signed ICE checks, time passing, and (when a step asks for one) a
// real DTLS handshake, after which the harness protects the fuzzer's RTP and RTCP with the
// browser's keys so the forwarding and feedback paths see decrypted packets of any shape.
//
// Input: steps of [op u8][length u16 big-endian][length bytes]. The low 3 bits of op choose:
//   0 command: payload[0] picks the type (10 + b % 9), the rest is its payload
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
// Never crashes, never leaks or double-returns a buffer, never writes past a slot, keeps its
// gauges from wrapping, and sends only SRTP the browser it goes to can authenticate.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
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

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
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
    command(shm::Command::kSubscribe, shm::encode(video));
    shm::Subscribe audio{sub_.creds.id, pub_.creds.id, 0x3333, 0x4444, 0, 111, 0, {}, 0};
    command(shm::Command::kSubscribe, shm::encode(audio));
    ice(pub_.creds, 0, st.addresses[0], SocketId{0});
    ice(sub_.creds, 0, st.addresses[1], SocketId{0});
    settle();
  }

  void step(std::uint8_t op, std::span<const std::uint8_t> p) {
    switch (op & 7) {
      case 0:
        if (!p.empty()) {
          command(static_cast<shm::Command>(10 + p[0] % 9), p.subspan(1));
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
        now_.mono_ms += ms;
        now_.unix_s = static_cast<std::int64_t>(now_.mono_ms / 1000);
        engine_.on_timer(now_);
        break;
      }
      case 4:
        handshake((op & 8) ? sub_ : pub_);
        break;
      case 5:
      case 6: {
        Browser& b = (op & 8) ? sub_ : pub_;
        std::vector<std::uint8_t> wire(p.begin(), p.end());
        if (b.tx) {
          std::size_t n = wire.size();
          wire.resize(n + crypto::SrtpSession::kMaxTrailer);
          auto len = (op & 7) == 5 ? b.tx->protect_rtp(wire, n) : b.tx->protect_rtcp(wire, n);
          wire.resize(len ? *len : n);
        }
        deliver(b.home, wire, SocketId{0}, (op & 0x40) ? kUringRxOffset : kTxOffset);
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
      for (Browser* b : {&pub_, &sub_}) {
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
      }
      check(!tried || ok || replay);
    }
    out_.sent.clear();
    const sfu::Counters& c = engine_.counters();
    constexpr std::uint64_t kSane = 1u << 20;
    check(c.sessions <= 16 && c.sessions_connected <= c.sessions && c.tracks < kSane &&
          c.subscriptions < kSane);
  }

  const Statics& st_;
  Output out_;
  sfu::Engine engine_;
  Now now_{1'000'000, 1'000};
  Browser pub_;
  Browser sub_;
  Credentials last_created_;
  Credentials unknown_{shm::SessionId{99}, "nobody", "nobody-password"};
  std::uint8_t tid_ = 0;
  int handshakes_ = 0;
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
