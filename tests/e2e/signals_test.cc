// Real ferrited processes (issue 15, items 4 and 9): SIGHUP, SIGPIPE and
// SIGUSR1 leave the server serving; SIGQUIT is a clean shutdown (exit 0, the
// next open is clean, not a crash repair); a start that fails after the pool
// opened (its port taken) leaves the pool clean; bad option values exit 2
// before any pool is touched. Each server runs with its stderr in a file, so
// the test reads the lines it logged ("after a clean shutdown").
//
// Every process a test starts is stopped by the test, by PID, and every wait
// is bounded (Proc's destructor kills what is left).
//
// Thread safety: single-threaded tests.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/e2e/server_harness.h"
#include "tests/util/temp_path.h"

namespace ferrite::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// One ferrited run: argv after the binary, stderr captured in a file.
using Proc = FerritedProcess;

bool serves(uint16_t port, const std::string& key) {
  client::ClientOptions o;
  o.timeout_ms = 300;
  auto c = client::Client::connect("127.0.0.1", port, o);
  if (!c.is_ok()) return false;
  auto s = (*c)->set(key, "v-" + key);
  if (!s.is_ok() || *s != proto::OpStatus::kOk) return false;
  client::Reply r;
  auto g = (*c)->get(key, &r);
  return g.is_ok() && *g == proto::OpStatus::kOk && r.value == "v-" + key;
}

// Waits until the server on port answers a hello (bounded), or it exited.
bool wait_serving(Proc& p, uint16_t port) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    client::ClientOptions o;
    o.timeout_ms = 50;
    o.attempts = 1;
    if (client::Client::connect("127.0.0.1", port, o).is_ok()) return true;
    if (!p.alive()) return false;
  }
  return false;
}

std::vector<std::string> server_args(const std::string& pool, uint16_t port) {
  return {"--pool", pool, "--pool-size", "64MiB", "--port", std::to_string(port), "--log-level", "info",
          "--set", "server.pin_cores=false"};
}

bool exited_zero(const std::optional<int>& st) { return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0; }

// Starts a server on pool, checks how it found the pool, stops it with TERM.
std::string open_state(const std::string& pool) {
  const uint16_t port = free_udp_port();
  Proc p(server_args(pool, port));
  if (!wait_serving(p, port)) return "did not start: " + p.log();
  ::kill(p.pid(), SIGTERM);
  if (!exited_zero(p.wait_exit(20s))) return "did not stop cleanly: " + p.log();
  const std::string log = p.log();
  if (log.find("after a clean shutdown") != std::string::npos) return "clean";
  if (log.find("after an unclean shutdown") != std::string::npos) return "unclean";
  return "unknown: " + log;
}

TEST(Signals, HupPipeUsr1KeepServingQuitIsACleanShutdown) {
  TempPath pool("signals-pool");
  const uint16_t port = free_udp_port();
  Proc p(server_args(pool.str(), port));
  ASSERT_TRUE(p.started());
  ASSERT_TRUE(wait_serving(p, port)) << p.log();
  ASSERT_TRUE(serves(port, "before"));
  for (int sig : {SIGHUP, SIGPIPE, SIGUSR1, SIGHUP}) {
    ASSERT_EQ(::kill(p.pid(), sig), 0);
    std::this_thread::sleep_for(200ms);
    ASSERT_TRUE(p.alive()) << "signal " << sig << " ended ferrited: " << p.log();
    EXPECT_TRUE(serves(port, "after-" + std::to_string(sig))) << "signal " << sig;
  }
  const std::string log = p.log();
  EXPECT_THAT(log, HasSubstr("SIGHUP received: ignored"));
  EXPECT_THAT(log, HasSubstr("SIGUSR1 received: "));
  EXPECT_THAT(log, HasSubstr("requests="));  // the counters, as logfmt-ish pairs
  ASSERT_EQ(::kill(p.pid(), SIGQUIT), 0);
  const auto st = p.wait_exit(20s);
  ASSERT_TRUE(st.has_value()) << "SIGQUIT did not stop ferrited in 20 s";
  EXPECT_TRUE(exited_zero(st)) << "status " << *st << ": " << p.log();
  EXPECT_THAT(p.log(), HasSubstr("stopped cleanly"));
  EXPECT_EQ(open_state(pool.str()), "clean") << "SIGQUIT must not leave a crash repair behind";
}

TEST(StartupFailure, PortTakenAfterThePoolOpenedLeavesThePoolClean) {
  TempPath pool("signals-pool");
  ASSERT_EQ(open_state(pool.str()), "clean");  // creates the pool (a new pool reads as clean)
  // Take the port with a socket without SO_REUSEPORT: ferrited's bind fails
  // after it opened the pool and the index.
  const uint16_t port = free_udp_port();
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  {
    Proc p(server_args(pool.str(), port));
    const auto st = p.wait_exit(30s);
    ::close(fd);
    ASSERT_TRUE(st.has_value()) << "ferrited did not fail on a taken port: " << p.log();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) != 0) << p.log();
  }
  EXPECT_EQ(open_state(pool.str()), "clean") << "a failed start left the pool to crash repair";
}

// The housekeeping thread rotates the cookie secret (server.cookie_rotation_s);
// a client keeps working across rotations, also after an idle gap of more
// than two periods (its cookie expired: one refresh, same request).
TEST(CookieRotation, ClientsKeepWorkingAcrossRotations) {
  TempPath pool("signals-pool");
  const uint16_t port = free_udp_port();
  auto args = server_args(pool.str(), port);
  args.insert(args.end(), {"--set", "server.cookie_rotation_s=1"});
  Proc p(args);
  ASSERT_TRUE(wait_serving(p, port)) << p.log();
  client::ClientOptions o;
  o.timeout_ms = 300;
  auto c = client::Client::connect("127.0.0.1", port, o);
  ASSERT_TRUE(c.is_ok());
  auto s = (*c)->set("k", "v");
  ASSERT_TRUE(s.is_ok() && *s == proto::OpStatus::kOk);
  const auto until = std::chrono::steady_clock::now() + 3500ms;
  int gets = 0;
  while (std::chrono::steady_clock::now() < until) {
    client::Reply r;
    auto g = (*c)->get("k", &r);
    ASSERT_TRUE(g.is_ok() && *g == proto::OpStatus::kOk) << "get " << gets;
    ++gets;
    std::this_thread::sleep_for(300ms);
  }
  std::this_thread::sleep_for(3s);  // > 2 periods idle: the cookie has expired
  client::Reply r;
  auto g = (*c)->get("k", &r);
  ASSERT_TRUE(g.is_ok() && *g == proto::OpStatus::kOk);
  EXPECT_EQ(r.value, "v");
  auto st = (*c)->stats();
  ASSERT_TRUE(st.is_ok());
  const auto pos = st->find("cookie_rotations ");
  ASSERT_NE(pos, std::string::npos) << *st;
  EXPECT_GE(std::stoull(st->substr(pos + 17)), 4u) << "one rotation per second over ~6.5 s";
  ::kill(p.pid(), SIGTERM);
  EXPECT_TRUE(exited_zero(p.wait_exit(20s))) << p.log();
}

struct BadOption {
  std::vector<std::string> args;
  std::string message;  // part of the error
};

TEST(StartupFailure, BadOptionValuesExitTwoBeforeThePoolIsTouched) {
  TempPath pool("signals-pool");
  const BadOption cases[] = {
      {{"--config", "/tmp"}, "is a directory"},
      {{"--config", ""}, "path is empty"},
      {{"--port", "-1"}, "= -1 is out of range (allowed 1..65535)"},
      {{"--port", "0"}, "= 0 is out of range (allowed 1..65535)"},
      {{"--port", "65536"}, "server.port"},
      {{"--port", "eleven"}, "--port"},
      {{"--workers", "-1"}, "= -1 is out of range (allowed 1..63)"},
      {{"--workers", "0"}, "= 0 is out of range (allowed 1..63)"},
      {{"--workers", "1.5"}, "--workers"},
      {{"--pool-size", "-5"}, "pool.size"},
      {{"--bind", ""}, "server.bind"},
      {{"--log-level", ""}, "log.level"},
      {{"--set", "server.cookie_rotation_s=0"}, "= 0 is out of range (allowed 1..604800)"},
  };
  for (const BadOption& c : cases) {
    std::vector<std::string> args = {"--pool", pool.str()};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Proc p(args);
    const auto st = p.wait_exit(10s);
    ASSERT_TRUE(st.has_value()) << c.args[0] << " " << c.args[1] << ": still running";
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 2) << c.args[0] << " " << c.args[1] << ": status " << *st;
    EXPECT_THAT(p.log(), HasSubstr(c.message)) << c.args[0] << " " << c.args[1];
    struct stat sb{};
    EXPECT_NE(::stat(pool.c_str(), &sb), 0) << c.args[0] << " " << c.args[1] << ": the pool was created";
  }
}

}  // namespace
}  // namespace ferrite::testing
