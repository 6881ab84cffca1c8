#include "ringlane/crypto/jwt.hpp"

#include <gtest/gtest.h>

namespace ringlane::crypto {
namespace {

// RFC 7515 Appendix A.1: the HS256 example, key given as a JWK "k" (base64url).
constexpr const char* kRfcToken =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr const char* kRfcKey =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

std::string rfc_key() {
  auto k = base64url_decode(kRfcKey);
  EXPECT_TRUE(k.has_value());
  return std::string(k->begin(), k->end());
}

TEST(Jws, VerifiesRfc7515Example) {
  std::vector<std::string> secrets = {"not this one", rfc_key()};
  JwsError error;
  auto parts = jws_verify_hs256(kRfcToken, secrets, error);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(error, JwsError::kNone);
  EXPECT_EQ(parts->header_json, "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
  EXPECT_EQ(parts->payload_json,
            "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");
}

TEST(Jws, RejectsTamperedPayloadAndWrongKey) {
  std::string token = kRfcToken;
  token[60] = token[60] == 'A' ? 'B' : 'A';  // inside the payload
  std::vector<std::string> secrets = {rfc_key()};
  JwsError error;
  EXPECT_FALSE(jws_verify_hs256(token, secrets, error));
  EXPECT_EQ(error, JwsError::kBadSignature);
  std::vector<std::string> wrong = {"secret"};
  EXPECT_FALSE(jws_verify_hs256(kRfcToken, wrong, error));
  EXPECT_EQ(error, JwsError::kBadSignature);
}

TEST(Jws, RejectsMalformed) {
  std::vector<std::string> secrets = {"s"};
  JwsError error;
  for (const char* bad :
       {"", "a.b", "a.b.c.d", "!!.e30.AAAA", "e30.e30.", "e30.e30.AAA+", "e30.e30.AAAA"}) {
    EXPECT_FALSE(jws_verify_hs256(bad, secrets, error)) << bad;
    EXPECT_EQ(error, JwsError::kMalformed) << bad;
  }
}

TEST(Jws, SignThenVerifyRoundTrips) {
  std::string token = jws_sign_hs256(R"({"sub":"alice","room":"r1"})", "k1");
  std::vector<std::string> secrets = {"k0", "k1"};
  JwsError error;
  auto parts = jws_verify_hs256(token, secrets, error);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->payload_json, R"({"sub":"alice","room":"r1"})");
  EXPECT_EQ(parts->header_json, R"({"alg":"HS256","typ":"JWT"})");
}

TEST(Base64Url, NoPaddingAndUrlAlphabet) {
  std::vector<std::uint8_t> data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url_encode(data), "-_-_");
  std::vector<std::uint8_t> one = {0x61};
  EXPECT_EQ(base64url_encode(one), "YQ");
  auto back = base64url_decode("YQ");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, one);
  EXPECT_FALSE(base64url_decode("YQ=="));
  EXPECT_FALSE(base64url_decode("Y"));
}

}  // namespace
}  // namespace ringlane::crypto
