#include "ringlane/crypto/digest.hpp"

#include <gtest/gtest.h>

#include "ringlane/common/bytes.hpp"

namespace ringlane::crypto {
namespace {
std::string hex(Bytes b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (auto c : b) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}
}  // namespace

TEST(Digest, HmacSha1Rfc2202Case2) {
  auto mac = hmac_sha1(as_bytes("Jefe"), {as_bytes("what do ya want "), as_bytes("for nothing?")});
  EXPECT_EQ(hex(mac), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(Digest, HmacSha256Rfc4231Case2) {
  auto mac = hmac_sha256(as_bytes("Jefe"), {as_bytes("what do ya want for nothing?")});
  EXPECT_EQ(hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Digest, Md5AndCrc32KnownValues) {
  EXPECT_EQ(hex(md5({as_bytes("user:realm:pass")})), "8493fbc53ba582fb4c044c456bdc40eb");
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xCBF43926u);
}

TEST(Digest, Base64RoundTripAndRejects) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto enc = base64_encode(as_bytes(s));
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << s;
    EXPECT_EQ(std::string(dec->begin(), dec->end()), s);
  }
  EXPECT_EQ(base64_encode(as_bytes("foobar")), "Zm9vYmFy");
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("a!c="));
}

}  // namespace ringlane::crypto
