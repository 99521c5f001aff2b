// parse_host_port: the one HOST:PORT syntax of Ferrite's programs.
#include "common/address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferrite {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(Address, HostAndPort) {
  auto a = parse_host_port("127.0.0.1:11311");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 11311);
  auto n = parse_host_port("cache-1.example:1");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(n->host, "cache-1.example");
  EXPECT_EQ(n->port, 1);
}

TEST(Address, ABareHostTakesTheDefaultPortWhenThereIsOne) {
  auto a = parse_host_port("10.0.0.1", 11211);
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, 11211);
  auto b = parse_host_port("10.0.0.1");
  ASSERT_FALSE(b.is_ok());
  EXPECT_THAT(std::string(b.status().message()), AllOf(HasSubstr("\"10.0.0.1\""), HasSubstr("port is missing")));
}

TEST(Address, BadPortsAndHostsAreRefusedWithTheText) {
  for (const char* s : {"h:0", "h:65536", "h:", "h:12x", "h:-1", "h: 80", "h:99999999999"}) {
    auto a = parse_host_port(s, 1);
    ASSERT_FALSE(a.is_ok()) << s;
    EXPECT_THAT(std::string(a.status().message()), AllOf(HasSubstr(s), HasSubstr("1..65535"))) << s;
  }
  auto e = parse_host_port(":80");
  ASSERT_FALSE(e.is_ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("host is empty"));
}

}  // namespace
}  // namespace ferrite
