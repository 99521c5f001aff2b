// memcached's command-line flags (-p -U -l -t -m -c -v -M) as aliases of
// config keys: each lands on the Config that the equivalent --set keys give,
// a bad value is an error naming the flag, and the config file keeps its
// long option --config (-c is now memcached's connection limit).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/config.h"
#include "tests/util/temp_path.h"

#include <fstream>

namespace ferrite::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

StatusOr<ParsedArgs> args(std::vector<std::string> a) {
  a.insert(a.begin(), "ferrited");
  std::vector<const char*> argv;
  for (auto& s : a) argv.push_back(s.c_str());
  return config_from_args(static_cast<int>(argv.size()), argv.data());
}

Config config_of(std::vector<std::string> a) {
  auto p = args(a);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? p->config : Config{};
}

std::string error_of(std::vector<std::string> a) {
  auto p = args(a);
  EXPECT_FALSE(p.is_ok()) << "accepted: " << fmt::format("{}", fmt::join(a, " "));
  return p.is_ok() ? std::string() : std::string(p.status().message());
}

TEST(ConfigFlags, MemcachedFlagsGiveTheConfigOfTheirKeys) {
  const Config flags = config_of({"-p", "11222", "-U", "11223", "-l", "127.0.0.2", "-t", "3", "-m", "64", "-c",
                                  "100", "-vv", "-M"});
  const Config keys = config_of({"--set", "server.memcached_tcp_port=11222", "--set", "server.memcached_udp_port=11223",
                                 "--set", "server.bind=\"127.0.0.2\"", "--set", "server.workers=3", "--set",
                                 "pool.size=\"64MiB\"", "--set", "server.max_connections=100", "--set",
                                 "log.level=debug", "--set", "pool.when_full=error"});
  EXPECT_TRUE(flags == keys) << "flags:\n" << to_toml(flags) << "keys:\n" << to_toml(keys);
  EXPECT_FALSE(flags == Config{}) << "the flags changed nothing";
  // Each flag alone moves its key off the default.
  EXPECT_EQ(config_of({"-p", "11222"}).server.memcached_tcp_port, 11222u);
  EXPECT_EQ(config_of({"-U", "11223"}).server.memcached_udp_port, 11223u);
  EXPECT_EQ(config_of({"-U", "0"}).server.memcached_udp_port, 0u) << "-U 0: UDP off, as memcached";
  EXPECT_EQ(config_of({"-l", "127.0.0.2"}).server.bind, "127.0.0.2");
  EXPECT_EQ(config_of({"--listen", "127.0.0.3"}).server.bind, "127.0.0.3");
  EXPECT_EQ(config_of({"-t", "3"}).server.workers, 3u);
  EXPECT_EQ(config_of({"--threads", "4"}).server.workers, 4u);
  EXPECT_EQ(config_of({"-m", "64"}).pool.size, 64ull << 20);
  EXPECT_EQ(config_of({"-m", "4096"}).pool.size, 4ull << 30);
  EXPECT_EQ(config_of({"-c", "100"}).server.max_connections, 100u);
  EXPECT_EQ(config_of({"-v"}).log.level, "info");
  EXPECT_EQ(config_of({"-vv"}).log.level, "debug");
  EXPECT_EQ(config_of({"-v", "-v", "-v"}).log.level, "debug");
  EXPECT_EQ(config_of({"--evict", "--set", "pool.reserve=0.2"}).pool.when_full, "evict");
  EXPECT_EQ(config_of({"--disable-evictions"}).pool.when_full, "error");
  // Without -M the default stays ferrited's own ("error"), not memcached's evict.
  EXPECT_EQ(config_of({}).pool.when_full, "error");
  EXPECT_EQ(Config{}.server.max_connections, 4096u);
}

TEST(ConfigFlags, AFlagBeatsSetForTheSameKey) {
  EXPECT_EQ(config_of({"--set", "server.memcached_tcp_port=1000", "-p", "2000"}).server.memcached_tcp_port, 2000u);
}

TEST(ConfigFlags, BadValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> argv;
    std::string flag, message;
  };
  const Case cases[] = {
      {{"-p", "70000"}, "-p,--memcached-tcp-port",
       "server.memcached_tcp_port (in command-line flags) = 70000 is out of range (allowed 0..65535)"},
      {{"-p", "-1"}, "-p,--memcached-tcp-port", "out of range"},
      {{"-p", "eleven"}, "-p,--memcached-tcp-port \"eleven\"", "not an integer"},
      {{"-U", "65536"}, "-U,--memcached-udp-port",
       "server.memcached_udp_port (in command-line flags) = 65536 is out of range"},
      {{"-l", "localhost"}, "-l,--bind,--listen \"localhost\"", "IPv4"},
      {{"-t", "0"}, "-t,--workers,--threads",
       "server.workers (in command-line flags) = 0 is out of range (allowed 1..63)"},
      {{"-t", "64"}, "-t,--workers,--threads", "out of range"},
      {{"-m", "8"}, "-m,--memory-limit \"8\"",
       "pool.size (in command-line flags) = 8388608 is out of range (allowed 16MiB..16TiB)"},
      {{"-m", "64M"}, "-m,--memory-limit \"64M\"", "not a whole number of megabytes"},
      {{"-m", "-5"}, "-m,--memory-limit", "not a whole number of megabytes"},
      {{"-m", "99999999999999999999"}, "-m,--memory-limit", "out of range"},
      {{"-c", "0"}, "-c,--conn-limit",
       "server.max_connections (in command-line flags) = 0 is out of range (allowed 1..1048576)"},
      {{"-c", "ferrited.toml"}, "-c,--conn-limit \"ferrited.toml\"", "the config file is given with --config"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(error_of(c.argv), AllOf(HasSubstr(c.flag), HasSubstr(c.message))) << c.argv[0] << " " << c.argv[1];
  }
  EXPECT_THAT(error_of({"-m", "64", "--pool-size", "1GiB"}),
              AllOf(HasSubstr("--pool-size"), HasSubstr("-m,--memory-limit"), HasSubstr("both set pool.size")));
  EXPECT_THAT(error_of({"-v", "--log-level", "warn"}), HasSubstr("-v and --log-level"));
  EXPECT_THAT(error_of({"-p"}), HasSubstr("-p"));
}

TEST(ConfigFlags, TheConfigFileIsDashDashConfig) {
  testing::TempPath file("cfg");
  std::ofstream(file.str()) << "[server]\nmemcached_tcp_port = 11999\n";
  auto a = args({"--config", file.str(), "-c", "1024"});
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->config.server.memcached_tcp_port, 11999u) << "the file was read";
  EXPECT_EQ(a->config.server.max_connections, 1024u) << "-c is the connection limit";
}

TEST(ConfigFlags, HelpShowsEachFlagWithItsDefault) {
  auto h = args({"--help"});
  ASSERT_TRUE(h.is_ok());
  const Config d;
  for (std::string s : {fmt::format("memcached TCP port, 0 = off (default: {})", d.server.memcached_tcp_port),
                        fmt::format("memcached TCP connections at once (default: {})", d.server.max_connections),
                        fmt::format("(default: {})", d.pool.size >> 20), std::string("-m,--memory-limit"),
                        std::string("-U,--memcached-udp-port"), std::string("-l,--bind,--listen"),
                        std::string("-t,--workers,--threads"), std::string("-v,--verbose"),
                        std::string("-M,--no-evict,--disable-evictions"), std::string("--config")}) {
    EXPECT_THAT(h->message, HasSubstr(s));
  }
}

}  // namespace
}  // namespace ferrite::server
