// memcached over TCP, issue 18: pipelined classic commands of one read go to
// the index as one burst (server/memcached/batch.cc) with the same reply
// bytes as when executed one at a time, and McTcpServer with several epoll
// threads (server.tcp_workers) serves many concurrent connections correctly
// on all of them, with the connection counters kept across threads (and
// asking for more threads than the index has workers is an error). The
// literal replies are memcached 1.6.18's, captured from that server on this
// machine (one write of the whole script, one connection).
//
// The test thread drives the clients; the server runs its own threads.
// GCC 12 reports -Wmaybe-uninitialized inside <regex>'s std::function when
// built with -fsanitize=address (a false positive in libstdc++); with
// -Werror it would stop CI's ASan build. Before the includes, so it covers
// their instantiations.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning (the fuzz build)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "server/memcached/tcp.h"
#include "tests/util/loopback.h"
#include "tests/util/mc_fixture.h"

namespace ferrite::server {
namespace {

// Classic commands of every batched kind, with a reply that depends on an
// earlier one on the same key (get after append, incr after set...), noreply,
// an error in the middle, and a cas against a value no client could know.
constexpr std::string_view kScript =
    "set k 5 0 1\r\nx\r\nget k\r\nappend k 0 0 2\r\nyz\r\nprepend k 0 0 1\r\nw\r\nget k\r\n"
    "incr n 1\r\nset n 0 0 1\r\n5\r\nincr n 3\r\ndecr n 10\r\nincr n 18446744073709551615\r\n"
    "add n 0 0 1\r\n1\r\nreplace q 0 0 1\r\nq\r\nadd q 3 0 2\r\nqq\r\nreplace q 4 0 1\r\nr\r\n"
    "set z 0 0 1 noreply\r\nz\r\ndelete k\r\ndelete k\r\nget k n q z\r\ntouch n 100\r\ntouch k 100\r\n"
    "bogus\r\nset y 0 0 1 noreply\r\ny\r\nincr z 1\r\ndelete y noreply\r\nget y z\r\ncas z 0 0 1 1\r\n1\r\nmn\r\n";
// memcached 1.6.18's reply to kScript.
constexpr std::string_view kScriptReply =
    "STORED\r\nVALUE k 5 1\r\nx\r\nEND\r\nSTORED\r\nSTORED\r\nVALUE k 5 4\r\nwxyz\r\nEND\r\nNOT_FOUND\r\nSTORED\r\n"
    "8\r\n0\r\n18446744073709551615\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nDELETED\r\nNOT_FOUND\r\n"
    "VALUE n 0 20\r\n18446744073709551615\r\nVALUE q 4 1\r\nr\r\nVALUE z 0 1\r\nz\r\nEND\r\nTOUCHED\r\nNOT_FOUND\r\n"
    "ERROR\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nVALUE z 0 1\r\nz\r\nEND\r\nEXISTS\r\n"
    "MN\r\n";

// More: gets/gat/gats (CAS values differ between runs, masked), a get of
// more keys than a batch takes, flush_all and version in the middle (run
// alone), noreply storage, and many small pipelined sets and gets.
std::string mixed_script() {
  std::string s(kScript);
  s += "gets z n\r\ngat 100 z q\r\ngats 0 n\r\nversion\r\n";
  s += "get a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n";
  for (int i = 0; i < 100; ++i) {
    const std::string k = "p" + std::to_string(i);
    s += "set " + k + " " + std::to_string(i) + " 0 " + std::to_string(k.size()) + "\r\n" + k + "\r\n";
    s += "get " + k + " p" + std::to_string(i / 2) + "\r\n";
    if (i % 7 == 0) s += "delete p" + std::to_string(i / 3) + "\r\n";
    if (i % 11 == 0) s += "add " + k + " 0 0 1 noreply\r\nA\r\n";
    if (i == 50) s += "flush_all\r\n";
  }
  s += "get p1 p99 p98\r\nmn\r\n";
  return s;
}

// The CAS values of gets/gats replies masked (they count writes since start).
std::string mask_cas(const std::string& r) {
  static const std::regex kValueCas("(VALUE \\S+ \\d+ \\d+) \\d+\r\n");
  return std::regex_replace(r, kValueCas, "$1 #\r\n");
}

class McTcpBatchTest : public testing::McEngineTest {
 protected:
  McTcpBatchTest() : McEngineTest("mctcpbatch") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(create_pool(64u << 20));
    ASSERT_NO_FATAL_FAILURE(open_engine({.workers = 3}));
  }
  // Feeds in the way the TCP server does (a resumable McStream: batched).
  std::string run_batched(std::string_view in) {
    server::McStream st;
    std::string out;
    std::size_t swallow = 0, done = 0;
    bool close = false;
    while (done < in.size()) {
      const std::size_t used = mc_->process(*cx_, in.substr(done), &out, &swallow, &close, &st);
      done += used + std::min(swallow, in.size() - done - used);
      if (close || (used == 0 && swallow == 0)) break;
    }
    return out;
  }
  uint64_t stat(std::atomic<uint64_t> McStats::*f) const { return mc_->sum(f); }
};

TEST_F(McTcpBatchTest, PipelinedScriptGivesMemcachedsBytesInOneBurst) {
  EXPECT_EQ(run_batched(kScript), kScriptReply);
  EXPECT_GT(stat(&McStats::tcp_batches), 0u);
  EXPECT_GE(stat(&McStats::tcp_batched_requests), 10u);
}

TEST_F(McTcpBatchTest, BatchedEqualsOneAtATime) {
  const std::string script = mixed_script();
  const std::string batched = run_batched(script);
  const uint64_t batches = stat(&McStats::tcp_batches);
  ASSERT_EQ(run("flush_all\r\n"), "OK\r\n");
  // The unbatched path: process() without a stream runs request by request.
  const std::string alone = run(script);
  EXPECT_EQ(stat(&McStats::tcp_batches), batches) << "the one-at-a-time run must not batch";
  EXPECT_GT(batches, 10u);
  EXPECT_EQ(mask_cas(batched), mask_cas(alone));
  EXPECT_TRUE(batched.starts_with(kScriptReply)) << batched.substr(0, kScriptReply.size());
  EXPECT_TRUE(batched.ends_with("VALUE p99 99 3\r\np99\r\nVALUE p98 98 3\r\np98\r\nEND\r\nMN\r\n")) << batched;
}

TEST_F(McTcpBatchTest, PipelinedOverTcpInOneWrite) {
  ASSERT_NO_FATAL_FAILURE(start_tcp(1, 1));
  const int fd = connect_tcp();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(testing::tcp_exchange(fd, kScript, "MN\r\n"), kScriptReply);
  // The same bytes one request at a time, after a flush.
  EXPECT_EQ(testing::tcp_exchange(fd, "flush_all\r\n", "\r\n"), "OK\r\n");
  const uint64_t batched = stat(&McStats::tcp_batched_requests);
  EXPECT_GT(batched, 0u);
  std::string alone;
  const std::string script(kScript);
  std::size_t at = 0;
  // Whole requests: a line, plus a data line for storage commands.
  while (at < script.size()) {
    std::size_t end = script.find("\r\n", at) + 2;
    const std::string_view line(script.data() + at, end - at);
    const bool storage = line.starts_with("set ") || line.starts_with("add ") || line.starts_with("replace ") ||
                         line.starts_with("append ") || line.starts_with("prepend ") || line.starts_with("cas ");
    if (storage) end = script.find("\r\n", end) + 2;
    ASSERT_TRUE(testing::send_all(fd, std::string_view(script.data() + at, end - at)));
    at = end;
    // Waits for the reply unless the request has none (noreply).
    if (line.find("noreply") == std::string_view::npos) {
      alone += testing::tcp_exchange(fd, "", line.starts_with("get ") ? "END\r\n" : "\r\n");
    }
  }
  EXPECT_EQ(alone, kScriptReply);
  ::close(fd);
}

// Each thread needs an index worker of its own: asking for more than the
// index has is an error naming both numbers, with nothing set up (no thrown
// exception from the index's worker table).
TEST_F(McTcpBatchTest, MoreThreadsThanIndexWorkersIsAnError) {
  ASSERT_EQ(idx_->workers(), 3u);
  auto s = McTcpServer::create(*mc_, "127.0.0.1", 0, /*first_index_worker=*/1, /*threads=*/3);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "memcached TCP: 3 thread(s) from index worker 1 need 4 index workers; the index has 3");
  auto past_end = McTcpServer::create(*mc_, "127.0.0.1", 0, /*first_index_worker=*/UINT_MAX, /*threads=*/1);
  ASSERT_FALSE(past_end.is_ok());
  EXPECT_EQ(past_end.status().code(), Status::Code::kInvalidArgument) << past_end.status().to_string();
  EXPECT_EQ(mc_->max_connections.load(), 0u) << "a refused server must not count its connection limit";
  // The most that fit (workers 1 and 2) are served.
  ASSERT_NO_FATAL_FAILURE(start_tcp(1, 2));
  EXPECT_EQ(srv_->threads(), 2u);
}

TEST_F(McTcpBatchTest, TwoThreadsServeManyConnections) {
  ASSERT_NO_FATAL_FAILURE(start_tcp(1, 2));
  ASSERT_EQ(srv_->threads(), 2u);
  constexpr int kClients = 8, kConnsEach = 8, kRounds = 20;
  std::atomic<int> failures{0}, opened{0};
  std::atomic<bool> go_close{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      std::vector<int> fds;
      for (int c = 0; c < kConnsEach; ++c) fds.push_back(connect_tcp());
      for (int r = 0; r < kRounds; ++r) {
        for (std::size_t c = 0; c < fds.size(); ++c) {
          const std::string k = "t" + std::to_string(t) + "c" + std::to_string(c) + "r" + std::to_string(r);
          const std::string req = "set " + k + " 7 0 " + std::to_string(k.size()) + "\r\n" + k + "\r\nget " + k +
                                  " missing\r\nincr " + k + " 1\r\n";
          const std::string want = "STORED\r\nVALUE " + k + " 7 " + std::to_string(k.size()) + "\r\n" + k +
                                   "\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
          if (testing::tcp_exchange(fds[c], req, "value\r\n") != want) failures.fetch_add(1);
        }
      }
      opened.fetch_add(1);
      while (!go_close.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      for (int fd : fds) ::close(fd);
    });
  }
  while (opened.load() < kClients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Every connection is open: the counters see those of both threads.
  const int fd = connect_tcp();
  const std::string stats = testing::tcp_exchange(fd, "stats\r\n", "END\r\n");
  EXPECT_NE(stats.find("STAT curr_connections " + std::to_string(kClients * kConnsEach + 1) + "\r\n"),
            std::string::npos)
      << stats;
  ::close(fd);
  go_close.store(true);
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mc_->total_connections.load(), static_cast<uint64_t>(kClients * kConnsEach + 1));
  EXPECT_EQ(srv_->accepted(0) + srv_->accepted(1), static_cast<uint64_t>(kClients * kConnsEach + 1));
  EXPECT_GT(srv_->accepted(0), 0u) << "thread 0 served no connection";
  EXPECT_GT(srv_->accepted(1), 0u) << "thread 1 served no connection";
  for (int i = 0; i < 500 && mc_->curr_connections.load() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(mc_->curr_connections.load(), 0u);
}

// Thread 0 accepts and deals connections in turn, so each thread serves the
// same number (issue 18). Per-thread listeners with SO_REUSEPORT split by an
// address hash instead: 64 connections come out 32/32 about one time in ten.
// Each connection is used on the thread it was dealt to, and every one is
// counted as open until closed.
TEST_F(McTcpBatchTest, ConnectionsAreDealtToTheThreadsInTurn) {
  ASSERT_NO_FATAL_FAILURE(start_tcp(1, 2));
  constexpr int kConns = 64;
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {
    fds.push_back(connect_tcp());
    const std::string k = "dealt" + std::to_string(i);
    const std::string req = "set " + k + " 0 0 1\r\nx\r\nget " + k + "\r\n";
    EXPECT_EQ(testing::tcp_exchange(fds.back(), req, "END\r\n"), "STORED\r\nVALUE " + k + " 0 1\r\nx\r\nEND\r\n");
  }
  EXPECT_EQ(srv_->accepted(0), static_cast<uint64_t>(kConns / 2));
  EXPECT_EQ(srv_->accepted(1), static_cast<uint64_t>(kConns / 2));
  EXPECT_EQ(mc_->curr_connections.load(), static_cast<uint64_t>(kConns));
  for (int fd : fds) ::close(fd);
  for (int i = 0; i < 500 && mc_->curr_connections.load() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(mc_->curr_connections.load(), 0u);
}

// A server stopped with connections open (some dealt to thread 1) closes
// them all and counts none as open.
TEST_F(McTcpBatchTest, StopClosesTheConnectionsOfEveryThread) {
  ASSERT_NO_FATAL_FAILURE(start_tcp(1, 2));
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) {
    fds.push_back(connect_tcp());
    EXPECT_EQ(testing::tcp_exchange(fds.back(), "version\r\n", "\r\n").rfind("VERSION ", 0), 0u);
  }
  srv_->stop();
  EXPECT_EQ(mc_->curr_connections.load(), 0u);
  for (int fd : fds) {
    char c = 0;
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "the server's end of every connection is closed";
    ::close(fd);
  }
}

}  // namespace
}  // namespace ferrite::server
