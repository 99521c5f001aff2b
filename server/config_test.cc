// Config: defaults, the embedded default file, every key, every rejection
// (with the key's name and the allowed range), and command-line overrides.
#include "server/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstdlib>
#include <fstream>

#include "common/version.h"
#include "server/engine.h"
#include "tests/util/temp_path.h"

namespace ferrite::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string error_of(std::string_view toml) {
  auto c = parse_config(toml, "test.toml");
  EXPECT_FALSE(c.is_ok()) << "accepted: " << toml;
  return c.is_ok() ? std::string() : std::string(c.status().message());
}

StatusOr<ParsedArgs> args(std::vector<std::string> a) {
  a.insert(a.begin(), "ferrited");
  std::vector<const char*> argv;
  for (auto& s : a) argv.push_back(s.c_str());
  return config_from_args(static_cast<int>(argv.size()), argv.data());
}

TEST(Config, EmbeddedDefaultEqualsBuiltInDefaults) {
  auto c = parse_config(default_config_toml(), "default");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_TRUE(*c == Config{}) << "configs/default.toml and Config{} have drifted apart";
  EXPECT_EQ(c->server.port, 11311u);
  EXPECT_EQ(c->pool.path, "/dev/shm/ferrite.pool");
  EXPECT_EQ(c->pool.size, 1ull << 30);
}

TEST(Config, EveryKeyIsParsed) {
  auto c = parse_config(R"(
[server]
backend = "dpdk"
bind = "10.1.2.3"
port = 9000
workers = 2
pin_cores = false
allow = ["10.0.0.0/8", "192.168.1.7"]
memcached_udp_port = 11211
max_datagram = 9000
[pool]
path = "/tmp/x.pool"
size = "2GiB"
segment_size = 2097152
[log]
level = "debug"
[dpdk]
eal_args = ["--no-huge", "-m", "1024"]
port = 1
ip = "10.0.0.9"
mac = "02:00:00:aa:bb:cc"
mbufs = 4096
burst = 64
idle_sleep_us = 50
)", "t");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->server.backend, "dpdk");
  EXPECT_EQ(c->server.bind, "10.1.2.3");
  EXPECT_EQ(c->server.port, 9000u);
  EXPECT_EQ(c->server.workers, 2u);
  EXPECT_FALSE(c->server.pin_cores);
  EXPECT_EQ(c->server.allow.size(), 2u);
  EXPECT_EQ(c->server.memcached_udp_port, 11211u);
  EXPECT_EQ(c->server.max_datagram, 9000u);
  EXPECT_EQ(c->pool.path, "/tmp/x.pool");
  EXPECT_EQ(c->pool.size, 2ull << 30);
  EXPECT_EQ(c->pool.segment_size, 2u << 20);
  EXPECT_EQ(c->log.level, "debug");
  EXPECT_EQ(c->dpdk.eal_args.size(), 3u);
  EXPECT_EQ(c->dpdk.port, 1u);
  EXPECT_EQ(c->dpdk.mac, "02:00:00:aa:bb:cc");
  EXPECT_EQ(c->dpdk.mbufs, 4096u);
  EXPECT_EQ(c->dpdk.burst, 64u);
  EXPECT_EQ(c->dpdk.idle_sleep_us, 50u);
  // Round trip through --print-config's output.
  auto again = parse_config(to_toml(*c), "printed");
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_TRUE(*again == *c);
}

// Every shipped example config (configs/*.toml) is valid and means what its
// name says.
TEST(Config, ShippedConfigsLoad) {
  const char* dir = std::getenv("FERRITE_CONFIGS_DIR");
  ASSERT_NE(dir, nullptr) << "FERRITE_CONFIGS_DIR is set by tests/meson.build";
  for (const char* name : {"dpdk-tap.toml", "dpdk-memif.toml", "dpdk-nic.toml"}) {
    auto c = load_config_file(std::string(dir) + "/" + name);
    ASSERT_TRUE(c.is_ok()) << name << ": " << c.status().to_string();
    EXPECT_EQ(c->server.backend, "dpdk") << name;
    EXPECT_FALSE(c->dpdk.eal_args.empty()) << name;
    auto cidr = parse_cidr(c->server.allow.at(0));
    ASSERT_TRUE(cidr.is_ok()) << name;
    in_addr a{};
    ASSERT_EQ(inet_pton(AF_INET, c->dpdk.ip.c_str(), &a), 1);
    EXPECT_TRUE(cidr->contains(ntohl(a.s_addr))) << name << ": dpdk.ip is outside server.allow";
  }
  auto tap = load_config_file(std::string(dir) + "/dpdk-tap.toml");
  ASSERT_TRUE(tap.is_ok());
  EXPECT_THAT(tap->dpdk.eal_args, ::testing::Contains(::testing::HasSubstr("net_tap")));
  auto memif = load_config_file(std::string(dir) + "/dpdk-memif.toml");
  ASSERT_TRUE(memif.is_ok());
  EXPECT_THAT(memif->dpdk.eal_args, ::testing::Contains(::testing::HasSubstr("net_memif")));
}

TEST(Config, UnknownKeyNamesItAndSuggests) {
  auto e = error_of("[server]\nprot = 1\n");
  EXPECT_THAT(e, HasSubstr("unknown key \"server.prot\""));
  EXPECT_THAT(e, HasSubstr("did you mean server.port?"));
  EXPECT_THAT(e, HasSubstr("test.toml"));
}

TEST(Config, UnknownSection) { EXPECT_THAT(error_of("[srever]\nport = 1\n"), HasSubstr("unknown section [srever]")); }

TEST(Config, WrongType) {
  EXPECT_THAT(error_of("[server]\nport = \"80\"\n"), AllOf(HasSubstr("server.port"), HasSubstr("integer"), HasSubstr("1..65535")));
  EXPECT_THAT(error_of("[server]\npin_cores = 1\n"), AllOf(HasSubstr("server.pin_cores"), HasSubstr("true or false")));
  EXPECT_THAT(error_of("server = 3\n"), HasSubstr("server"));
}

struct Range {
  const char* section;
  const char* key;
  uint64_t lo, hi;
};

TEST(Config, IntegerBoundariesJustInsideAndOutside) {
  const Range ranges[] = {{"server", "port", 1, 65535},  {"server", "workers", 1, 63}, {"dpdk", "mbufs", 1024, 1048576},
                          {"dpdk", "burst", 1, 512},     {"dpdk", "port", 0, 1023},    {"server", "memcached_udp_port", 0, 65535},
                          {"server", "memcached_tcp_port", 0, 65535}, {"server", "max_datagram", 512, 65507},
                          {"dpdk", "idle_sleep_us", 0, 100000}, {"server", "metrics_port", 0, 65535},
                          {"server", "tcp_workers", 1, 62}};
  for (const Range& r : ranges) {
    for (uint64_t v : {r.lo, r.hi}) {
      auto c = parse_config(fmt::format("[{}]\n{} = {}\n", r.section, r.key, v), "t");
      EXPECT_TRUE(c.is_ok()) << r.key << "=" << v << ": " << c.status().to_string();
    }
    const std::string name = std::string(r.section) + "." + r.key;
    const std::string range = fmt::format("allowed {}..{}", r.lo, r.hi);
    if (r.lo > 0) {
      EXPECT_THAT(error_of(fmt::format("[{}]\n{} = {}\n", r.section, r.key, r.lo - 1)), AllOf(HasSubstr(name), HasSubstr(range)));
    }
    EXPECT_THAT(error_of(fmt::format("[{}]\n{} = {}\n", r.section, r.key, r.hi + 1)), AllOf(HasSubstr(name), HasSubstr(range)));
  }
}

TEST(Config, Sizes) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("64k"), 64u << 10);
  EXPECT_EQ(*parse_size("512MiB"), 512u << 20);
  EXPECT_EQ(*parse_size("2gb"), 2ull << 30);
  EXPECT_EQ(*parse_size("1TiB"), 1ull << 40);
  EXPECT_FALSE(parse_size("12 parsecs").is_ok());
  EXPECT_FALSE(parse_size("GiB").is_ok());
  EXPECT_FALSE(parse_size("99999999999999999999").is_ok());
  EXPECT_TRUE(parse_config("[pool]\nsize = \"16MiB\"\n", "t").is_ok());
  EXPECT_THAT(error_of("[pool]\nsize = \"16777215\"\n"), AllOf(HasSubstr("pool.size"), HasSubstr("16MiB..16TiB")));
  EXPECT_THAT(error_of("[pool]\nsize = \"17TiB\"\n"), AllOf(HasSubstr("pool.size"), HasSubstr("16MiB..16TiB")));
  EXPECT_THAT(error_of("[pool]\nsize = \"1 lightyear\"\n"), AllOf(HasSubstr("pool.size"), HasSubstr("not a size")));
  EXPECT_THAT(error_of("[pool]\nsegment_size = \"3MiB\"\n"), AllOf(HasSubstr("pool.segment_size"), HasSubstr("power of two")));
  EXPECT_THAT(error_of("[pool]\nsegment_size = \"1MiB\"\n"), HasSubstr("2MiB..256MiB"));
  EXPECT_THAT(error_of("[pool]\nsegment_size = \"512MiB\"\n"), HasSubstr("2MiB..256MiB"));
  EXPECT_THAT(error_of("[pool]\nsegment_size = \"automatic\"\n"), HasSubstr("\"auto\" or a power of two"));
}

TEST(Config, SegmentSizeAutoDependsOnThePoolSize) {
  auto c = parse_config("[pool]\nsegment_size = \"auto\"\n", "t");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->pool.segment_size, 0u);
  EXPECT_EQ(Config{}.pool.segment_size, 0u);  // the default
  EXPECT_EQ(segment_size_for(0, 64ull << 20), 2ull << 20);
  EXPECT_EQ(segment_size_for(0, (1ull << 30) - 1), 2ull << 20);
  EXPECT_EQ(segment_size_for(0, 1ull << 30), 4ull << 20);
  EXPECT_EQ(segment_size_for(8ull << 20, 64ull << 20), 8ull << 20);  // an explicit size wins
  // "auto" round-trips through --print-config's TOML.
  auto back = parse_config(to_toml(*c), "printed");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->pool.segment_size, 0u);
}

TEST(Config, StringsAndAddresses) {
  EXPECT_THAT(error_of("[server]\nbind = \"localhost\"\n"), AllOf(HasSubstr("server.bind"), HasSubstr("IPv4")));
  EXPECT_THAT(error_of("[server]\nbind = \"300.1.1.1\"\n"), HasSubstr("server.bind"));
  EXPECT_THAT(error_of("[server]\nallow = [\"10.0.0.0/33\"]\n"), AllOf(HasSubstr("server.allow"), HasSubstr("CIDR")));
  EXPECT_THAT(error_of("[server]\nallow = [\"banana/8\"]\n"), HasSubstr("server.allow"));
  EXPECT_THAT(error_of("[server]\nallow = \"10.0.0.0/8\"\n"), AllOf(HasSubstr("server.allow"), HasSubstr("array")));
  EXPECT_THAT(error_of("[server]\nbackend = \"xdp\"\n"), AllOf(HasSubstr("server.backend"), HasSubstr("\"kernel\" or \"dpdk\"")));
  EXPECT_THAT(error_of("[pool]\npath = \"relative.pool\"\n"), AllOf(HasSubstr("pool.path"), HasSubstr("absolute")));
  EXPECT_THAT(error_of("[log]\nlevel = \"loud\"\n"), AllOf(HasSubstr("log.level"), HasSubstr("debug, info, warn, error or off")));
  EXPECT_THAT(error_of("[dpdk]\nmac = \"02:00:00:aa:bb\"\n"), AllOf(HasSubstr("dpdk.mac"), HasSubstr("xx:xx")));
  EXPECT_THAT(error_of("[dpdk]\nip = \"1.2.3\"\n"), HasSubstr("dpdk.ip"));
}

TEST(Config, SyntaxErrorReportsLine) {
  auto e = error_of("[server]\nport = 1\nbind = \"unterminated\n");
  EXPECT_THAT(e, AllOf(HasSubstr("test.toml:3"), HasSubstr("syntax error")));
}

TEST(Config, MissingFile) {
  auto c = load_config_file("/nonexistent/ferrite.toml");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/ferrite.toml"));
  auto a = args({"--config", "/nonexistent/ferrite.toml"});
  ASSERT_FALSE(a.is_ok());
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("/nonexistent/ferrite.toml"));
}

TEST(ConfigArgs, NoArgumentsGiveTheEmbeddedDefault) {
  auto a = args({});
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_TRUE(a->config == Config{});
  EXPECT_FALSE(a->exit_now);
}

TEST(ConfigArgs, ShortcutsAndSetOverrideTheFile) {
  testing::TempPath file("cfg");
  std::ofstream(file.str()) << "[server]\nport = 9000\nworkers = 2\n[pool]\nsize = \"64MiB\"\n";
  auto a = args({"--config", file.str(), "--port", "9100", "--set", "pool.path=/dev/shm/other.pool", "--set",
                 "server.allow=[\"10.0.0.0/8\"]", "--pool-size", "128MiB"});
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->config.server.port, 9100u) << "flag beats file";
  EXPECT_EQ(a->config.server.workers, 2u) << "file beats default";
  EXPECT_EQ(a->config.pool.path, "/dev/shm/other.pool") << "a bare word is a string";
  EXPECT_EQ(a->config.pool.size, 128u << 20);
  ASSERT_EQ(a->config.server.allow.size(), 1u);
  EXPECT_EQ(a->config.server.allow[0], "10.0.0.0/8");
}

TEST(ConfigArgs, OverridesAreValidatedLikeTheFile) {
  auto a = args({"--port", "70000"});
  ASSERT_FALSE(a.is_ok());
  EXPECT_THAT(std::string(a.status().message()), AllOf(HasSubstr("server.port"), HasSubstr("1..65535"), HasSubstr("command-line")));
  auto b = args({"--set", "server.prot=1"});
  ASSERT_FALSE(b.is_ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("did you mean server.port?"));
  auto c = args({"--set", "noequals"});
  ASSERT_FALSE(c.is_ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("section.key=value"));
  auto d = args({"--no-such-flag"});
  ASSERT_FALSE(d.is_ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("--no-such-flag"));
}

TEST(ConfigArgs, HelpVersionAndPrintConfig) {
  auto h = args({"--help"});
  ASSERT_TRUE(h.is_ok());
  EXPECT_TRUE(h->exit_now);
  EXPECT_EQ(h->exit_code, 0);
  EXPECT_THAT(h->message, HasSubstr("--config"));
  // Each shortcut shows its default: the embedded config's value.
  auto d = parse_config(default_config_toml(), "embedded");
  ASSERT_TRUE(d.is_ok());
  EXPECT_THAT(h->message, HasSubstr(fmt::format("native protocol UDP port (default: {})", d->server.port)));
  EXPECT_THAT(h->message, HasSubstr(fmt::format("(default: {})", d->pool.path)));
  auto v = args({"--version"});
  ASSERT_TRUE(v.is_ok());
  EXPECT_TRUE(v->exit_now);
  EXPECT_THAT(v->message, HasSubstr(std::string("ferrited ") + kVersion));
  auto p = args({"--print-config", "--port", "1234"});
  ASSERT_TRUE(p.is_ok());
  EXPECT_TRUE(p->print_config);
  EXPECT_THAT(to_toml(p->config), HasSubstr("port = 1234"));
}

}  // namespace
}  // namespace ferrite::server

namespace ferrite::server {
namespace {

TEST(Config, SpaceKeysRangesAndOrder) {
  auto c = parse_config(
      "[pool]\nwhen_full = \"evict\"\nreserve = 0.25\n[cleaner]\nlow_watermark = 0.05\nhigh_watermark = 0.3\n"
      "max_copy_mbps = 500\nmax_wait_ms = 1000\n",
      "test.toml");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->pool.when_full, "evict");
  EXPECT_DOUBLE_EQ(c->pool.reserve, 0.25);
  EXPECT_DOUBLE_EQ(c->cleaner.low_watermark, 0.05);
  EXPECT_DOUBLE_EQ(c->cleaner.high_watermark, 0.3);
  EXPECT_EQ(c->cleaner.max_copy_mbps, 500u);
  EXPECT_EQ(c->cleaner.max_wait_ms, 1000u);
  EXPECT_THAT(error_of("[pool]\nwhen_full = \"drop\"\n"), AllOf(HasSubstr("pool.when_full"), HasSubstr("evict")));
  EXPECT_THAT(error_of("[pool]\nreserve = 0.6\n"), AllOf(HasSubstr("pool.reserve"), HasSubstr("0..0.5")));
  EXPECT_THAT(error_of("[pool]\nreserve = -0.1\n"), HasSubstr("out of range"));
  EXPECT_THAT(error_of("[pool]\nreserve = \"lots\"\n"), HasSubstr("must be a number"));
  EXPECT_THAT(error_of("[cleaner]\nmax_wait_ms = 10001\n"), HasSubstr("cleaner.max_wait_ms"));
  EXPECT_THAT(error_of("[cleaner]\nlow_watermark = 0.3\nhigh_watermark = 0.2\n"),
              AllOf(HasSubstr("cleaner.low_watermark"), HasSubstr("below cleaner.high_watermark")));
  EXPECT_THAT(error_of("[cleaner]\nlow_watermark = 0.2\n"), HasSubstr("below cleaner.high_watermark"))
      << "equal to the default high";
  EXPECT_THAT(error_of("[cleaner]\nthreads = 2\n"), HasSubstr("unknown key \"cleaner.threads\""));
}

TEST(ConfigArgs, EvictionFlagsAsMemcached) {
  auto m = args({"-M"});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->config.pool.when_full, "error");
  auto e = args({"--evict"});
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->config.pool.when_full, "evict");
  auto both = args({"-M", "--evict"});
  ASSERT_FALSE(both.is_ok());
  EXPECT_THAT(std::string(both.status().message()), HasSubstr("contradict"));
  auto p = args({"--evict", "--set", "pool.reserve=0.2", "--print-config"});
  ASSERT_TRUE(p.is_ok());
  auto back = parse_config(to_toml(p->config), "printed");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << to_toml(p->config);
  EXPECT_TRUE(*back == p->config) << "--print-config round-trips the space keys";
}

}  // namespace
}  // namespace ferrite::server

namespace ferrite::server {
namespace {

// Issue 15, item 9: a value the user gave is validated, never mistaken for
// "not given" (the old sentinels: port/workers < 0, empty strings).
TEST(ConfigArgs, OutOfRangeAndWrongKindShortcutsAreRefused) {
  struct Case {
    std::vector<std::string> argv;
    std::string key, message;  // both in the error
  };
  const Case cases[] = {
      {{"--port", "-1"}, "server.port", "= -1 is out of range (allowed 1..65535)"},
      {{"--port", "0"}, "server.port", "= 0 is out of range"},
      {{"--port", "65536"}, "server.port", "= 65536 is out of range"},
      {{"--port", "eleven"}, "--port", "eleven"},
      {{"--port", "99999999999999999999999"}, "server.port", "out of range"},
      {{"--workers", "-1"}, "server.workers", "= -1 is out of range (allowed 1..63)"},
      {{"--workers", "0"}, "server.workers", "= 0 is out of range"},
      {{"--workers", "2.5"}, "--workers", "2.5"},
      {{"--bind", ""}, "server.bind", "IPv4"},
      {{"--backend", ""}, "server.backend", "\"kernel\" or \"dpdk\""},
      {{"--pool", ""}, "pool.path", "absolute"},
      {{"--pool", "relative"}, "pool.path", "absolute"},
      {{"--pool-size", "-5"}, "pool.size", "not a size"},
      {{"--pool-size", ""}, "pool.size", "not a size"},
      {{"--log-level", ""}, "log.level", "debug, info, warn, error or off"},
      {{"--set", "server.cookie_rotation_s=0"}, "server.cookie_rotation_s", "= 0 is out of range (allowed 1..604800)"},
      {{"--set", "server.cookie_rotation_s=\"10\""}, "server.cookie_rotation_s", "must be an integer"},
  };
  for (const Case& c : cases) {
    auto a = args(c.argv);
    ASSERT_FALSE(a.is_ok()) << "accepted: " << c.argv[0] << " " << c.argv[1];
    EXPECT_THAT(std::string(a.status().message()), AllOf(HasSubstr(c.key), HasSubstr(c.message)))
        << c.argv[0] << " " << c.argv[1];
  }
}

TEST(ConfigArgs, ConfigMustBeAReadableFile) {
  auto dir = args({"--config", "/tmp"});
  ASSERT_FALSE(dir.is_ok()) << "a directory was read as an empty config";
  EXPECT_THAT(std::string(dir.status().message()), AllOf(HasSubstr("/tmp"), HasSubstr("is a directory")));
  auto empty = args({"--config", ""});
  ASSERT_FALSE(empty.is_ok()) << "--config \"\" fell back to the embedded default";
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));
  auto f = load_config_file("/tmp");
  ASSERT_FALSE(f.is_ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("is a directory"));
}

TEST(ConfigArgs, CookieRotationKey) {
  auto a = args({"--set", "server.cookie_rotation_s=30"});
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->config.server.cookie_rotation_s, 30u);
  EXPECT_EQ(Config{}.server.cookie_rotation_s, 600u);
}

TEST(ConfigArgs, MetricsPortIsOffByDefault) {
  auto d = args({});
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->config.server.metrics_port, 0u);  // the embedded default: off
  auto a = args({"--set", "server.metrics_port=9150"});
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->config.server.metrics_port, 9150u);
  EXPECT_THAT(error_of("[server]\nmetrics_port = \"9150\"\n"), AllOf(HasSubstr("server.metrics_port"), HasSubstr("integer")));
}

// --print-config is TOML written by toml++: whatever the strings hold, it
// parses back to the same Config.
TEST(ConfigArgs, PrintConfigRoundTripsStringsWithQuotesAndBackslashes) {
  const std::string weird = "/dev/shm/we\"ird\\path 'x' \t#not-a-comment\\\".pool";
  auto p = args({"--pool", weird, "--set", "dpdk.eal_args=[\"--vdev=net_memif,socket=/tmp/\\\"m\\\\\", \"-l\"]",
                 "--set", "server.allow=[\"10.0.0.0/8\", \"127.0.0.1\"]", "--set", "pool.reserve=0.3",
                 "--set", "cleaner.high_watermark=0.35", "--workers", "3", "--print-config"});
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  ASSERT_EQ(p->config.pool.path, weird) << "--pool takes the path as given";
  ASSERT_EQ(p->config.dpdk.eal_args.size(), 2u);
  EXPECT_EQ(p->config.dpdk.eal_args[0], "--vdev=net_memif,socket=/tmp/\"m\\");
  const std::string text = to_toml(p->config);
  auto back = parse_config(text, "printed");
  ASSERT_TRUE(back.is_ok()) << back.status().to_string() << "\n" << text;
  EXPECT_EQ(back->pool.path, weird);
  EXPECT_TRUE(*back == p->config) << text;
  // A float that needs all its digits keeps them.
  auto precise = args({"--set", "pool.reserve=0.123456789012345"});
  ASSERT_TRUE(precise.is_ok()) << precise.status().to_string();
  auto precise_back = parse_config(to_toml(precise->config), "printed");
  ASSERT_TRUE(precise_back.is_ok()) << precise_back.status().to_string();
  EXPECT_EQ(precise_back->pool.reserve, 0.123456789012345);
  EXPECT_THAT(to_toml(Config{}), HasSubstr("reserve = 0.1\n"));
  // The defaults too (every key present, every value the same).
  auto d = parse_config(to_toml(Config{}), "printed default");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_TRUE(*d == Config{});
  // And through a file given to --config.
  testing::TempPath file("printed");
  std::ofstream(file.str()) << text;
  auto again = args({"--config", file.str()});
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_TRUE(again->config == p->config);
}

}  // namespace
// server.tcp_workers (issue 18): each memcached TCP thread owns an index
// worker, and the index has 63 for the native, memcached UDP and TCP threads.
TEST(Config, TcpWorkersShareTheIndexWorkers) {
  auto c = parse_config("[server]\nmemcached_tcp_port = 11211\ntcp_workers = 62\n", "t");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->server.tcp_workers, 62u);
  EXPECT_EQ(parse_config("[server]\n", "t")->server.tcp_workers, 1u);
  EXPECT_TRUE(parse_config("[server]\nworkers = 31\nmemcached_udp_port = 11211\nmemcached_tcp_port = 11211\n", "t").is_ok());
  EXPECT_THAT(error_of("[server]\nworkers = 31\nmemcached_udp_port = 11211\nmemcached_tcp_port = 11211\ntcp_workers = 2\n"),
              AllOf(HasSubstr("server.tcp_workers = 2"), HasSubstr("need 64 index workers; at most 63")));
  // TCP off: its threads take no index worker.
  EXPECT_TRUE(parse_config("[server]\nworkers = 63\ntcp_workers = 8\n", "t").is_ok());
}

}  // namespace ferrite::server
