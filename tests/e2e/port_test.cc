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
#include <sys/prctl.h>
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

// A ferrited started with stderr in a file, for the tests that expect it to fail.
class Ferrited {
 public:
  explicit Ferrited(std::vector<std::string> extra) {
    const char* bin = std::getenv("FERRITED");
    std::vector<std::string> args = {bin != nullptr ? bin : "/nonexistent", "--pool", pool_.str(), "--pool-size",
                                     "64MiB", "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    started_ = Clock::now();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) ::dup2(fd, 2);
      ::execve(argv[0], argv.data(), environ);
      ::_exit(127);
    }
  }
  ~Ferrited() { kill(); }

  // Waits up to `limit` for the process to exit; true if it did.
  bool wait_exit(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (pid_ > 0 && Clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        took_ = Clock::now() - started_;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid_ <= 0;
  }
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return true;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  int code() const { return code_; }
  double seconds() const { return std::chrono::duration<double>(took_).count(); }
  std::string err() const {
    std::ifstream f(err_.str());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  bool pool_exists() const {
    struct stat sb;
    return ::stat(pool_.c_str(), &sb) == 0;
  }

 private:
  TempPath pool_{"port-pool"};
  TempPath err_{"port-err"};
  pid_t pid_ = -1;
  int code_ = -1;
  Clock::time_point started_;
  Clock::duration took_{};
};

// The second server must be refused: exit within 5 s, non-zero, the message
// naming the port and its role, its pool never created.
void expect_refused(Ferrited& second, uint16_t port, const std::string& role) {
  ASSERT_TRUE(second.wait_exit(std::chrono::seconds(5)))
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
int bind_udp(uint16_t port, bool reuseport) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  const int one = 1;
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

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
    a.kill();
    b.kill();
  }
}

}  // namespace
}  // namespace ferrite
