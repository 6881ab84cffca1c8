#include "ringlane/turn/policy.hpp"

#include <gtest/gtest.h>

#include "ringlane/dataplane/turn/nonce_issuer.hpp"
#include "ringlane/dataplane/turn/user_quota.hpp"
#include "ringlane/turn/rest_credentials.hpp"

namespace ringlane::turn {

TEST(Policy, DefaultDenyAndExplicitAllow) {
  Policy p;
  EXPECT_FALSE(p.peer_allowed(*IpAddress::parse("127.0.0.1")));
  EXPECT_FALSE(p.peer_allowed(*IpAddress::parse("::ffff:192.168.0.1")));
  EXPECT_TRUE(p.peer_allowed(*IpAddress::parse("8.8.8.8")));
  EXPECT_TRUE(p.peer_allowed(*IpAddress::parse("2001:4860::8888")));
  p.deny_peers.push_back(*Cidr::parse("8.8.8.0/24"));
  EXPECT_FALSE(p.peer_allowed(*IpAddress::parse("8.8.8.8")));
  p.allow_peers.push_back(*Cidr::parse("127.0.0.1"));
  EXPECT_TRUE(p.peer_allowed(*IpAddress::parse("127.0.0.1")));
  EXPECT_TRUE(p.peer_allowed(*IpAddress::parse("::ffff:127.0.0.1")));
  EXPECT_FALSE(p.peer_allowed(*IpAddress::parse("127.0.0.2")));
}

TEST(Credentials, RestPasswordMatchesCoturnScheme) {
  // base64(HMAC-SHA1("secret", "1700000000:user")), computed independently with
  // `printf 1700000000:user | openssl dgst -sha1 -hmac secret -binary | base64`.
  EXPECT_EQ(rest_password("secret", "1700000000:user"), "I/MZeIG6MwzOV8Uubr9liB2556o=");
  EXPECT_EQ(rest_username_expiry("1700000000:user"), 1700000000);
  EXPECT_EQ(rest_username_expiry("1700000000"), 1700000000);
  EXPECT_FALSE(rest_username_expiry("alice"));
  EXPECT_FALSE(rest_username_expiry(":x"));
}

TEST(Credentials, NonceExpiresAndIsBoundToAddress) {
  std::array<std::uint8_t, 32> secret{};
  NonceIssuer n(secret);
  auto a = *IpAddress::parse("192.0.2.1");
  auto nonce = n.issue(a, 1000, 60);
  EXPECT_EQ(n.check(nonce, a, 1000), NonceIssuer::Check::kValid);
  EXPECT_EQ(n.check(nonce, a, 1061), NonceIssuer::Check::kStale);
  EXPECT_EQ(n.check(nonce, *IpAddress::parse("192.0.2.2"), 1000), NonceIssuer::Check::kInvalid);
  std::string forged = nonce;
  forged[5] = forged[5] == 'f' ? 'e' : 'f';  // move the expiry
  EXPECT_EQ(n.check(forged, a, 1000), NonceIssuer::Check::kInvalid);
  EXPECT_EQ(n.check("short", a, 1000), NonceIssuer::Check::kInvalid);
}

TEST(UserQuota, CountsAcrossCallers) {
  UserQuota q;
  EXPECT_TRUE(q.acquire("u", 2));
  EXPECT_TRUE(q.acquire("u", 2));
  EXPECT_FALSE(q.acquire("u", 2));
  q.release("u");
  EXPECT_TRUE(q.acquire("u", 2));
  EXPECT_TRUE(q.acquire("v", 0));
  EXPECT_EQ(q.count("u"), 2u);
}

}  // namespace ringlane::turn
