// ferrited started the way a memcached init script starts memcached
// (-p -U -l -t -m, -c, -M) serves memcached on the -p port; -c refuses the
// connection over the limit as memcached does (its reply bytes, counted in
// rejected_connections); -m on an existing pool of another size keeps the
// pool and says so. memcached's reply bytes are literals captured from
// memcached 1.6.18.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/e2e/server_harness.h"
#include "tests/util/loopback.h"

namespace ferrite::testing {
namespace {

using ::testing::HasSubstr;

// A ferrited on its own pool and free ports, started with memcached's flags
// (plus --pool and --port, which memcached has no equivalent of).
class McFlagsServer {
 public:
  explicit McFlagsServer(std::vector<std::string> flags, const std::string& pool) {
    mport_ = free_tcp_port();
    std::vector<std::string> args = {"-p", std::to_string(mport_), "-U", "0", "-l", "127.0.0.1", "-t", "1",
                                     "--pool", pool, "--port", std::to_string(free_udp_port())};
    args.insert(args.end(), flags.begin(), flags.end());
    proc_ = std::make_unique<FerritedProcess>(args);
  }
  // Waits until the memcached port accepts a connection.
  bool wait_ready() {
    for (int i = 0; i < 500 && proc_->alive(); ++i) {
      const int fd = connect_loopback_tcp(mport_, 5);
      if (fd >= 0) {
        ::close(fd);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  uint16_t port() const { return mport_; }
  FerritedProcess& proc() { return *proc_; }

 private:
  uint16_t mport_ = 0;
  std::unique_ptr<FerritedProcess> proc_;
};

std::string exchange(uint16_t port, std::string_view request, std::string_view end) {
  const int fd = connect_loopback_tcp(port, 5);
  if (fd < 0) return "(no connection)";
  const std::string r = send_all(fd, request) ? read_until(fd, end) : "(send failed)";
  ::close(fd);
  return r;
}

// A stat's value read on an open connection (~0 if absent).
uint64_t stat_on(int fd, const std::string& name) {
  const std::string r = send_all(fd, "stats\r\n") ? read_until(fd, "END\r\n") : "";
  const std::string key = "STAT " + name + " ";
  const auto at = r.find(key);
  return at == std::string::npos ? ~uint64_t{0} : std::stoull(r.substr(at + key.size()));
}

TEST(McFlagsE2E, StartsLikeMemcachedAndSpeaksMemcached) {
  if (std::getenv("FERRITED") == nullptr) GTEST_SKIP() << "FERRITED not set";
  TempPath pool("mcflags");
  McFlagsServer s({"-m", "64"}, pool.str());
  ASSERT_TRUE(s.wait_ready()) << s.proc().log();
  // Bytes memcached 1.6.18 answers (memcached -U 0 -l 127.0.0.1 -p P -m 64 -t 1).
  EXPECT_EQ(exchange(s.port(), "set k 5 0 3\r\nabc\r\nget k\r\n", "END\r\n"), "STORED\r\nVALUE k 5 3\r\nabc\r\nEND\r\n");
  // -U 0: no memcached UDP port; -m 64: a 64 MiB pool.
  EXPECT_THAT(s.proc().log(), ::testing::Not(HasSubstr("memcached protocol on udp")));
  EXPECT_EQ(s.proc().kill(SIGTERM), 0) << s.proc().log();
  EXPECT_THAT(s.proc().log(), HasSubstr("(64 MiB,"));
  // Again with -m 128 on the same pool: it keeps its 64 MiB and says so.
  McFlagsServer again({"-m", "128"}, pool.str());
  ASSERT_TRUE(again.wait_ready()) << again.proc().log();
  EXPECT_EQ(exchange(again.port(), "get k\r\n", "END\r\n"), "VALUE k 5 3\r\nabc\r\nEND\r\n");
  EXPECT_THAT(again.proc().log(), HasSubstr("keeps its size of 64 MiB; pool.size = 128 MiB applies to a new pool only"));
}

TEST(McFlagsE2E, ConnectionsOverTheLimitAreRefusedAndCounted) {
  if (std::getenv("FERRITED") == nullptr) GTEST_SKIP() << "FERRITED not set";
  TempPath pool("mcflags-c");
  McFlagsServer s({"-m", "64", "-c", "3"}, pool.str());
  ASSERT_TRUE(s.wait_ready()) << s.proc().log();
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(connect_loopback_tcp(s.port(), 5));
    ASSERT_GE(held.back(), 0);
    ASSERT_TRUE(send_all(held.back(), "version\r\n"));
    EXPECT_THAT(read_until(held.back(), "\r\n"), ::testing::StartsWith("VERSION ")) << "connection " << i;
  }
  EXPECT_EQ(stat_on(held[0], "rejected_connections"), 0u);
  // A 4th gets memcached's words (memcached 1.6.18 with -c N) and is closed.
  const int extra = connect_loopback_tcp(s.port(), 5);
  ASSERT_GE(extra, 0);
  EXPECT_EQ(read_until(extra, "\r\n"), "ERROR Too many open connections\r\n");
  char byte = 0;
  EXPECT_EQ(::recv(extra, &byte, 1, 0), 0) << "closed after the message";
  ::close(extra);
  EXPECT_EQ(stat_on(held[0], "rejected_connections"), 1u);
  EXPECT_EQ(stat_on(held[0], "curr_connections"), 3u);
  // One closed: room for one more.
  ::close(held.back());
  held.pop_back();
  int again = -1;
  for (int i = 0; i < 100; ++i) {  // until the server's loop has seen the close
    again = connect_loopback_tcp(s.port(), 5);
    ASSERT_GE(again, 0);
    if (send_all(again, "version\r\n") && read_until(again, "\r\n").starts_with("VERSION ")) break;
    ::close(again);
    again = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(again, 0) << "no connection served after one closed";
  if (again >= 0) ::close(again);
  for (int fd : held) ::close(fd);
}

}  // namespace
}  // namespace ferrite::testing
