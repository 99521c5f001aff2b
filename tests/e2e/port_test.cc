// End-to-end: every port ferrited serves is exclusive to one ferrited
// (issue 15, item 3; net/port_claim.h). Real processes on loopback: a second
// ferrited on a port a first one serves (native UDP, memcached UDP, memcached
// TCP) exits at once, non-zero, with "address in use" naming the port and
// its role, and leaves its pool alone; the first keeps serving. A socket of
// some other program on the port (with or without SO_REUSEPORT) is refused
// the same way, and of two ferrited started together on one port exactly
// one serves.
//
// Every process a test starts is stopped by the test, by PID; every wait is
// bounded.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/server_harness.h"
#include "tests/util/temp_path.h"

namespace ferrite {
namespace {

using testing::ServerProcess;
using testing::TempPath;
using Clock = std::chrono::steady_clock;

// The pool path of a Ferrited: a base, so it exists before ferrited starts.
struct FerritedPool {
  TempPath pool_{"port-pool"};
};

// A ferrited started with stderr in a file, for the tests that expect it to fail.
class Ferrited : private FerritedPool, public testing::FerritedProcess {
 public:
  explicit Ferrited(const std::vector<std::string>& extra) : FerritedProcess(args(pool_, extra)) {}
  bool running() { return alive(); }
  int code() const { return exit_code(); }
  double seconds() const { return seconds_to_exit(); }
  std::string err() const { return log(); }
  bool pool_exists() const {
    struct stat sb;
    return ::stat(pool_.c_str(), &sb) == 0;
  }

 private:
  static std::vector<std::string> args(const TempPath& pool, const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"--pool", pool.str(), "--pool-size", "64MiB", "--log-level", "warn"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

// The second server must be refused: exit within 5 s, non-zero, the message
// naming the port and its role, its pool never created.
void expect_refused(Ferrited& second, uint16_t port, const std::string& role) {
  ASSERT_TRUE(second.wait_exit(std::chrono::seconds(5)).has_value())
      << "the second ferrited is still running on port " << port << ": it joined the port";
  EXPECT_NE(second.code(), 0);
  const std::string err = second.err();
  EXPECT_NE(err.find("address in use"), std::string::npos) << err;
  EXPECT_NE(err.find(":" + std::to_string(port)), std::string::npos) << err;
  EXPECT_NE(err.find(role), std::string::npos) << err;
  EXPECT_LT(second.seconds(), 3.0) << "fails at once";
  EXPECT_FALSE(second.pool_exists()) << "the port is checked before the pool is opened";
}

// Every one of several clients (distinct source ports, which SO_REUSEPORT
// would spread over a shared group) reads what the first server stored.
void expect_first_serves(ServerProcess& first, const std::string& key, const std::string& value) {
  for (int i = 0; i < 8; ++i) {
    auto c = first.client(500);
    ASSERT_NE(c, nullptr);
    client::Reply r;
    auto st = c->get(key, &r);
    ASSERT_TRUE(st.is_ok()) << "client " << i;
    EXPECT_EQ(*st, proto::OpStatus::kOk) << "client " << i;
    EXPECT_EQ(r.value, value) << "client " << i;
    const std::string k2 = key + "-after-" + std::to_string(i);
    ASSERT_TRUE(c->set(k2, "x").is_ok());
    ASSERT_TRUE(c->get(k2, &r).is_ok());
    EXPECT_EQ(r.value, "x");
  }
}

TEST(PortExclusive, SecondFerritedOnTheNativePortFailsAtOnce) {
  ServerProcess first;
  ASSERT_TRUE(first.start());
  {
    auto c = first.client();
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->set("k", "first").is_ok());
  }
  Ferrited second({"--port", std::to_string(first.port())});
  expect_refused(second, first.port(), "native UDP port (server.port)");
  expect_first_serves(first, "k", "first");
  EXPECT_EQ(first.stop(SIGTERM), 0) << "the first server stops cleanly";
}

TEST(PortExclusive, MemcachedUdpAndTcpPortsAreExclusiveToo) {
  const uint16_t mu = testing::free_udp_port(), mt = testing::free_tcp_port();
  ServerProcess first({"--set", "server.memcached_udp_port=" + std::to_string(mu), "--set",
                       "server.memcached_tcp_port=" + std::to_string(mt)});
  ASSERT_TRUE(first.start());
  {
    auto c = first.client();
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->set("m", "first").is_ok());
  }
  {
    Ferrited second({"--port", std::to_string(testing::free_udp_port()), "--set",
                     "server.memcached_udp_port=" + std::to_string(mu)});
    expect_refused(second, mu, "memcached UDP port (server.memcached_udp_port)");
  }
  {
    Ferrited second({"--port", std::to_string(testing::free_udp_port()), "--set",
                     "server.memcached_tcp_port=" + std::to_string(mt)});
    expect_refused(second, mt, "memcached TCP port (server.memcached_tcp_port)");
  }
  expect_first_serves(first, "m", "first");
}

// A socket of some other program bound to 127.0.0.1:port.
int bind_udp(uint16_t port, bool reuseport) { return testing::bind_loopback(SOCK_DGRAM, port, reuseport); }

TEST(PortExclusive, PortHeldByAnotherProgramIsRefused) {
  for (const bool reuseport : {false, true}) {
    SCOPED_TRACE(reuseport ? "the other socket has SO_REUSEPORT" : "a plain socket");
    const uint16_t port = testing::free_udp_port();
    const int other = bind_udp(port, reuseport);
    ASSERT_GE(other, 0);
    Ferrited f({"--port", std::to_string(port)});
    expect_refused(f, port, "native UDP port (server.port)");
    ::close(other);
  }
}

// Two ferrited started together on one free port: the bind lock orders them
// and the later one's probe sees the earlier one's group. Exactly one serves.
TEST(PortExclusive, TwoStartedTogetherExactlyOneServes) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const uint16_t port = testing::free_udp_port();
    Ferrited a({"--port", std::to_string(port)}), b({"--port", std::to_string(port)});
    // The loser exits within seconds (after opening its pool, if it passed
    // the early check in the same instant as the winner).
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (a.running() && b.running() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the winner must still be up afterwards
    const bool ra = a.running(), rb = b.running();
    EXPECT_TRUE(ra != rb) << "a running: " << ra << ", b running: " << rb;
    Ferrited& loser = ra ? b : a;
    EXPECT_NE(loser.code(), 0);
    EXPECT_NE(loser.err().find("address in use"), std::string::npos) << loser.err();
    a.kill(SIGKILL);
    b.kill(SIGKILL);
  }
}

}  // namespace
}  // namespace ferrite
