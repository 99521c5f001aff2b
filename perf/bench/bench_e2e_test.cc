// ferrite-bench's runner against real servers on loopback: a ferrited
// process (native protocol) and a memcached process (memcached UDP
// protocol). Small and bounded: ~1000 keys, runs of a fraction of a second.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "perf/bench/runner.h"
#include "perf/bench/transport.h"
#include "tests/e2e/server_harness.h"

namespace ferrite::bench {
namespace {

std::unique_ptr<Transport> transport(uint16_t port, unsigned flows) {
  KernelUdpOptions o;
  o.port = port;
  o.flows = flows;
  auto t = make_kernel_udp_transport(o);
  EXPECT_TRUE(t.is_ok());
  return t.is_ok() ? std::move(t).value() : nullptr;
}

RunResult run(const RunConfig& c, Transport& t) {
  EXPECT_EQ(check_config(c), "");
  Runner r(c, t);
  EXPECT_TRUE(r.handshake().is_ok());
  return r.run();
}

RunConfig small(Protocol p) {
  RunConfig c;
  c.protocol = p;
  c.keys = 1000;
  c.key_size = 16;
  c.value_size = 32;
  c.depth = 8;
  c.duration_s = 0.5;
  c.timeout_ms = 1000;  // a loaded CI machine may stall a process for a while
  return c;
}

RunConfig preload(Protocol p) {
  RunConfig c = small(p);
  c.preload = true;
  c.key_begin = 0;
  c.key_end = c.keys;
  c.duration_s = 20;  // bound; the key range ends it first
  c.batch = p == Protocol::kNative ? 8 : 1;
  return c;
}

// Checks every run's accounting: each latency sample is one completed
// request, and nothing is both answered and lost.
void expect_consistent(const RunResult& r) {
  EXPECT_EQ(r.latency.count(), r.requests_done);
  EXPECT_LE(r.requests_done + r.lost, r.requests_sent + r.send_failed + r.backlog_dropped);
  EXPECT_GT(r.seconds, 0);
}

class NativeBench : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start()); }
  testing::ServerProcess server_;
};

TEST_F(NativeBench, PreloadThenGetsAllHit) {
  auto t = transport(server_.port(), 2);
  ASSERT_NE(t, nullptr);
  RunResult p = run(preload(Protocol::kNative), *t);
  EXPECT_EQ(p.sets_ok, 1000u);
  EXPECT_EQ(p.lost, 0u);
  EXPECT_EQ(p.errors, 0u);
  expect_consistent(p);

  RunConfig c = small(Protocol::kNative);
  c.get_ratio = 1.0;
  c.batch = 4;
  RunResult r = run(c, *t);
  expect_consistent(r);
  EXPECT_GT(r.get_hits, 100u);
  EXPECT_EQ(r.get_misses, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.requests_done * 4, r.get_hits);  // 4 ops per request
  // Throughput counts the ops answered within the time window; at most the
  // requests in flight at its end (2 flows x 8 x 4 ops) answer after it.
  EXPECT_LE(r.ops_done, r.get_hits);
  EXPECT_GE(r.ops_done + 2 * 8 * 4, r.get_hits);
}

TEST_F(NativeBench, MixZipfAndOpBound) {
  auto t = transport(server_.port(), 3);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kNative);
  c.get_ratio = 0.5;
  c.zipf_theta = 0.99;
  c.max_ops = 600;
  c.batch = 3;
  c.duration_s = 10;  // the op count ends it first
  RunResult r = run(c, *t);
  expect_consistent(r);
  EXPECT_GE(r.ops_done, 600u);
  EXPECT_LE(r.ops_done, 602u);
  EXPECT_GT(r.sets_ok, 0u);
  EXPECT_GT(r.get_hits + r.get_misses, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_LT(r.seconds, 5.0);
}

TEST_F(NativeBench, OpenLoopMeetsItsRate) {
  auto t = transport(server_.port(), 2);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kNative);
  c.mode = Mode::kOpen;
  c.rate = 4000;
  c.duration_s = 1.0;
  RunResult r = run(c, *t);
  expect_consistent(r);
  // 4000 arrivals expected (Poisson sd ~63); loopback answers all of them.
  EXPECT_GT(r.requests_done, 3500u);
  EXPECT_LT(r.requests_done, 4500u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.errors, 0u);
}

TEST_F(NativeBench, AStoppedServerMeansLostRequestsNotLatencies) {
  auto t = transport(server_.port(), 1);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kNative);
  Runner runner(c, *t);
  ASSERT_TRUE(runner.handshake().is_ok());
  ASSERT_EQ(server_.stop(SIGKILL) >= 0, true);  // nobody answers any more
  c.timeout_ms = 50;
  c.duration_s = 0.3;
  Runner dead(c, *t);
  RunResult r = dead.run();  // no handshake: its cookie is 0, and nobody listens anyway
  EXPECT_EQ(r.requests_done, 0u);
  EXPECT_EQ(r.latency.count(), 0u);
  EXPECT_GE(r.lost, 8u);  // at least the first window of 8
}

// Cache-aside against an empty server: every key misses about once, then
// its fill makes later gets hit; each miss is followed by exactly one fill.
void expect_cache_aside(const RunResult& r, unsigned in_flight) {
  expect_consistent(r);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.sets_failed, 0u);
  EXPECT_GT(r.get_misses, 0u);
  EXPECT_GT(r.get_hits, r.get_misses);  // 1000 keys, thousands of gets
  // A fill is sent for every miss but those answered when issuing stopped.
  EXPECT_LE(r.fills, r.get_misses);
  EXPECT_GE(r.fills + in_flight, r.get_misses);
  EXPECT_EQ(r.sets_ok, r.fills);  // get ratio 1: the only sets are fills
  // A key misses again only while its fill is in flight: a few repeats at most.
  EXPECT_LE(r.get_misses, 1000u + 10 * in_flight);
  EXPECT_GT(r.hit_ratio(), 0.5);
}

TEST_F(NativeBench, FillOnMissTurnsMissesIntoHits) {
  auto t = transport(server_.port(), 2);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kNative);
  c.get_ratio = 1.0;
  c.fill_on_miss = true;
  c.duration_s = 1.0;
  expect_cache_aside(run(c, *t), 2 * 8);
}

TEST_F(NativeBench, TimelineAddsUpToTheWindow) {
  auto t = transport(server_.port(), 2);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kNative);
  c.get_ratio = 0.5;
  c.duration_s = 2.2;
  RunResult r = run(c, *t);
  expect_consistent(r);
  // Rows for seconds 1 and 2; the last 0.2 s (under half a second) is in row 2.
  ASSERT_EQ(r.timeline.size(), 2u);
  EXPECT_EQ(r.timeline[0].second, 1u);
  EXPECT_EQ(r.timeline[1].second, 2u);
  EXPECT_NEAR(r.timeline[0].length_s, 1.0, 0.05);
  EXPECT_NEAR(r.timeline[1].length_s, 1.2, 0.05);
  Counts sum;
  for (const auto& row : r.timeline) {
    sum += row.c;
    EXPECT_GT(row.ops_per_s, 0);
  }
  EXPECT_EQ(sum.ops, r.ops_done);  // the drain after the window is in neither
  EXPECT_LE(sum.sets_ok, r.sets_ok);
  EXPECT_LE(sum.get_hits + sum.get_misses, r.get_hits + r.get_misses);
  EXPECT_GE(sum.sets_ok + sum.get_hits + sum.get_misses + 2 * 8, r.sets_ok + r.get_hits + r.get_misses);
}

// ---- memcached ----

class MemcachedBench : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("MEMCACHED");
    if (bin == nullptr || ::access(bin, X_OK) != 0) GTEST_SKIP() << "no memcached binary ($MEMCACHED)";
    port_ = testing::free_udp_port();
    std::vector<std::string> args = {bin, "-U", std::to_string(port_), "-p", "0", "-l", "127.0.0.1", "-t", "1", "-m", "64"};
    if (::geteuid() == 0) {
      args.push_back("-u");
      args.push_back("root");
    }
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin, argv.data());
      ::_exit(127);
    }
    // Ready when a set is answered.
    auto t = transport(port_, 1);
    for (int i = 0; i < 50; ++i) {
      RunConfig c = preload(Protocol::kMemcached);
      c.key_end = 1;
      c.timeout_ms = 50;
      Runner r(c, *t);
      if (r.run().sets_ok == 1) return;
      ::usleep(20000);
    }
    FAIL() << "memcached did not answer on UDP port " << port_;
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(MemcachedBench, PreloadThenGetsAllHit) {
  auto t = transport(port_, 2);
  ASSERT_NE(t, nullptr);
  RunResult p = run(preload(Protocol::kMemcached), *t);
  EXPECT_EQ(p.sets_ok, 1000u);
  EXPECT_EQ(p.lost, 0u);
  EXPECT_EQ(p.errors, 0u);
  RunConfig c = small(Protocol::kMemcached);
  c.get_ratio = 1.0;
  RunResult r = run(c, *t);
  expect_consistent(r);
  EXPECT_GT(r.get_hits, 100u);
  EXPECT_EQ(r.get_misses, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_LE(r.ops_done, r.get_hits);
  EXPECT_GE(r.ops_done + 2 * 8, r.get_hits);
}

TEST_F(MemcachedBench, MixedOpenLoop) {
  auto t = transport(port_, 2);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kMemcached);
  c.get_ratio = 0.9;
  c.mode = Mode::kOpen;
  c.rate = 3000;
  c.duration_s = 1.0;
  RunResult r = run(c, *t);
  expect_consistent(r);
  EXPECT_GT(r.requests_done, 2500u);
  EXPECT_LT(r.requests_done, 3500u);
  EXPECT_GT(r.sets_ok, 100u);
  EXPECT_GT(r.get_hits + r.get_misses, 2000u);
  EXPECT_EQ(r.errors, 0u);
}

TEST_F(MemcachedBench, FillOnMissTurnsMissesIntoHits) {
  auto t = transport(port_, 2);
  ASSERT_NE(t, nullptr);
  RunConfig c = small(Protocol::kMemcached);
  c.get_ratio = 1.0;
  c.fill_on_miss = true;
  c.duration_s = 1.0;
  expect_cache_aside(run(c, *t), 2 * 8);
}

TEST(BenchConfig, RejectsWhatCannotBeSent) {
  RunConfig c;
  EXPECT_EQ(check_config(c), "");
  c.protocol = Protocol::kMemcached;
  c.batch = 2;
  EXPECT_NE(check_config(c), "");
  c.protocol = Protocol::kNative;
  c.batch = 64;  // 64 x (24 + 16 + 32) bytes > one 1472-byte datagram
  EXPECT_NE(check_config(c), "");
  c.batch = max_batch(c);
  EXPECT_EQ(check_config(c), "");
  c.mode = Mode::kOpen;
  EXPECT_NE(check_config(c), "");  // no rate
}

}  // namespace
}  // namespace ferrite::bench
