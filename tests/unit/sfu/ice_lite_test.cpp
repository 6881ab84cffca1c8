// ICE-lite at the SFU (RFC 8445 §2.5, §7.3): which Binding requests are answered, what the
// answer says, and which addresses may then send DTLS and SRTP.
#include "ringlane/dataplane/sfu/ice_lite.hpp"

#include <gtest/gtest.h>

#include "unit/sfu/harness.hpp"

namespace ringlane::sfu::testing {
namespace {

std::uint16_t error_code(const stun::Message& m) {
  auto v = m.find(stun::attr::kErrorCode);
  if (!v || v->size() < 4) {
    return 0;
  }
  return static_cast<std::uint16_t>((*v)[2] * 100 + (*v)[3]);
}

// A DTLS ClientHello-shaped record: only its first byte matters to the demultiplexer.
const std::vector<std::uint8_t> kDtlsish = {22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

class IceCheck : public EngineTest, public ::testing::WithParamInterface<bool> {
 protected:
  Browser& peer() { return GetParam() ? c_ : a_; }
};

TEST_P(IceCheck, ValidCheckIsAnsweredFromItsSocketAndSetsTheAddress) {
  Browser& p = peer();
  ASSERT_TRUE(create(p));
  auto request = binding_request(p.username(), p.server_pwd, {.tid_seed = 40});
  deliver(p.address, request, SocketId{3});
  auto stun = take(p, rtp::PacketKind::kStun);
  ASSERT_EQ(stun.size(), 1u);
  EXPECT_EQ(stun[0].socket, SocketId{3});
  EXPECT_EQ(stun[0].to, p.address);
  auto r = stun::Message::parse(stun[0].bytes);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method(), stun::Method::kBinding);
  EXPECT_EQ(r->message_class(), stun::Class::kSuccess);
  EXPECT_EQ(r->transaction_id(), stun::Message::parse(request)->transaction_id());
  EXPECT_EQ(r->find_xor_address(stun::attr::kXorMappedAddress), p.address);
  ASSERT_TRUE(r->has_integrity());
  EXPECT_TRUE(r->check_integrity(as_bytes(p.server_pwd)));
  EXPECT_FALSE(r->check_integrity(as_bytes(p.server_pwd + "x")));
  ASSERT_TRUE(r->has_fingerprint());
  EXPECT_TRUE(r->check_fingerprint());

  auto events = take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].session, p.session);
  EXPECT_EQ(events[0].state, shm::SessionState::kIceConnected);
  EXPECT_EQ(events[0].elapsed_ms, 0u);
  EXPECT_EQ(counters().ice_checks, 1u);
  EXPECT_EQ(counters().ice_connected, 1u);

  // A second check on the same 5-tuple refreshes consent but is not a new connection.
  deliver(p.address, binding_request(p.username(), p.server_pwd, {.tid_seed = 41}), SocketId{3});
  EXPECT_EQ(take(p, rtp::PacketKind::kStun).size(), 1u);
  EXPECT_TRUE(take_events().empty());
  EXPECT_EQ(counters().ice_checks, 2u);
  EXPECT_EQ(counters().ice_connected, 1u);
  // The address may now talk DTLS: the session gets it (and waits for a real handshake).
  deliver(p.address, kDtlsish);
  EXPECT_EQ(dropped(Drop::kNoSession), 0u);
  // The same address on another local socket is another 5-tuple: a nomination there moves.
  deliver(p.address, binding_request(p.username(), p.server_pwd, {.tid_seed = 42}));
  EXPECT_EQ(take(p, rtp::PacketKind::kStun).size(), 1u);
  EXPECT_EQ(take_events().size(), 1u);
  EXPECT_EQ(counters().ice_moves, 1u);
}

std::string family_name(const ::testing::TestParamInfo<bool>& param) {
  return param.param ? "IPv6" : "IPv4";
}
INSTANTIATE_TEST_SUITE_P(Families, IceCheck, ::testing::Bool(), family_name);

TEST_F(EngineTest, CheckWithTheWrongPasswordIsDroppedUnanswered) {
  ASSERT_TRUE(create(a_));
  deliver(a_.address, binding_request(a_.username(), "not-the-password"));
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
  EXPECT_EQ(dropped(Drop::kBadIntegrity), 1u);
  EXPECT_EQ(counters().ice_checks, 0u);
  EXPECT_TRUE(take_events().empty());
  // It proved nothing: DTLS from there is still no one's.
  deliver(a_.address, kDtlsish);
  EXPECT_EQ(dropped(Drop::kNoSession), 1u);
}

TEST_F(EngineTest, CheckWithoutIntegrityOrWithABadFingerprintIsDropped) {
  ASSERT_TRUE(create(a_));
  // FINGERPRINT covers MESSAGE-INTEGRITY, not the reverse: a wrong CRC leaves MI valid.
  auto request = binding_request(a_.username(), a_.server_pwd);
  request.back() ^= 0x01;
  deliver(a_.address, request);
  EXPECT_EQ(dropped(Drop::kBadIntegrity), 1u);

  std::vector<std::uint8_t> buf(256);
  stun::TransactionId tid{};
  stun::Builder b(buf, stun::Method::kBinding, stun::Class::kRequest, tid);
  b.add_string(stun::attr::kUsername, a_.username());
  b.add_fingerprint();
  buf.resize(b.size());
  deliver(a_.address, buf);
  EXPECT_EQ(dropped(Drop::kBadIntegrity), 2u);
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
}

TEST_F(EngineTest, CheckForAnUnknownUfragIsDropped) {
  ASSERT_TRUE(create(a_));
  deliver(a_.address, binding_request("nobody:" + a_.client_ufrag, a_.server_pwd));
  deliver(a_.address, binding_request(a_.server_ufrag, a_.server_pwd));  // no ':'
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 2u);
  EXPECT_EQ(dropped(Drop::kBadIntegrity), 0u);
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
}

TEST_F(EngineTest, ControlledPeerGetsA487AndNoAddress) {
  ASSERT_TRUE(create(a_));
  deliver(a_.address, binding_request(a_.username(), a_.server_pwd,
                                      {.role = Role::kControlled, .use_candidate = false}));
  auto stun = take(a_, rtp::PacketKind::kStun);
  ASSERT_EQ(stun.size(), 1u);
  auto r = stun::Message::parse(stun[0].bytes);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->message_class(), stun::Class::kError);
  EXPECT_EQ(error_code(*r), 487);
  EXPECT_TRUE(r->check_integrity(as_bytes(a_.server_pwd)));
  EXPECT_TRUE(r->check_fingerprint());
  EXPECT_FALSE(r->has(stun::attr::kXorMappedAddress));
  EXPECT_EQ(counters().ice_role_conflicts, 1u);
  EXPECT_EQ(counters().ice_checks, 0u);
  EXPECT_TRUE(take_events().empty());
  deliver(a_.address, kDtlsish);
  EXPECT_EQ(dropped(Drop::kNoSession), 1u);
}

TEST_F(EngineTest, DtlsAndSrtpFromAnUncheckedAddressAreDropped) {
  ASSERT_TRUE(create(a_));
  std::vector<std::uint8_t> response;
  ASSERT_TRUE(ice(a_, response));
  Endpoint other = ep("127.0.0.1:6000");
  deliver(other, kDtlsish);
  deliver(other, build_rtp({}));
  auto rr = std::vector<std::uint8_t>{0x80, rtcp::kRr, 0, 1, 0, 0, 0, 1};
  deliver(other, rr);
  EXPECT_EQ(dropped(Drop::kNoSession), 3u);
  // Same IP, other port: a different 5-tuple.
  deliver(ep("127.0.0.1:5001"), kDtlsish);
  EXPECT_EQ(dropped(Drop::kNoSession), 4u);
}

TEST_F(EngineTest, WhatIsNotACheckIsCountedByKind) {
  ASSERT_TRUE(create(a_));
  auto request = binding_request(a_.username(), a_.server_pwd);
  // The same message as a success response and as an indication: not requests.
  auto response = request;
  response[0] = 0x01;  // Binding success (0x0101)
  deliver(a_.address, response);
  auto indication = request;
  indication[1] = 0x11;  // Binding indication (0x0011)
  deliver(a_.address, indication);
  EXPECT_EQ(dropped(Drop::kStunNotRequest), 2u);
  std::vector<std::uint8_t> truncated(request.begin(), request.begin() + 10);
  deliver(a_.address, truncated);
  EXPECT_EQ(dropped(Drop::kStunMalformed), 1u);
  deliver(a_.address, std::vector<std::uint8_t>{0x50, 1, 2, 3});  // TURN channel range
  deliver(a_.address, std::vector<std::uint8_t>{0xFF});
  EXPECT_EQ(dropped(Drop::kUnknownKind), 2u);
  EXPECT_EQ(counters().packets_in, 5u);
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
}

TEST_F(EngineTest, NominationFromANewAddressMovesTheSubscriber) {
  ASSERT_NO_FATAL_FAILURE(call());
  take(a_, rtp::PacketKind::kRtcp);
  // A check from a second address without USE-CANDIDATE is answered but moves nothing.
  Endpoint first = b_.address;
  b_.address = ep("127.0.0.1:7002");
  deliver(b_.address, binding_request(b_.username(), b_.server_pwd, {.use_candidate = false}),
          SocketId{1});
  EXPECT_EQ(take(b_, rtp::PacketKind::kStun).size(), 1u);
  EXPECT_TRUE(take_events().empty());
  send_rtp(a_, {.sequence = 1});
  route();
  ASSERT_EQ(stray_.size(), 1u);
  EXPECT_EQ(stray_[0].to, first);
  stray_.clear();

  // Nominated: media follows on the socket the check came in on.
  deliver(b_.address, binding_request(b_.username(), b_.server_pwd, {.tid_seed = 9}), SocketId{1});
  EXPECT_EQ(take(b_, rtp::PacketKind::kStun).size(), 1u);
  auto events = take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].session, b_.session);
  EXPECT_EQ(events[0].state, shm::SessionState::kIceConnected);
  EXPECT_EQ(counters().ice_moves, 1u);
  send_rtp(a_, {.sequence = 2});
  auto at_b = take(b_, rtp::PacketKind::kRtp);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].socket, SocketId{1});
  EXPECT_TRUE(stray_.empty());
  b_.inbox.push_front(std::move(at_b[0]));
  auto rtp = rtp_at(b_);
  ASSERT_EQ(rtp.size(), 1u);
  EXPECT_EQ(load_be16(&rtp[0][2]), 2u);
}

// An ICE restart (RFC 8445 §9): new credentials, same session. The old ones are answered until
// the client uses the new ones; media and keys are untouched; the new pair may move the session.
TEST_F(EngineTest, IceRestartTakesNewCredentialsAndKeepsTheSession) {
  ASSERT_NO_FATAL_FAILURE(call());
  take(a_, rtp::PacketKind::kRtcp);
  std::string old_ufrag = b_.server_ufrag;
  std::string old_pwd = b_.server_pwd;
  shm::SessionIceRestart r{b_.session, "srvB2", "restarted-password-0123456789"};
  ASSERT_TRUE(command(shm::Command::kSessionIceRestart, shm::encode(r)));
  EXPECT_EQ(counters().ice_restarts, 1u);
  // Credentials another session holds, or an unknown session, are refused.
  EXPECT_FALSE(command(shm::Command::kSessionIceRestart,
                       shm::encode(shm::SessionIceRestart{b_.session, a_.server_ufrag, "pw"})));
  EXPECT_FALSE(command(shm::Command::kSessionIceRestart,
                       shm::encode(shm::SessionIceRestart{shm::SessionId{77}, "x", "y"})));
  EXPECT_FALSE(command(shm::Command::kSessionIceRestart,
                       shm::encode(shm::SessionIceRestart{b_.session, "", "y"})));

  // Until the browser applies the new description, its checks use the old credentials.
  deliver(b_.address, binding_request(b_.username(), old_pwd, {.tid_seed = 20}));
  auto stun = take(b_, rtp::PacketKind::kStun);
  ASSERT_EQ(stun.size(), 1u);
  auto answer = stun::Message::parse(stun[0].bytes);
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->check_integrity(as_bytes(old_pwd)));
  EXPECT_EQ(counters().ice_restarts_completed, 0u);

  // The restarted check signs with the new password and comes from a new address (the network
  // changed): answered with the new password, and the session moves there.
  b_.server_ufrag = r.ice_ufrag;
  b_.server_pwd = r.ice_pwd;
  b_.client_ufrag = "cliB2";
  Endpoint moved = ep("127.0.0.1:7010");
  b_.address = moved;
  deliver(moved, binding_request(b_.username(), old_pwd, {.tid_seed = 21}));
  EXPECT_TRUE(take(b_, rtp::PacketKind::kStun).empty()) << "the old password for the new ufrag";
  EXPECT_EQ(dropped(Drop::kBadIntegrity), 1u);
  deliver(moved, binding_request(b_.username(), b_.server_pwd, {.tid_seed = 22}));
  stun = take(b_, rtp::PacketKind::kStun);
  ASSERT_EQ(stun.size(), 1u);
  answer = stun::Message::parse(stun[0].bytes);
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->check_integrity(as_bytes(b_.server_pwd)));
  EXPECT_EQ(answer->find_xor_address(stun::attr::kXorMappedAddress), moved);
  EXPECT_EQ(counters().ice_moves, 1u);
  EXPECT_EQ(counters().ice_restarts_completed, 1u);

  // Media still flows with the keys of the first handshake, to the new address.
  send_rtp(a_, {.sequence = 7});
  auto rtp = rtp_at(b_);
  ASSERT_EQ(rtp.size(), 1u);
  EXPECT_EQ(load_be16(&rtp[0][2]), 7u);
  EXPECT_EQ(counters().dtls_connected, 2u);  // a_ and b_, once each: no new handshake

  // Now that the new credentials were used, the old ones are gone.
  deliver(moved, binding_request(old_ufrag + ":cliB", old_pwd, {.tid_seed = 23}));
  EXPECT_TRUE(take(b_, rtp::PacketKind::kStun).empty());
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 1u);
  // A close forgets the new ones as well.
  ASSERT_TRUE(close(b_));
  deliver(moved, binding_request(b_.username(), b_.server_pwd, {.tid_seed = 24}));
  EXPECT_TRUE(take(b_, rtp::PacketKind::kStun).empty());
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 2u);
}

// Two restarts before the client used the first: only the original and the latest answer.
TEST_F(EngineTest, IceRestartOfARestartKeepsOnlyTheOriginalAndTheLatest) {
  ASSERT_NO_FATAL_FAILURE(connect(a_));
  std::string original = a_.server_pwd;
  ASSERT_TRUE(command(shm::Command::kSessionIceRestart,
                      shm::encode(shm::SessionIceRestart{a_.session, "first", "first-pwd-0123"})));
  ASSERT_TRUE(command(shm::Command::kSessionIceRestart,
                      shm::encode(shm::SessionIceRestart{a_.session, "second", "second-pwd-012"})));
  EXPECT_EQ(counters().ice_restarts, 2u);
  deliver(a_.address, binding_request("first:cliA", "first-pwd-0123", {.tid_seed = 30}));
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 1u);
  deliver(a_.address, binding_request("second:cliA", "second-pwd-012", {.tid_seed = 31}));
  EXPECT_EQ(take(a_, rtp::PacketKind::kStun).size(), 1u);
  // The latest credentials are in use: the original ones are gone.
  deliver(a_.address, binding_request(a_.username(), original, {.tid_seed = 32}));
  EXPECT_TRUE(take(a_, rtp::PacketKind::kStun).empty());
  EXPECT_EQ(dropped(Drop::kUnknownUfrag), 2u);
}

// The sans-I/O pieces on their own.
TEST(IceLite, LocalUfragIsTheFirstHalfOfUsername) {
  auto parse_user = [](std::string_view user, std::vector<std::uint8_t>& keep) {
    keep.assign(256, 0);
    stun::Builder b(keep, stun::Method::kBinding, stun::Class::kRequest, stun::TransactionId{});
    if (!user.empty()) {
      b.add_string(stun::attr::kUsername, user);
    }
    keep.resize(b.size());
    return stun::Message::parse(keep);
  };
  std::vector<std::uint8_t> keep;
  auto m = parse_user("abc:def", keep);
  ASSERT_TRUE(m);
  EXPECT_EQ(local_ufrag(*m), "abc");
  m = parse_user("abc:", keep);
  EXPECT_EQ(local_ufrag(*m), "abc");
  m = parse_user(":def", keep);
  EXPECT_EQ(local_ufrag(*m), std::nullopt);
  m = parse_user("abcdef", keep);
  EXPECT_EQ(local_ufrag(*m), std::nullopt);
  m = parse_user("", keep);
  EXPECT_EQ(local_ufrag(*m), std::nullopt);
}

TEST(IceLite, CheckRequestAndResponse) {
  auto request = binding_request("s:c", "pwd", {.use_candidate = false});
  auto m = stun::Message::parse(request);
  ASSERT_TRUE(m);
  Check c = check_request(*m, "pwd");
  EXPECT_EQ(c.result, CheckResult::kValid);
  EXPECT_FALSE(c.use_candidate);
  EXPECT_EQ(check_request(*m, "pwe").result, CheckResult::kBadIntegrity);
  auto nominating = binding_request("s:c", "pwd", {.role = Role::kNone});
  auto n = stun::Message::parse(nominating);
  ASSERT_TRUE(n);
  c = check_request(*n, "pwd");
  EXPECT_EQ(c.result, CheckResult::kValid);
  EXPECT_TRUE(c.use_candidate);

  Endpoint from = ep("192.0.2.7:40000");
  std::array<std::uint8_t, 128> out{};
  std::size_t len = write_response(*m, CheckResult::kValid, from, "pwd", out);
  // 20 header + XOR-MAPPED-ADDRESS 12 + MESSAGE-INTEGRITY 24 + FINGERPRINT 8.
  ASSERT_EQ(len, 64u);
  auto r = stun::Message::parse(Bytes(out.data(), len));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->find_xor_address(stun::attr::kXorMappedAddress), from);
  EXPECT_TRUE(r->check_integrity(as_bytes(std::string_view("pwd"))));
  // Too small a buffer writes nothing that could be sent.
  EXPECT_EQ(write_response(*m, CheckResult::kValid, from, "pwd", MutableBytes(out.data(), 40)), 0u);
}

}  // namespace
}  // namespace ringlane::sfu::testing
