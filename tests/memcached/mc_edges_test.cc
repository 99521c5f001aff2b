// memcached conformance at the edges (issue 17): a set that fails (value too
// large, out of memory) unlinks the old value; malformed numbers get
// memcached's answers and the stream stays in sync; a line that looks like
// HTTP closes the connection (or drops the datagram) without a reply; a
// binary write whose value is too large is answered "Too large." and its
// body swallowed. Every expected reply is memcached 1.6.18's, captured from
// that server on this machine (the few deliberate differences are marked and
// explained in docs/memcached.md).
//
// Single-threaded but for the TCP server's own thread; one engine per test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/endian.h"
#include "pmem/layout.h"
#include "proto/memcached.h"
#include "server/memcached/tcp.h"
#include "server/memcached/udp.h"
#include "tests/util/loopback.h"
#include "tests/util/mc_binary.h"
#include "tests/util/mc_fixture.h"

namespace ferrite::server {
namespace {

using ::testing::StartsWith;
namespace mc = proto::mc;

class McEdgesTest : public testing::McEngineTest {
 protected:
  McEdgesTest() : McEngineTest("mcedges") {}
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(start(64u << 20)); }
  void start(std::size_t pool_size) {
    ASSERT_NO_FATAL_FAILURE(create_pool(pool_size));
    ASSERT_NO_FATAL_FAILURE(open_engine({.workers = 3}));
  }
  uint64_t stat(std::atomic<uint64_t> McStats::*f) const { return mc_->sum(f); }
  // A connection to a McTcpServer over the engine (started on first use).
  int connect_tcp() {
    if (!srv_) start_tcp(2);
    return McEngineTest::connect_tcp();
  }
  // Reads n bytes (fewer if the peer closes or 5 s pass); *eof: the peer closed.
  static std::string read_n(int fd, std::size_t n, bool* eof = nullptr) {
    std::string r;
    char buf[4096];
    bool closed = false;
    while (r.size() < n) {
      const ssize_t got = ::recv(fd, buf, std::min(sizeof(buf), n - r.size()), 0);
      if (got <= 0) {
        closed = got == 0;
        break;
      }
      r.append(buf, static_cast<std::size_t>(got));
    }
    if (eof != nullptr) *eof = closed;
    return r;
  }
};

std::string value_of(std::size_t n) { return std::string(n, 'v'); }

// Bytes sent, and memcached 1.6.18's reply to them.
struct Exchange {
  std::string_view in, reply;
};

// ---- a failed set leaves no stale value ----

TEST_F(McEdgesTest, TooLargeSetUnlinksTheOldValue) {
  const std::string big = value_of(mc::kMaxValueLen + 1);
  const std::string n = std::to_string(big.size());
  constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
  // set (and set noreply) unlink; add, replace, append, prepend and cas keep
  // the old value (memcached 1.6.18: "Unacceptable for SET. Anywhere else too?").
  struct Case {
    std::string head, tail;  // the command line: head, the length, tail
    std::string get;         // memcached's reply to "get k" afterwards
  };
  const std::string kept = "VALUE k 0 3\r\nMOO\r\nEND\r\n";
  const std::vector<Case> cases = {
      {"set k 0 0 ", "", "END\r\n"},   {"add k 0 0 ", "", kept},  {"replace k 0 0 ", "", kept},
      {"append k 0 0 ", "", kept},      {"prepend k 0 0 ", "", kept}, {"cas k 0 0 ", " 1", kept},
      {"ms k ", "", "END\r\n"},        // ms: every mode unlinks
      {"ms k ", " MA", "END\r\n"},     {"ms k ", " ME", "END\r\n"}, {"ms k ", " MR", "END\r\n"},
      {"ms k ", " q", "END\r\n"},
  };
  uint64_t refused = 0;
  for (const Case& c : cases) {
    ASSERT_EQ(run("set k 0 0 3\r\nMOO\r\n"), "STORED\r\n");
    EXPECT_EQ(run(c.head + n + c.tail + "\r\n" + big + "\r\nget k\r\n"), std::string(kTooLarge) + c.get) << c.head << c.tail;
    EXPECT_EQ(stat(&McStats::store_too_large), ++refused);
  }
  ASSERT_EQ(run("set k 0 0 3\r\nMOO\r\n"), "STORED\r\n");
  EXPECT_EQ(run("set k 0 0 " + n + " noreply\r\n" + big + "\r\nget k\r\n"), "END\r\n");
  // ms with a base64 key unlinks the decoded key (dDEz is "t13").
  ASSERT_EQ(run("set t13 0 0 3\r\nold\r\n"), "STORED\r\n");
  EXPECT_EQ(run("ms dDEz " + n + " b\r\n" + big + "\r\nget t13\r\n"), std::string(kTooLarge) + "END\r\n");
  // A flag error comes before the size: nothing is unlinked.
  ASSERT_EQ(run("set t14 0 0 3\r\nold\r\n"), "STORED\r\n");
  EXPECT_EQ(run("ms t14 " + n + " !\r\n" + big + "\r\nget t14\r\n"),
            "CLIENT_ERROR invalid flag\r\nVALUE t14 0 3\r\nold\r\nEND\r\n");
}

// Out of memory (pool.when_full = "error", nothing evicted): memcached's set
// unlinks the old value there too; replace keeps it.
TEST_F(McEdgesTest, OutOfMemorySetUnlinksTheOldValue) {
  mc_.reset();
  ASSERT_NO_FATAL_FAILURE(start(pmem::kMinPoolSize));
  const std::string v = value_of(64u << 10);
  const std::string line = " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  ASSERT_EQ(run("set keep 0 0 3\r\nold\r\nset keep2 0 0 3\r\nold\r\n"), "STORED\r\nSTORED\r\n");
  std::string r;
  for (int i = 0; i < 1000; ++i) {
    r = run("set f" + std::to_string(i) + line);
    if (r != "STORED\r\n") break;
  }
  ASSERT_THAT(r, StartsWith("SERVER_ERROR out of memory storing object"));
  EXPECT_THAT(run("replace keep2" + line), StartsWith("SERVER_ERROR out of memory storing object"));
  EXPECT_EQ(run("get keep2\r\n"), "VALUE keep2 0 3\r\nold\r\nEND\r\n");
  EXPECT_THAT(run("set keep" + line), StartsWith("SERVER_ERROR out of memory storing object"));
  EXPECT_EQ(run("get keep\r\n"), "END\r\n");
  EXPECT_EQ(stat(&McStats::store_no_memory), 3u);
}

// ---- malformed numbers ----

// Each input runs after the ones before it (they share the keys), and gets
// memcached 1.6.18's reply: the same bytes, and the same idea of where the
// next command starts (a refused length swallows nothing: "abcd" is then
// read as a command, ERROR).
TEST_F(McEdgesTest, MalformedNumbersGetMemcachedsReplies) {
  const Exchange cases[] = {
      {"set k 0 0 -1\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 4294967295\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 2147483647\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 2147483646\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 2147483648\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      // Differs on purpose (docs/memcached.md): memcached keeps the low 32
      // bits of these lengths (4 and 1: "STORED", then "CLIENT_ERROR bad data chunk").
      {"set k 0 0 4294967300\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 4294967297\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 18446744073709551615\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 18446744073709551616\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 99999999999999999999999\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 +4\r\nabcd\r\n", "STORED\r\n"},
      {"set k 0 0 4x\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 x\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 -0\r\n\r\n", "STORED\r\n"},
      {"set k 0 0 \t4\r\nabcd\r\n", "STORED\r\n"},
      {"set k 0 0 4\t\r\nabcd\r\n", "STORED\r\n"},
      {"set k 0 0 04\r\nabcd\r\n", "STORED\r\n"},
      {"set k -1 0 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 4294967295 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 4294967295 4\r\nabcd\r\nEND\r\n"},
      {"set k 4294967296 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k 4294967297 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 1 4\r\nabcd\r\nEND\r\n"},
      {"set k 18446744073709551615 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 4294967295 4\r\nabcd\r\nEND\r\n"},
      {"set k 18446744073709551616 0 4\r\nabcd\r\nget k\r\n",
       "CLIENT_ERROR bad command line format\r\nERROR\r\nVALUE k 4294967295 4\r\nabcd\r\nEND\r\n"},
      {"set k 9223372036854775808 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k -9223372036854775808 0 4\r\nabcd\r\nget k\r\n",
       "CLIENT_ERROR bad command line format\r\nERROR\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k +5 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 5 4\r\nabcd\r\nEND\r\n"},
      {"set k -0 0 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k x 0 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 1x 0 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 x 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 -1 4\r\nabcd\r\nget k\r\n", "STORED\r\nEND\r\n"},
      {"set k 0 2147483648 4\r\nabcd\r\nget k\r\n", "STORED\r\nEND\r\n"},
      {"set k 0 4294967296 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k 0 9223372036854775808 4\r\nabcd\r\nget k\r\n",
       "CLIENT_ERROR bad command line format\r\nERROR\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k 0 +10 4\r\nabcd\r\nget k\r\n", "STORED\r\nVALUE k 0 4\r\nabcd\r\nEND\r\n"},
      {"set k 0 1.5 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"add k2 0 0 -1\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"replace k 0 0 4294967295\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"append k 0 0 2147483647\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"prepend k x 0 4\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"cas k 0 0 4 x\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"cas k 0 0 4 -1\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"cas k 0 0 4 18446744073709551616\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"cas k 0 0 -1 1\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"set k 0 0 -1 noreply\r\nabcd\r\n", "ERROR\r\n"},
      {"set k 0 0 4 noreply\r\nabcdef\r\n", "ERROR\r\n"},
      {"set k 0 0 4\r\nabcdef\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
      {"set k 0 0\r\nabcd\r\n", "ERROR\r\nERROR\r\n"},
      {"set k 0 0 4 5 6\r\nabcd\r\n", "ERROR\r\nERROR\r\n"},
      {"set k 0 0 4 5\r\nabcd\r\n", "STORED\r\n"},
      {"incr k -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
      {"incr k x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
      {"incr k 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
      {"incr k 18446744073709551615\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
      {"incr k +1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
      {"decr k -0\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
      {"incr k 1 2\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
      {"incr k\r\n", "ERROR\r\n"},
      {"incr k -1 noreply\r\n", ""},
      {"touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"touch k -1\r\n", "TOUCHED\r\n"},
      {"touch k 4294967296\r\n", "NOT_FOUND\r\n"},
      {"touch k 9223372036854775808\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"touch k 1 x\r\n", "NOT_FOUND\r\n"},
      {"gat x k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"gat -1 k\r\n", "END\r\n"},
      {"gat 9223372036854775808 k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"gats 4294967296 k\r\n", "END\r\n"},
      {"gat 10\r\n", "END\r\n"},
      {"gat x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"gat\r\n", "ERROR\r\n"},
      {"verbosity x\r\n", "CLIENT_ERROR bad command line format\r\n"},
      {"verbosity -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
      {"verbosity 4294967296\r\n", "OK\r\n"},
      {"verbosity 18446744073709551616\r\n", "CLIENT_ERROR bad command line format\r\n"},
      {"verbosity 1 noreply\r\n", ""},
      {"verbosity x noreply\r\n", ""},
      {"verbosity\r\n", "ERROR\r\n"},
      {"verbosity 1 2\r\n", "OK\r\n"},
      {"verbosity 1 2 3\r\n", "ERROR\r\n"},
      {"flush_all x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"flush_all -1\r\n", "OK\r\n"},
      {"flush_all 4294967296\r\n", "OK\r\n"},
      {"flush_all 9223372036854775808\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
      {"flush_all 0 x\r\n", "OK\r\n"},
      {"flush_all x noreply\r\n", ""},
      {"flush_all noreply\r\n", ""},
      {"delete k x\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
      {"delete k 0\r\n", "NOT_FOUND\r\n"},
      {"delete k 1\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
      {"delete k -0\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
      {"delete k 0 noreply\r\n", ""},
      {"delete k 0 x\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
      {"delete\r\n", "ERROR\r\n"},
      {"ms k\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"ms k -1\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
      {"ms k 2147483647\r\nabcd\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
  };
  for (const Exchange& c : cases) EXPECT_EQ(run(c.in), c.reply) << c.in;
  // Keys beyond 250 bytes: refused before the length, nothing swallowed.
  const std::string long_key(mc::kMaxKeyLen + 1, 'k');
  EXPECT_EQ(run("ms " + long_key + " 4\r\nabcd\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n");
  EXPECT_EQ(run("set " + long_key + " 0 0 4\r\nabcd\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n");
}

// More tokens than a command takes: memcached counts at most 24 (its
// MAX_TOKENS) and answers ERROR, or its meta commands' own errors.
TEST_F(McEdgesTest, TooManyTokens) {
  auto many = [](std::string head, std::string_view tok, int n) {
    for (int i = 0; i < n; ++i) head += tok;
    return head + "\r\n";
  };
  EXPECT_EQ(run(many("delete k", " x", 40)), "ERROR\r\n");
  EXPECT_EQ(run(many("delete k", " x", 20)), "ERROR\r\n");
  EXPECT_EQ(run(many("set k 0 0 1", " x", 40) + "x\r\n"), "ERROR\r\nERROR\r\n");
  EXPECT_EQ(run(many("incr k 1", " x", 40)), "ERROR\r\n");
  EXPECT_EQ(run(many("touch k 1", " x", 40)), "ERROR\r\n");
  EXPECT_EQ(run(many("flush_all 0", " x", 40)), "ERROR\r\n");
  EXPECT_EQ(run(many("verbosity 1", " x", 40)), "ERROR\r\n");
  EXPECT_EQ(run(many("mn", " x", 40)), "MN\r\n");
  EXPECT_EQ(run(many("md k", " q", 40)), "CLIENT_ERROR options flags too long\r\n");
  EXPECT_EQ(run(many("ma k", " q", 18)), "CLIENT_ERROR options flags too long\r\n");
  EXPECT_EQ(run(many("mg k", " v", 17)), "CLIENT_ERROR duplicate flag\r\n");
  EXPECT_EQ(run(many("mg k", " v", 18)), "CLIENT_ERROR options flags are too long\r\n");
  EXPECT_EQ(run(many("ms k 1", " T0", 16) + "x\r\n"), "CLIENT_ERROR duplicate flag\r\n");
  EXPECT_EQ(run(many("ms k 1", " T0", 17) + "x\r\n"), "CLIENT_ERROR options flags too long\r\nERROR\r\n");
}

// A too-large length is swallowed exactly (the next command is answered);
// beyond kMaxSwallow (no memcached item can be that large) the connection
// closes instead of discarding gigabytes.
TEST_F(McEdgesTest, TooLargeLengthsKeepTheStreamInSync) {
  const std::string big = value_of(2000000);
  EXPECT_EQ(run("set k 0 0 2000000\r\n" + big + "\r\nmn\r\n"), "SERVER_ERROR object too large for cache\r\nMN\r\n");
  EXPECT_EQ(run("cas k 0 0 2000000 1\r\n" + big + "\r\nmn\r\n"), "SERVER_ERROR object too large for cache\r\nMN\r\n");
  EXPECT_EQ(run("set k 0 0 2000000 noreply\r\n" + big + "\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(run("ms k 2000000 T0\r\n" + big + "\r\nmn\r\n"), "SERVER_ERROR object too large for cache\r\nMN\r\n");
  bool closed = false;
  EXPECT_EQ(run("set k 0 0 2147483645\r\nabcd\r\nmn\r\n", &closed), "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(closed);
  EXPECT_EQ(run("ms k 1073741825 T0\r\nabcd\r\nmn\r\n", &closed), "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(closed);
  EXPECT_EQ(run("ms k 1073741825 !\r\nabcd\r\nmn\r\n", &closed), "CLIENT_ERROR invalid flag\r\n");
  EXPECT_TRUE(closed);
}

// ---- lines that look like HTTP ----

TEST_F(McEdgesTest, HttpLinesCloseWithoutAReply) {
  bool closed = false;
  for (const char* in : {"GET / HTTP/1.0\r\n", "PUT /a HTTP/1.1\r\n", "DELETE HTTP/1.1\r\n", "XX HTTP/1.1\r\n",
                         "HTTP/1.1\r\n", "GXT / HTTP/1.0\r\n", "Rset / HTTP/1.0\r\n", "foo HTTP/1.0x\r\n",
                         "misbehave HTTP/1.0\r\n"}) {
    EXPECT_EQ(run(std::string(in) + "mn\r\n", &closed), "") << in;
    EXPECT_TRUE(closed) << in;
  }
  EXPECT_EQ(stat(&McStats::http_refused), 9u);
  // The 23rd token counts (memcached's MAX_TOKENS), a later one does not.
  auto with_tokens = [](int a) {
    std::string s = "FOO";
    for (int i = 0; i < a; ++i) s += " a";
    return s + " HTTP/1.0 b c\r\nmn\r\n";
  };
  EXPECT_EQ(run(with_tokens(21), &closed), "");
  EXPECT_TRUE(closed);
  // memcached's answers to lines it dispatches (a command name it knows, a
  // one-letter name, or a last token not starting with "HTTP/").
  const Exchange kept[] = {
      {"get / HTTP/1.0\r\n", "END\r\n"},
      {"gets / HTTP/1.0\r\n", "END\r\n"},
      {"delete / HTTP/1.1\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
      {"POST / http/1.1\r\n", "ERROR\r\n"},
      {"X HTTP/1.1\r\n", "ERROR\r\n"},
      {"OPTIONS * HTTP/1.1 extra\r\n", "ERROR\r\n"},
      {"gxt / HTTP/1.0\r\n", "ERROR\r\n"},
      {"mx / HTTP/1.0\r\n", "ERROR\r\n"},
      {"slabs / HTTP/1.0\r\n", "ERROR\r\n"},
      {"stats / HTTP/1.0\r\n", "ERROR\r\n"},
      {"extstore HTTP/1.0\r\n", "ERROR\r\n"},
      {"debugtime HTTP/1.0\r\n", "ERROR\r\n"},
      {"set hy 0 0 16\r\nGET / HTTP/1.0\r\n\r\nget hy\r\n", "STORED\r\nVALUE hy 0 16\r\nGET / HTTP/1.0\r\n\r\nEND\r\n"},
  };
  for (const Exchange& c : kept) {
    EXPECT_EQ(run(std::string(c.in) + "mn\r\n", &closed), std::string(c.reply) + "MN\r\n") << c.in;
    EXPECT_FALSE(closed) << c.in;
  }
  EXPECT_EQ(run(with_tokens(22), &closed), "ERROR\r\nMN\r\n");
  // Over TCP: not a byte, then the close (replies before it were sent:
  // docs/memcached.md).
  const int fd = connect_tcp();
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::send_all(fd, "version\r\n"));
  const std::string version = "VERSION " + std::string(kMcVersion) + "\r\n";
  EXPECT_EQ(read_n(fd, version.size()), version);
  ASSERT_TRUE(testing::send_all(fd, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
  bool eof = false;
  EXPECT_EQ(read_n(fd, 1, &eof), "");
  EXPECT_TRUE(eof);
  ::close(fd);
}

TEST_F(McEdgesTest, HttpDatagramsGetNoReply) {
  McUdpHandler h(*mc_, 1, 1);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(0x7f000001);
  peer.sin_port = htons(5557);
  auto datagram = [](uint16_t id, std::string_view body) {
    std::vector<uint8_t> d(mc::kUdpHeaderSize + body.size());
    mc::encode_udp_header({id, 0, 1, 0}, d.data());
    std::memcpy(d.data() + mc::kUdpHeaderSize, body.data(), body.size());
    return d;
  };
  // memcached 1.6.18 over UDP: no reply to the two HTTP datagrams (not even
  // the set's STORED before it); the set was done.
  const std::vector<std::vector<uint8_t>> dgs = {datagram(1, "GET / HTTP/1.0\r\n"),
                                                 datagram(2, "set u 0 0 1\r\nx\r\nGET / HTTP/1.0\r\n"),
                                                 datagram(3, "version\r\n"), datagram(4, "get u\r\n")};
  std::vector<net::Datagram> in;
  for (const auto& d : dgs) in.push_back({peer, d});
  net::TxQueue out;
  h.on_burst(0, in, out);
  ASSERT_EQ(out.size(), 2u);
  mc::UdpHeader hd;
  const auto body = [&](std::size_t i) {
    return std::string_view(reinterpret_cast<const char*>(out.bytes(i).data()), out.bytes(i).size());
  };
  ASSERT_TRUE(mc::decode_udp_header(body(0), &hd));
  EXPECT_EQ(hd.request_id, 3);
  EXPECT_EQ(body(0).substr(mc::kUdpHeaderSize), "VERSION " + std::string(kMcVersion) + "\r\n");
  ASSERT_TRUE(mc::decode_udp_header(body(1), &hd));
  EXPECT_EQ(hd.request_id, 4);
  EXPECT_EQ(body(1).substr(mc::kUdpHeaderSize), "VALUE u 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(stat(&McStats::http_refused), 2u);
}

// ---- binary protocol: a value too large ----

using testing::bin_request;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// memcached 1.6.18's responses (opaque 2, 3, 4).
const std::string kTooLargeHeader = bytes({0x81, 0x01, 0, 0, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0});
const std::string kNotFound = bytes({0x81, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}) + "Not found";
const std::string kNoop = bytes({0x81, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0});

// Over TCP: a 2 MiB body arrives over many reads while it is swallowed.
TEST_F(McEdgesTest, BinaryTooLargeIsAnsweredAndSwallowed) {
  const std::string extras = bytes({0, 0, 0, 7, 0, 0, 0, 0});
  const int fd = connect_tcp();
  ASSERT_GE(fd, 0);
  for (const std::string& value : {value_of(2u << 20), value_of(mc::kMaxValueLen + 1)}) {
    for (mc::BinOp op : {mc::BinOp::kSet, mc::BinOp::kSetQ, mc::BinOp::kAdd, mc::BinOp::kReplace, mc::BinOp::kAppend,
                         mc::BinOp::kPrepend}) {
      const bool append = op == mc::BinOp::kAppend || op == mc::BinOp::kPrepend;
      const bool unlinks = op == mc::BinOp::kSet || op == mc::BinOp::kSetQ;
      ASSERT_TRUE(testing::send_all(fd, bin_request(mc::BinOp::kSet, extras, "bk", "old", 1) +
                                            bin_request(op, append ? "" : extras, "bk", value, 2) +
                                            bin_request(mc::BinOp::kGet, "", "bk", "", 3) +
                                            bin_request(mc::BinOp::kNoop, "", "", "", 4)));
      const std::string set_reply = read_n(fd, 24);
      ASSERT_EQ(set_reply.size(), 24u);
      EXPECT_EQ(load_be16(set_reply.data() + 6), 0);  // stored (its CAS is the index's)
      std::string too_large = kTooLargeHeader + "Too large.";
      too_large[1] = static_cast<char>(op);  // the opcode is echoed, quiet ones included
      EXPECT_EQ(read_n(fd, too_large.size()), too_large) << int(op);
      if (unlinks) {
        EXPECT_EQ(read_n(fd, kNotFound.size()), kNotFound) << int(op);
      } else {
        const std::string hit = read_n(fd, 24 + 4 + 3);  // flags 7, "old"
        EXPECT_EQ(load_be16(hit.data() + 6), 0) << int(op);
        EXPECT_EQ(hit.substr(24), bytes({0, 0, 0, 7}) + "old") << int(op);
      }
      EXPECT_EQ(read_n(fd, kNoop.size()), kNoop) << int(op);
    }
  }
  // A set with a CAS is a set: it unlinks too.
  ASSERT_TRUE(testing::send_all(fd, bin_request(mc::BinOp::kSet, extras, "bk", "old", 1) +
                                        bin_request(mc::BinOp::kSet, extras, "bk", value_of(2u << 20), 2, 12345) +
                                        bin_request(mc::BinOp::kGet, "", "bk", "", 3) +
                                        bin_request(mc::BinOp::kNoop, "", "", "", 4)));
  (void)read_n(fd, 24);
  EXPECT_EQ(read_n(fd, kTooLargeHeader.size() + 10), kTooLargeHeader + "Too large.");
  EXPECT_EQ(read_n(fd, kNotFound.size()), kNotFound);
  EXPECT_EQ(read_n(fd, kNoop.size()), kNoop);
  EXPECT_EQ(stat(&McStats::store_too_large), 13u);
  ::close(fd);
}

// Packets that cannot be framed (or whose value could only be swallowed
// past kMaxSwallow, or a body too large for an opcode that takes no value)
// still end the connection.
TEST_F(McEdgesTest, BinaryUnframeablePacketsClose) {
  std::string out;
  std::size_t swallow = 0;
  bool close = false;
  const std::string extras(8, '\0');
  std::string huge = bin_request(mc::BinOp::kSet, extras, "k", "", 1);
  store_be32(huge.data() + 8, static_cast<uint32_t>(mc::kMaxSwallow + 10));  // body_len
  (void)mc_->process_binary(*cx_, huge, &out, &swallow, &close);
  EXPECT_TRUE(close);
  EXPECT_EQ(out, "");
  std::string get = bin_request(mc::BinOp::kGet, "", "k", "", 1);
  store_be32(get.data() + 8, 2u << 20);
  close = false;
  (void)mc_->process_binary(*cx_, get, &out, &swallow, &close);
  EXPECT_TRUE(close);
  // A too-large set whose value is only partly there: answered, the rest to swallow.
  std::string part = bin_request(mc::BinOp::kSet, extras, "k", "xyz", 2);
  store_be32(part.data() + 8, (2u << 20) + 9);
  close = false;
  out.clear();
  EXPECT_EQ(mc_->process_binary(*cx_, part, &out, &swallow, &close), part.size());
  EXPECT_FALSE(close);
  EXPECT_EQ(swallow, (2u << 20) - 3);
  EXPECT_EQ(out, kTooLargeHeader + "Too large.");
}

}  // namespace
}  // namespace ferrite::server
