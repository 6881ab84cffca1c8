// The SFU engine driven as two browsers drive it, with real DTLS and SRTP: the handshake, what
// is forwarded and how it is rewritten, what is dropped and why, and the session lifecycle.
#include "ringlane/dataplane/sfu/engine.hpp"

#include <gtest/gtest.h>

#include "unit/sfu/harness.hpp"

namespace ringlane::sfu::testing {
namespace {

std::vector<shm::SessionState> states(const std::vector<shm::SessionEvent>& events,
                                      shm::SessionId id) {
  std::vector<shm::SessionState> out;
  for (const auto& e : events) {
    if (e.session == id) {
      out.push_back(e.state);
    }
  }
  return out;
}

using S = shm::SessionState;

TEST_F(EngineTest, DtlsConnectsAsServerAndReportsTheEvent) {
  ASSERT_TRUE(create(a_));
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(a_, response));
  advance(30);
  ASSERT_NO_FATAL_FAILURE(handshake(a_));
  auto events = take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].state, S::kIceConnected);
  EXPECT_EQ(events[0].elapsed_ms, 0u);
  EXPECT_EQ(events[1].session, a_.session);
  EXPECT_EQ(events[1].state, S::kDtlsConnected);
  EXPECT_EQ(events[1].elapsed_ms, 30u);
  EXPECT_EQ(counters().dtls_connected, 1u);
  EXPECT_EQ(counters().sessions_connected, 1u);
  EXPECT_EQ(counters().connect_ms_sum, 30u);
  EXPECT_EQ(counters().connect_ms[1], 1u);  // (25, 50]
  EXPECT_EQ(counters().connect_ms[0], 0u);
  EXPECT_EQ(counters().dtls_failed, 0u);
}

TEST_F(EngineTest, SubscriberWithoutFingerprintWaitsForSessionRemoteThenConnectsAsClient) {
  ASSERT_TRUE(create(b_, /*fingerprint=*/false));
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(b_, response));
  // The browser may start DTLS before its answer reached us: nothing to check it against yet.
  crypto::DtlsEndpoint early(b_.cert, crypto::DtlsRole::kClient, engine_cert_->fingerprint());
  early.start();
  std::vector<std::uint8_t> d;
  ASSERT_TRUE(early.pop(d));
  deliver(b_.address, d);
  EXPECT_EQ(dropped(Drop::kDtlsNotReady), 1u);
  EXPECT_TRUE(take(b_, rtp::PacketKind::kDtls).empty());

  // The answer said a=setup:passive: the engine is the DTLS client and sends the first flight.
  shm::SessionRemote r{b_.session, /*dtls_client=*/true,
                       *shm::fingerprint_bytes(b_.cert->fingerprint())};
  ASSERT_TRUE(command(shm::Command::kSessionRemote, shm::encode(r)));
  route();
  ASSERT_FALSE(b_.inbox.empty());
  ASSERT_NO_FATAL_FAILURE(handshake(b_, /*browser_is_client=*/false));
  EXPECT_EQ(states(take_events(), b_.session),
            (std::vector<S>{S::kIceConnected, S::kDtlsConnected}));
  // The handshake runs with the first fingerprint: a second one is refused.
  EXPECT_FALSE(command(shm::Command::kSessionRemote, shm::encode(r)));
  EXPECT_EQ(counters().dtls_connected, 1u);
}

TEST_F(EngineTest, ForgedPeerCertificateFailsTheSession) {
  // The SDP said one certificate; the browser presents another.
  Browser impostor{1, "A", a_.address};
  ASSERT_TRUE(create(a_));
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(a_, response));
  crypto::DtlsEndpoint client(impostor.cert, crypto::DtlsRole::kClient,
                              engine_cert_->fingerprint());
  client.start();
  std::vector<std::uint8_t> d;
  for (int round = 0; round < 10; ++round) {
    while (client.pop(d)) {
      deliver(a_.address, d);
    }
    for (auto& s : take(a_, rtp::PacketKind::kDtls)) {
      client.on_datagram(s.bytes);
    }
  }
  EXPECT_EQ(states(take_events(), a_.session), (std::vector<S>{S::kIceConnected, S::kFailed}));
  EXPECT_EQ(counters().dtls_failed, 1u);
  EXPECT_EQ(counters().dtls_connected, 0u);
  EXPECT_EQ(counters().sessions_connected, 0u);
  deliver(a_.address, build_rtp({}));
  EXPECT_EQ(dropped(Drop::kSrtpNotReady), 1u);
}

TEST_F(EngineTest, ForwardsRtpRenumberedForTheSubscriber) {
  ASSERT_NO_FATAL_FAILURE(call());
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint16_t i = 0; i < 3; ++i) {
    Rtp r{.sequence = static_cast<std::uint16_t>(1000 + i),
          .timestamp = 90000u + 3000u * i,
          .marker = i == 2};
    sent.push_back(build_rtp(r));
    send_rtp(a_, r);
  }
  route();
  for (const auto& s : b_.inbox) {
    if (rtp::classify(s.bytes) == rtp::PacketKind::kRtp) {
      EXPECT_EQ(s.socket, SocketId{0});
    }
  }
  auto got = rtp_at(b_);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    auto p = rtp::RtpPacket::parse(got[i]);
    auto in = rtp::RtpPacket::parse(sent[i]);
    ASSERT_TRUE(p && in);
    EXPECT_EQ(p->ssrc(), kSubVideo);
    EXPECT_EQ(p->payload_type(), 100);
    EXPECT_EQ(p->sequence(), 1000 + i);
    EXPECT_EQ(p->timestamp(), 90000u + 3000u * i);
    EXPECT_EQ(p->marker(), i == 2);
    ASSERT_TRUE(p->has_extension());
    EXPECT_EQ(p->extension_profile(), rtp::RtpPacket::kOneByteProfile);
    // Id 4 became padding, id 13 became id 3 with its byte; the block keeps its length.
    auto block = p->extension_block();
    EXPECT_EQ(std::vector<std::uint8_t>(block.begin(), block.end()),
              (std::vector<std::uint8_t>{0, 0, 0, 0x30, 0xCC, 0, 0, 0}));
    EXPECT_FALSE(p->extension(4));
    ASSERT_TRUE(p->extension(3));
    EXPECT_EQ((*p->extension(3))[0], 0xCC);
    auto pay = p->payload();
    auto want = in->payload();
    EXPECT_EQ(std::vector<std::uint8_t>(pay.begin(), pay.end()),
              std::vector<std::uint8_t>(want.begin(), want.end()));
    EXPECT_EQ(got[i].size(), sent[i].size());
  }
  EXPECT_TRUE(take(a_, rtp::PacketKind::kRtp).empty());
  EXPECT_EQ(counters().rtp_in, 3u);
  EXPECT_EQ(counters().rtp_forwarded, 3u);
}

TEST_F(EngineTest, UnsubscribedAndUnknownStreamsAreNotForwarded) {
  ASSERT_NO_FATAL_FAILURE(call());
  send_rtp(a_, {.ssrc = kAudio, .payload_type = 111, .extensions = false});
  EXPECT_EQ(counters().rtp_in, 1u);
  send_rtp(a_, {.ssrc = 0x9999});
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 1u);
  EXPECT_EQ(counters().rtp_in, 2u);  // it was valid SRTP, just of no track
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  EXPECT_TRUE(rtp_at(b_).empty());
  // What B publishes nothing of is dropped the same way.
  send_rtp(b_, {.ssrc = kSubVideo});
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 2u);
  EXPECT_TRUE(rtp_at(a_).empty());
}

TEST_F(EngineTest, ReplayedAndTamperedSrtpAreDropped) {
  ASSERT_NO_FATAL_FAILURE(call());
  auto wire = send_rtp(a_, {.sequence = 1000});
  deliver(a_.address, wire);
  EXPECT_EQ(dropped(Drop::kSrtpReplay), 1u);
  auto tampered = protect_rtp(a_, build_rtp({.sequence = 1001}));
  tampered[40] ^= 0x01;
  deliver(a_.address, tampered);
  EXPECT_EQ(dropped(Drop::kSrtpAuth), 1u);
  EXPECT_EQ(rtp_at(b_).size(), 1u);
  EXPECT_EQ(counters().rtp_in, 1u);
  EXPECT_EQ(counters().rtp_forwarded, 1u);
  // The stream goes on after both.
  send_rtp(a_, {.sequence = 1002});
  EXPECT_EQ(rtp_at(b_).size(), 1u);
}

TEST_F(EngineTest, MediaBeforeDtlsIsDropped) {
  ASSERT_TRUE(create(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(a_, response));
  deliver(a_.address, build_rtp({}));
  deliver(a_.address, std::vector<std::uint8_t>{0x81, rtcp::kPsfb, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2});
  EXPECT_EQ(dropped(Drop::kSrtpNotReady), 2u);
  EXPECT_EQ(counters().rtp_in, 0u);
}

TEST_F(EngineTest, SubscriberNotConnectedYetIsCounted) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96));
  ASSERT_TRUE(create(b_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
  send_rtp(a_, {});
  EXPECT_EQ(dropped(Drop::kSubscriberNotReady), 1u);
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  route();
  EXPECT_TRUE(b_.inbox.empty());
}

// RFC 4588 §4: an RTX packet is the original sequence number (OSN), then the original
// payload. The SFU turns the publisher's retransmissions back into the packets they repair.
TEST_F(EngineTest, RtxFromThePublisherIsForwardedAsThePacketItRepairs) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96, 0x1112, 97));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_NO_FATAL_FAILURE(connect(c_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100, kSubRtx, 101));
  ASSERT_TRUE(subscribe(c_, a_, kVideo, 0x4444, 102));
  // Subscribing to the RTX stream itself is refused.
  EXPECT_FALSE(subscribe(c_, a_, 0x1112, 0x4445, 103));
  auto original = build_rtp({.sequence = 1000, .timestamp = 5000, .marker = true});
  auto rtx = build_rtp({.ssrc = 0x1112,
                        .payload_type = 97,
                        .sequence = 7,
                        .timestamp = 5000,
                        .marker = true,
                        .payload = 0});
  rtx.push_back(0x03);  // OSN 1000
  rtx.push_back(0xE8);
  auto original_payload = rtp::RtpPacket::parse(original)->payload();
  rtx.insert(rtx.end(), original_payload.begin(), original_payload.end());
  deliver(a_.address, protect_rtp(a_, rtx));
  EXPECT_EQ(counters().rtx_received, 1u);
  struct Want {
    Browser* b;
    std::uint32_t ssrc;
    std::uint8_t pt;
  };
  for (Want w : {Want{&b_, kSubVideo, 100}, Want{&c_, 0x4444, 102}}) {
    auto got = rtp_at(*w.b);
    ASSERT_EQ(got.size(), 1u);
    auto p = rtp::RtpPacket::parse(got[0]);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->ssrc(), w.ssrc);
    EXPECT_EQ(p->payload_type(), w.pt);
    EXPECT_EQ(p->sequence(), 1000);
    EXPECT_EQ(p->timestamp(), 5000u);
    EXPECT_TRUE(p->marker());
    ASSERT_TRUE(p->extension(3));
    auto pay = p->payload();
    EXPECT_EQ(std::vector<std::uint8_t>(pay.begin(), pay.end()),
              std::vector<std::uint8_t>(original_payload.begin(), original_payload.end()));
  }
  EXPECT_EQ(counters().rtp_forwarded, 2u);  // one copy per subscriber
  // A padding-only RTX packet (a bandwidth probe) repairs nothing and goes nowhere.
  auto probe = build_rtp({.ssrc = 0x1112, .payload_type = 97, .sequence = 8, .payload = 2});
  deliver(a_.address, protect_rtp(a_, probe));
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_TRUE(rtp_at(c_).empty());
  EXPECT_EQ(counters().rtx_received, 1u);
}

TEST_F(EngineTest, UnsubscribeStopsForwarding) {
  ASSERT_NO_FATAL_FAILURE(call());
  send_rtp(a_, {.sequence = 1});
  EXPECT_EQ(rtp_at(b_).size(), 1u);
  EXPECT_EQ(counters().subscriptions, 1u);
  EXPECT_TRUE(unsubscribe(b_, kSubVideo));
  EXPECT_EQ(counters().subscriptions, 0u);
  send_rtp(a_, {.sequence = 2});
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_EQ(counters().rtp_forwarded, 1u);
  EXPECT_FALSE(unsubscribe(b_, kSubVideo));
  // Subscribing again works and forwards again.
  EXPECT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100));
  send_rtp(a_, {.sequence = 3});
  EXPECT_EQ(rtp_at(b_).size(), 1u);
}

// Unsubscribe names the subscriber-side SSRC; naming the RTX one must remove the route too, or
// the route outlives the subscription (and, once the subscriber closes, points at freed memory).
TEST_F(EngineTest, UnsubscribeByTheRtxSsrcRemovesTheRoute) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  ASSERT_TRUE(add_track(a_, kVideo, shm::MediaKind::kVideo, 96, 0x1112, 97));
  ASSERT_NO_FATAL_FAILURE(connect(b_));
  ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, 100, kSubRtx, 101));
  EXPECT_TRUE(unsubscribe(b_, kSubRtx));
  EXPECT_EQ(counters().subscriptions, 0u);
  send_rtp(a_, {.sequence = 1});
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  EXPECT_TRUE(close(b_));
  send_rtp(a_, {.sequence = 2});
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  EXPECT_TRUE(close(a_));
  EXPECT_EQ(counters().subscriptions, 0u);
  EXPECT_EQ(counters().tracks, 0u);
  EXPECT_EQ(counters().sessions, 0u);
}

TEST_F(EngineTest, ClosingThePublisherRemovesItsSubscriptions) {
  ASSERT_NO_FATAL_FAILURE(call());
  take(a_, rtp::PacketKind::kRtcp);  // the subscription's keyframe request
  EXPECT_EQ(counters().sessions, 2u);
  EXPECT_EQ(counters().tracks, 2u);
  EXPECT_EQ(counters().subscriptions, 1u);
  EXPECT_TRUE(close(a_));
  EXPECT_EQ(counters().sessions, 1u);
  EXPECT_EQ(counters().sessions_connected, 1u);
  EXPECT_EQ(counters().tracks, 0u);
  EXPECT_EQ(counters().subscriptions, 0u);
  // A DTLS close_notify went to A; a closed-by-command session reports nothing.
  EXPECT_EQ(take(a_, rtp::PacketKind::kDtls).size(), 1u);
  EXPECT_TRUE(take_events().empty());
  // A keeps sending: nobody's now.
  send_rtp(a_, {.sequence = 5});
  EXPECT_EQ(dropped(Drop::kNoSession), 1u);
  deliver(a_.address, binding_request(a_.username(), a_.server_pwd));
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 1u);
  // B's feedback about the gone track goes nowhere.
  send_rtcp(b_, [] {
    std::vector<std::uint8_t> pli(12);
    rtcp::build_pli(pli, 0xB0B0, kSubVideo);
    return pli;
  }());
  EXPECT_EQ(counters().pli_received, 0u);
  route();
  EXPECT_TRUE(a_.inbox.empty());
  EXPECT_TRUE(stray_.empty());
  EXPECT_FALSE(close(a_));
  // The ufrag is free again.
  EXPECT_TRUE(create(a_));
}

TEST_F(EngineTest, ClosingTheSubscriberRemovesItsRoutes) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_TRUE(close(b_));
  EXPECT_EQ(counters().subscriptions, 0u);
  EXPECT_EQ(counters().tracks, 2u);
  send_rtp(a_, {});
  EXPECT_EQ(counters().rtp_in, 1u);
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  EXPECT_EQ(dropped(Drop::kSubscriberNotReady), 0u);
  take(b_, rtp::PacketKind::kDtls);
  route();
  EXPECT_TRUE(b_.inbox.empty());
}

TEST_F(EngineTest, RemovingATrackRemovesItsRoutes) {
  ASSERT_NO_FATAL_FAILURE(call());
  EXPECT_TRUE(
      command(shm::Command::kTrackRemove, shm::encode(shm::TrackRemove{a_.session, kVideo})));
  EXPECT_EQ(counters().tracks, 1u);
  EXPECT_EQ(counters().subscriptions, 0u);
  send_rtp(a_, {});
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 1u);
  EXPECT_FALSE(unsubscribe(b_, kSubVideo));
  EXPECT_FALSE(
      command(shm::Command::kTrackRemove, shm::encode(shm::TrackRemove{a_.session, kVideo})));
}

TEST_F(EngineTest, ConsentExpiresWithoutChecks) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  take_events();
  // Browsers send a check every few seconds; each one refreshes consent (RFC 7675 §5.1).
  advance(20000);
  deliver(a_.address, binding_request(a_.username(), a_.server_pwd, {.tid_seed = 2}));
  take(a_, rtp::PacketKind::kStun);
  advance(30000);
  timer();
  EXPECT_EQ(counters().sessions, 1u);
  advance(1);
  timer();
  EXPECT_EQ(counters().sessions, 0u);
  EXPECT_EQ(counters().sessions_connected, 0u);
  EXPECT_EQ(counters().consent_expired, 1u);
  auto events = take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].session, a_.session);
  EXPECT_EQ(events[0].state, S::kClosed);
  EXPECT_EQ(take(a_, rtp::PacketKind::kDtls).size(), 1u);  // close_notify
  send_rtp(a_, {});
  EXPECT_EQ(dropped(Drop::kNoSession), 1u);
}

TEST_F(EngineTest, SessionNeverConnectedIsClosedAfterTheSetupTimeout) {
  ASSERT_TRUE(create(a_));
  ASSERT_TRUE(create(b_));
  advance(60000);
  timer();
  EXPECT_EQ(counters().sessions, 2u);
  // B's checks keep its consent fresh, but DTLS never completes: the setup timeout still holds.
  deliver(b_.address, binding_request(b_.username(), b_.server_pwd));
  take(b_, rtp::PacketKind::kStun);
  take_events();
  advance(1);
  timer();
  EXPECT_EQ(counters().sessions, 0u);
  EXPECT_EQ(counters().connect_timeouts, 2u);
  EXPECT_EQ(counters().consent_expired, 0u);
  auto events = take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].state, S::kClosed);
  EXPECT_EQ(events[1].state, S::kClosed);
  EXPECT_NE(events[0].session, events[1].session);
}

TEST_F(EngineTest, MalformedCommandsAreRefused) {
  shm::SessionCreate c;
  c.session = a_.session;
  c.ice_ufrag = a_.server_ufrag;
  c.ice_pwd = a_.server_pwd;
  auto good = shm::encode(c);
  std::vector<std::uint8_t> truncated(good.begin(), good.end() - 1);
  auto extra = good;
  extra.push_back(0);
  EXPECT_FALSE(command(shm::Command::kSessionCreate, truncated));
  EXPECT_FALSE(command(shm::Command::kSessionCreate, extra));
  EXPECT_FALSE(command(shm::Command::kSessionCreate, {}));
  auto bad_flag = good;
  bad_flag[4] = 2;  // dtls_client is 0 or 1
  EXPECT_FALSE(command(shm::Command::kSessionCreate, bad_flag));
  shm::SessionCreate empty = c;
  empty.ice_pwd.clear();
  EXPECT_FALSE(command(shm::Command::kSessionCreate, shm::encode(empty)));
  EXPECT_EQ(counters().sessions, 0u);
  EXPECT_TRUE(command(shm::Command::kSessionCreate, good));
  EXPECT_FALSE(command(shm::Command::kSessionCreate, good));  // same id
  shm::SessionCreate same_ufrag = c;
  same_ufrag.session = shm::SessionId{99};
  EXPECT_FALSE(command(shm::Command::kSessionCreate, shm::encode(same_ufrag)));
  EXPECT_EQ(counters().sessions, 1u);

  // Commands naming nothing.
  shm::SessionId nobody{77};
  EXPECT_FALSE(add_track(b_, kVideo, shm::MediaKind::kVideo, 96));
  shm::TrackAdd t;
  t.session = nobody;
  t.ssrc = kVideo;
  t.kind = shm::MediaKind::kVideo;
  t.payload_type = 96;
  EXPECT_FALSE(command(shm::Command::kTrackAdd, shm::encode(t)));
  t.session = a_.session;
  auto track = shm::encode(t);
  auto track_extra = track;
  track_extra.push_back(0);
  EXPECT_FALSE(command(shm::Command::kTrackAdd, track_extra));
  EXPECT_TRUE(command(shm::Command::kTrackAdd, track));
  EXPECT_FALSE(command(shm::Command::kTrackAdd, track));    // same ssrc
  EXPECT_FALSE(subscribe(b_, a_, kVideo, kSubVideo, 100));  // no subscriber session
  EXPECT_FALSE(subscribe(a_, a_, kVideo, kSubVideo, 100));  // to itself
  EXPECT_FALSE(command(shm::Command::kSessionClose, shm::encode(shm::SessionClose{nobody})));
  EXPECT_FALSE(
      command(shm::Command::kSessionRemote, shm::encode(shm::SessionRemote{nobody, false, {}})));
  EXPECT_FALSE(command(shm::Command::kUnsubscribe, shm::encode(shm::Unsubscribe{a_.session, 5})));
  EXPECT_FALSE(command(shm::Command::kTrackRemove, shm::encode(shm::TrackRemove{a_.session, 5})));
  EXPECT_FALSE(
      command(shm::Command::kKeyframeRequest, shm::encode(shm::KeyframeRequest{a_.session, 5})));
  auto close_cmd = shm::encode(shm::SessionClose{a_.session});
  close_cmd.push_back(0);
  EXPECT_FALSE(command(shm::Command::kSessionClose, close_cmd));
  EXPECT_FALSE(command(shm::Command::kPolicyBegin, {}));  // not an SFU command
  EXPECT_EQ(counters().sessions, 1u);
  EXPECT_EQ(counters().tracks, 1u);
  EXPECT_EQ(counters().commands, 22u);
  EXPECT_EQ(counters().commands_refused, 20u);
}

TEST_F(EngineTest, TransmitExhaustionIsCountedAndNothingLeaks) {
  ASSERT_NO_FATAL_FAILURE(call());
  take(a_, rtp::PacketKind::kRtcp);
  out_.fail_acquire = true;
  send_rtp(a_, {});
  EXPECT_EQ(dropped(Drop::kTxExhausted), 1u);
  deliver(a_.address, binding_request(a_.username(), a_.server_pwd, {.tid_seed = 3}));
  EXPECT_EQ(dropped(Drop::kTxExhausted), 2u);
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  out_.fail_acquire = false;
  route();
  EXPECT_TRUE(a_.inbox.empty());
  EXPECT_TRUE(b_.inbox.empty());
}

// The uring backend's payloads start earlier in their slot than transmit views do, so a
// received packet can be longer than a transmit slot holds: it must not be copied past it.
TEST_F(EngineTest, PacketTooLongForATransmitSlotIsNotCopied) {
  ASSERT_NO_FATAL_FAILURE(call());
  auto wire = protect_rtp(a_, build_rtp({.payload = 1910}));  // 1934 bytes of RTP
  ASSERT_LE(wire.size(), FakeOutput::kSlotSize - 64u);
  deliver(a_.address, wire, SocketId{0}, /*offset=*/64);
  EXPECT_EQ(counters().rtp_in, 1u);
  EXPECT_EQ(counters().rtp_forwarded, 0u);
  EXPECT_TRUE(rtp_at(b_).empty());
  EXPECT_TRUE(out_.guards_intact());
  // The largest packet that fits with room for the tag is forwarded.
  std::size_t most =
      FakeOutput::kSlotSize - FakeOutput::kTxOffset - crypto::SrtpSession::kMaxTrailer;
  send_rtp(a_, {.sequence = 1001, .payload = most - 24});
  EXPECT_EQ(rtp_at(b_).size(), 1u);
}

}  // namespace
}  // namespace ringlane::sfu::testing
