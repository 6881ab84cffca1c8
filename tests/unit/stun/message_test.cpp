// RFC 5769 test vectors, byte for byte, plus malformed-input cases.
#include "ringlane/dataplane/stun/message.hpp"

#include <gtest/gtest.h>

#include "ringlane/dataplane/stun/builder.hpp"
#include "unit/test_util.hpp"

namespace ringlane::stun {
namespace {
using ringlane::testing::from_hex;

constexpr std::string_view kPassword = "VOkJxbRl1RmTxUk/WvJxBt";

// RFC 5769 §2.1
const auto kSampleRequest = from_hex(
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e7400240004"
    "6e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56"
    "781ef2b5b2d3f249c1b571a280280004e57a3bcf");
// RFC 5769 §2.2
const auto kIpv4Response = from_hex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147"
    "e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96");
// RFC 5769 §2.3
const auto kIpv6Response = from_hex(
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a147"
    "0113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004"
    "c8fb0b4c");
// RFC 5769 §2.4 (long-term credentials; the password after SASLprep is "TheMatrIX")
const auto kLongTermRequest = from_hex(
    "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e"
    "6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666");

TransactionId rfc_tid() {
  auto v = from_hex("b7e7a701bc34d686fa87dfae");
  TransactionId t{};
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

TEST(StunRfc5769, SampleRequestParsesAndVerifies) {
  auto m = Message::parse(kSampleRequest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::kBinding);
  EXPECT_EQ(m->message_class(), Class::kRequest);
  EXPECT_EQ(m->find_string(attr::kSoftware), "STUN test client");
  EXPECT_EQ(m->find_string(attr::kUsername), "evtj:h6vY");
  EXPECT_EQ(m->find_u32(attr::kPriority), 0x6e0001ffu);
  EXPECT_TRUE(m->check_fingerprint());
  EXPECT_TRUE(m->check_integrity(as_bytes(kPassword)));
  EXPECT_FALSE(m->check_integrity(as_bytes("wrong")));
}

TEST(StunRfc5769, SampleRequestBuiltByteForByte) {
  std::array<std::uint8_t, 256> out{};
  Builder b(out, Method::kBinding, Class::kRequest, rfc_tid());
  b.set_padding_byte(0x20);
  b.add_string(attr::kSoftware, "STUN test client");
  b.add_u32(attr::kPriority, 0x6e0001ff);
  b.add_u64(attr::kIceControlled, 0x932ff9b151263b36ull);
  b.add_string(attr::kUsername, "evtj:h6vY");
  b.add_integrity(as_bytes(kPassword));
  b.add_fingerprint();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::vector<std::uint8_t>(b.bytes().begin(), b.bytes().end()), kSampleRequest);
}

TEST(StunRfc5769, Ipv4ResponseBothWays) {
  auto m = Message::parse(kIpv4Response);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message_class(), Class::kSuccess);
  auto mapped = m->find_xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->to_string(), "192.0.2.1:32853");
  EXPECT_TRUE(m->check_integrity(as_bytes(kPassword)));
  EXPECT_TRUE(m->check_fingerprint());

  std::array<std::uint8_t, 256> out{};
  Builder b(out, Method::kBinding, Class::kSuccess, rfc_tid());
  b.set_padding_byte(0x20);
  b.add_string(attr::kSoftware, "test vector");
  b.add_xor_address(attr::kXorMappedAddress, *Endpoint::parse("192.0.2.1:32853"));
  b.add_integrity(as_bytes(kPassword));
  b.add_fingerprint();
  EXPECT_EQ(std::vector<std::uint8_t>(b.bytes().begin(), b.bytes().end()), kIpv4Response);
}

TEST(StunRfc5769, Ipv6ResponseBothWays) {
  auto m = Message::parse(kIpv6Response);
  ASSERT_TRUE(m);
  auto mapped = m->find_xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->to_string(), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  EXPECT_TRUE(m->check_integrity(as_bytes(kPassword)));
  EXPECT_TRUE(m->check_fingerprint());

  std::array<std::uint8_t, 256> out{};
  Builder b(out, Method::kBinding, Class::kSuccess, rfc_tid());
  b.set_padding_byte(0x20);
  b.add_string(attr::kSoftware, "test vector");
  b.add_xor_address(attr::kXorMappedAddress,
                    *Endpoint::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  b.add_integrity(as_bytes(kPassword));
  b.add_fingerprint();
  EXPECT_EQ(std::vector<std::uint8_t>(b.bytes().begin(), b.bytes().end()), kIpv6Response);
}

TEST(StunRfc5769, LongTermAuthentication) {
  auto m = Message::parse(kLongTermRequest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->find_string(attr::kNonce), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_EQ(m->find_string(attr::kRealm), "example.org");
  auto username = m->find_string(attr::kUsername);
  ASSERT_TRUE(username);
  EXPECT_EQ(*username, "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9");
  auto key = long_term_key(*username, "example.org", "TheMatrIX");
  EXPECT_TRUE(m->check_integrity(key));
  EXPECT_FALSE(m->has_fingerprint());
}

TEST(StunParse, RejectsEveryTruncation) {
  // No prefix of a valid message is itself valid (the length field disagrees).
  for (std::size_t n = 0; n < kSampleRequest.size(); ++n) {
    ParseError e{};
    EXPECT_FALSE(Message::parse(Bytes(kSampleRequest.data(), n), &e)) << n;
  }
}

TEST(StunParse, ReasonsForBadInput) {
  ParseError e{};
  auto bad_cookie = kSampleRequest;
  bad_cookie[4] ^= 1;
  EXPECT_FALSE(Message::parse(bad_cookie, &e));
  EXPECT_EQ(e, ParseError::kNotStun);

  auto overlong_attr = kSampleRequest;
  overlong_attr[22] = 0x7f;  // SOFTWARE length runs past the end
  EXPECT_FALSE(Message::parse(overlong_attr, &e));
  EXPECT_EQ(e, ParseError::kBadAttribute);

  auto odd_len = kSampleRequest;
  odd_len[3] = 0x57;
  EXPECT_FALSE(Message::parse(odd_len, &e));
  EXPECT_EQ(e, ParseError::kBadLength);

  // An attribute after FINGERPRINT.
  auto after_fp = kSampleRequest;
  after_fp[3] += 4;
  for (std::uint8_t b : {0x80, 0x22, 0x00, 0x00}) {
    after_fp.push_back(b);
  }
  EXPECT_FALSE(Message::parse(after_fp, &e));
  EXPECT_EQ(e, ParseError::kBadFingerprint);
}

TEST(StunParse, AttributesAfterIntegrityAreIgnored) {
  std::array<std::uint8_t, 256> out{};
  Builder b(out, Method::kBinding, Class::kRequest, rfc_tid());
  b.add_string(attr::kUsername, "a");
  b.add_integrity(as_bytes("k"));
  b.add_string(attr::kRealm, "smuggled");
  b.add_fingerprint();
  auto m = Message::parse(b.bytes());
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has(attr::kRealm));
  EXPECT_TRUE(m->check_fingerprint());
}

TEST(StunParse, TamperedIntegrityAndFingerprintFail) {
  auto tampered = kSampleRequest;
  tampered[30] ^= 0x01;  // inside SOFTWARE
  auto m = Message::parse(tampered);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->check_integrity(as_bytes(kPassword)));
  EXPECT_FALSE(m->check_fingerprint());
}

TEST(StunBuilder, OverflowIsReportedNotWritten) {
  std::array<std::uint8_t, 24> small{};
  Builder b(small, Method::kBinding, Class::kRequest, rfc_tid());
  b.add_string(attr::kSoftware, "this does not fit");
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.size(), kHeaderSize);
}

TEST(StunMessageType, MethodAndClassRoundTrip) {
  EXPECT_EQ(message_type(Method::kAllocate, Class::kRequest), 0x0003);
  EXPECT_EQ(message_type(Method::kAllocate, Class::kSuccess), 0x0103);
  EXPECT_EQ(message_type(Method::kAllocate, Class::kError), 0x0113);
  EXPECT_EQ(message_type(Method::kData, Class::kIndication), 0x0017);
  EXPECT_EQ(method_of(0x0113), Method::kAllocate);
  EXPECT_EQ(class_of(0x0113), Class::kError);
}

}  // namespace
}  // namespace ringlane::stun
