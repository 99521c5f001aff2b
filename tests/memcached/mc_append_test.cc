// Repeated append/prepend on one key over memcached (issue 17, point 5): a
// key grows to the 1 MiB value limit, 1000 bytes at a time, over TCP, in a
// small pool with the background cleaner (each append writes the whole value
// again: the cleaner must take the dead versions back); an append past the
// limit is answered as memcached 1.6.18 answers it (NOT_STORED, NS, binary
// "Not stored."), not as out of memory; sustained appends many times the
// pool, with deletes and overwrites, are never refused. Expected replies are
// memcached 1.6.18's, taken from that server on this machine.
//
// Each test owns its engine and TCP server; the test thread is the client.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "server/memcached/tcp.h"
#include "tests/util/loopback.h"
#include "tests/util/mc_fixture.h"

namespace ferrite::server {
namespace {

constexpr std::size_t kPool = 32u << 20;

class McAppendTest : public testing::McEngineTest {
 protected:
  McAppendTest() : McEngineTest("mcappend") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(create_pool(kPool));
    index::IndexOptions o;
    o.workers = 2;
    o.space.background_cleaner = true;  // as in ferrited
    o.space.max_wait_ms = 5000;         // a loaded test machine: a refusal must mean no room
    ASSERT_NO_FATAL_FAILURE(open_engine(o));
    ASSERT_NO_FATAL_FAILURE(start_tcp(1));
    fd_ = connect_tcp(10);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    McEngineTest::TearDown();
  }
  std::string tcp(std::string_view req, std::string_view end) { return testing::tcp_exchange(fd_, req, end); }
  std::string tcp_get(const std::string& key) { return tcp("get " + key + "\r\n", "END\r\n"); }
  static std::string value_reply(const std::string& key, const std::string& v) {
    return "VALUE " + key + " 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\nEND\r\n";
  }
  static std::string storage(std::string_view cmd, const std::string& key, const std::string& data) {
    return std::string(cmd) + " " + key + " 0 0 " + std::to_string(data.size()) + "\r\n" + data + "\r\n";
  }

  int fd_ = -1;
};

TEST_F(McAppendTest, AppendsToOneKeyOverTcpUpToTheValueLimitAreAllStored) {
  // The case: each append used to work until the value reached the
  // limit, and the one past it was answered "SERVER_ERROR out of memory
  // storing object".
  std::string want = "x";
  ASSERT_EQ(tcp(storage("set", "k", want), "\r\n"), "STORED\r\n");
  int ops = 0;
  for (; want.size() + 1000 <= (1u << 20); ++ops) {
    const std::string piece(1000, static_cast<char>('a' + ops % 26));
    const bool app = ops % 2 == 0;
    ASSERT_EQ(tcp(storage(app ? "append" : "prepend", "k", piece), "\r\n"), "STORED\r\n")
        << "op " << ops << " at " << want.size() << " bytes";
    want = app ? want + piece : piece + want;
    if (ops % 200 == 0) {
      ASSERT_EQ(tcp_get("k"), value_reply("k", want)) << "after op " << ops;
    }
  }
  EXPECT_EQ(ops, 1048);
  EXPECT_EQ(tcp_get("k"), value_reply("k", want));
  // Past the limit: memcached 1.6.18 answers NOT_STORED and keeps the item.
  EXPECT_EQ(tcp(storage("append", "k", std::string(1000, '!')), "\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(tcp(storage("prepend", "k", std::string(1000, '!')), "\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(tcp_get("k"), value_reply("k", want));
  const index::IndexStats st = idx_->stats();
  EXPECT_EQ(st.refused_live_full + st.refused_cleaner_behind, 0u);
  EXPECT_GT(st.bytes_appended, 8 * st.capacity_bytes) << "the pool was not written over";
}

TEST_F(McAppendTest, AnAppendPastTheLimitIsNotStoredInEveryProtocol) {
  // memcached 1.6.18, a 1048000-byte item, 600 bytes more.
  const std::string big(1048000, 'a');
  ASSERT_EQ(run(storage("set", "k", big)), "STORED\r\n");
  const std::string more(600, 'b');
  EXPECT_EQ(run(storage("append", "k", more)), "NOT_STORED\r\n");
  EXPECT_EQ(run(storage("prepend", "k", more)), "NOT_STORED\r\n");
  EXPECT_EQ(run("append k 0 0 600 noreply\r\n" + more + "\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(run("ms k 600 MA\r\n" + more + "\r\n"), "NS\r\n");
  EXPECT_EQ(run("ms k 600 MP c\r\n" + more + "\r\n"), "NS c0\r\n");
  EXPECT_EQ(run("get k\r\n"), value_reply("k", big));
  // Binary append (0x0e) and prepend (0x0f), opaque 0xdeadbeef: status 5.
  for (const char op : {'\x0e', '\x0f'}) {
    std::string req("\x80", 1);
    req += op;
    req += std::string("\x00\x01\x00\x00\x00\x00\x00\x00\x02\x59\xde\xad\xbe\xef", 14);  // key 1, body 601
    req += std::string(8, '\0');  // cas
    req += "k" + more;
    std::string resp("\x81", 1);
    resp += op;
    resp += std::string("\x00\x00\x00\x00\x00\x05\x00\x00\x00\x0b\xde\xad\xbe\xef", 14);
    resp += std::string(8, '\0');
    resp += "Not stored.";
    ASSERT_EQ(req.size(), 24u + 1 + 600);
    // A binary connection: its own TCP connection (the first byte decides).
    const int fd = connect_tcp(10);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(testing::tcp_exchange(fd, req, "Not stored."), resp) << "opcode " << static_cast<int>(op);
    ::close(fd);
  }
}

TEST_F(McAppendTest, SustainedAppendsManyTimesThePoolAreNeverRefused) {
  // Rounds of: a short value, grown to ~1 MiB 16 KiB at a time (each append
  // writes the whole value: ~33 MB a round), then deleted or overwritten.
  // Live data stays below 1 MiB; what is appended is many times the pool.
  const std::string piece(16384, 'p');
  for (int round = 0; round < 10; ++round) {
    std::string want = "r" + std::to_string(round);
    ASSERT_EQ(tcp(storage("set", "s", want), "\r\n"), "STORED\r\n");
    for (int i = 0; want.size() + piece.size() <= (1u << 20); ++i) {
      ASSERT_EQ(tcp(storage(i % 3 == 0 ? "prepend" : "append", "s", piece), "\r\n"), "STORED\r\n")
          << "round " << round << " op " << i;
      want = i % 3 == 0 ? piece + want : want + piece;
    }
    ASSERT_EQ(tcp_get("s"), value_reply("s", want)) << "round " << round;
    if (round % 2 == 0) {
      ASSERT_EQ(tcp("delete s\r\n", "\r\n"), "DELETED\r\n");
    } else {
      ASSERT_EQ(tcp(storage("set", "s", "short"), "\r\n"), "STORED\r\n");
    }
  }
  EXPECT_EQ(tcp_get("s"), value_reply("s", "short"));
  const index::IndexStats st = idx_->stats();
  EXPECT_EQ(st.refused_live_full + st.refused_cleaner_behind, 0u);
  EXPECT_GT(st.bytes_appended, 8 * st.capacity_bytes) << "the pool was not written over many times";
  EXPECT_GT(st.cleaner_segments_freed, 8 * st.capacity_bytes / (2u << 20)) << "space was not reclaimed";
}

}  // namespace
}  // namespace ferrite::server
