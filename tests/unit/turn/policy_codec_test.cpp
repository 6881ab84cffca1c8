#include "ringlane/turn/policy_codec.hpp"

#include <gtest/gtest.h>

namespace ringlane::turn {
namespace {

Policy sample() {
  Policy p;
  p.realm = "example.org";
  p.software = "";
  p.add_user("alice", "pw1");
  p.add_user("bob", "pw2");
  p.rest_secrets = {"s1", "s2"};
  p.allow_peers = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1")};
  p.deny_peers = {*Cidr::parse("8.8.8.0/24")};
  p.user_quota = 3;
  p.allocation_bandwidth_bps = 1'000'000'000'000ull;
  p.strict_channel_numbers = true;
  p.max_lifetime_s = 1200;
  return p;
}

TEST(PolicyCodec, RoundTrip) {
  Policy p = sample();
  auto q = decode_policy(encode_policy(p));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->realm, p.realm);
  EXPECT_EQ(q->software, "");
  EXPECT_EQ(q->users, p.users);
  EXPECT_EQ(q->rest_secrets, p.rest_secrets);
  ASSERT_EQ(q->allow_peers.size(), 2u);
  EXPECT_EQ(q->allow_peers[1].to_string(), "::1/128");
  EXPECT_EQ(q->deny_peers[0].to_string(), "8.8.8.0/24");
  EXPECT_EQ(q->user_quota, 3u);
  EXPECT_EQ(q->allocation_bandwidth_bps, 1'000'000'000'000ull);
  EXPECT_TRUE(q->strict_channel_numbers);
  EXPECT_EQ(q->max_lifetime_s, 1200u);
  EXPECT_TRUE(q->peer_allowed(*IpAddress::parse("127.0.0.1")));
}

TEST(PolicyCodec, RefusesEveryTruncationAndCorruption) {
  auto blob = encode_policy(sample());
  std::string error;
  for (std::size_t n = 0; n < blob.size(); ++n) {
    auto cut = std::vector<std::uint8_t>(blob.begin(), blob.begin() + static_cast<long>(n));
    auto q = decode_policy(cut, &error);
    // A prefix ending exactly on a field boundary is a smaller policy; it must still have a realm.
    if (q) {
      EXPECT_EQ(q->realm, "example.org");
    }
  }
  auto bad_tag = blob;
  bad_tag[0] = 0x77;
  EXPECT_FALSE(decode_policy(bad_tag, &error));
  EXPECT_EQ(error, "unknown field");
  auto long_len = blob;
  long_len[1] = 0x7f;
  EXPECT_FALSE(decode_policy(long_len, &error));
  EXPECT_FALSE(decode_policy({}, &error));
  EXPECT_EQ(error, "no realm");
}

TEST(PolicyAssembler, SequenceRules) {
  auto blob = encode_policy(sample());
  PolicyAssembler a;
  std::string error;
  EXPECT_FALSE(a.chunk(blob, error));  // no begin
  ASSERT_TRUE(a.begin(5, static_cast<std::uint32_t>(blob.size()), error));
  ASSERT_TRUE(a.chunk(Bytes(blob.data(), 10), error));
  ASSERT_TRUE(a.chunk(Bytes(blob.data() + 10, blob.size() - 10), error));
  EXPECT_FALSE(a.commit(6, error));  // another generation
  ASSERT_TRUE(a.begin(6, static_cast<std::uint32_t>(blob.size()), error));
  ASSERT_TRUE(a.chunk(blob, error));
  EXPECT_TRUE(a.commit(6, error));
  ASSERT_TRUE(a.begin(7, 4, error));
  EXPECT_FALSE(a.chunk(blob, error));  // past the announced size
  EXPECT_FALSE(a.begin(8, PolicyAssembler::kMaxBytes + 1, error));
}

}  // namespace
}  // namespace ringlane::turn
