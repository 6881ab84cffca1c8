#include <gtest/gtest.h>

#include "ringlane/common/cidr.hpp"
#include "ringlane/common/endpoint.hpp"

namespace ringlane {

TEST(Endpoint, ParsesAndPrintsBothFamilies) {
  auto v4 = Endpoint::parse("192.0.2.1:3478");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family(), Family::kV4);
  EXPECT_EQ(v4->port, 3478);
  EXPECT_EQ(v4->to_string(), "192.0.2.1:3478");
  auto v6 = Endpoint::parse("[2001:db8::1]:40000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), Family::kV6);
  EXPECT_EQ(v6->to_string(), "[2001:db8::1]:40000");
}

TEST(Endpoint, RefusesMalformed) {
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "[::1]", "::1:80x",
                          "300.1.1.1:5", "[::1:5", "1.2.3.4:-1"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
}

TEST(IpAddress, UnmapsIpv4MappedIpv6) {
  auto mapped = IpAddress::parse("::ffff:127.0.0.1");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->family, Family::kV6);
  EXPECT_EQ(mapped->unmapped(), IpAddress::v4(127, 0, 0, 1));
  auto plain = IpAddress::parse("2001:db8::1");
  EXPECT_EQ(plain->unmapped(), *plain);
}

TEST(Cidr, ContainsByPrefix) {
  auto net = Cidr::parse("172.16.0.0/12");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(*IpAddress::parse("172.31.255.255")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("172.32.0.0")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("::1")));
  auto host = Cidr::parse("::1");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix_len, 128u);
  EXPECT_TRUE(host->contains(*IpAddress::parse("::1")));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/x"));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
}

}  // namespace ringlane
