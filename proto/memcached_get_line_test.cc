// Unit tests of long get lines (proto/memcached_get_line.cc, issue 17): the
// head parse_request finds in a line with no "\n" in kMaxLineLen bytes (or
// the silent close of any other such line), and parse_get_part reading the
// rest of the line in pieces: whole keys answered, the partial key left,
// "\r\n" split across reads, over-long keys and gat's exptime refused with
// memcached 1.6.18's error strings, the rest of a refused line discarded.
// Pure functions: the engine and TCP side are in
// tests/memcached/mc_long_get_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/memcached.h"

namespace ferrite::proto {
namespace {

std::string keys_line(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += "key" + std::to_string(i) + " ";
  return s;
}

TEST(McLongLine, OtherLinesCloseWithoutAReply) {
  mc::Request r;
  // memcached 1.6.18 closes the connection without a byte on a 128 KiB
  // set line or garbage line (no "\n" in its read buffer).
  for (const std::string& s : {std::string(mc::kMaxLineLen, 'a'), "set " + std::string(mc::kMaxLineLen, 'x'),
                               std::string(101, ' ') + "get " + keys_line(12000), "get\t" + keys_line(12000),
                               "gat " + std::string(mc::kMaxLineLen, '1')}) {
    const mc::ParseResult res = mc::parse_request(s, &r);
    EXPECT_EQ(res.status, mc::Parse::kError);
    EXPECT_TRUE(res.close);
    EXPECT_TRUE(res.quiet);
    EXPECT_TRUE(res.error.empty());
  }
  // Shorter than kMaxLineLen without "\n": wait.
  EXPECT_EQ(mc::parse_request(std::string(mc::kMaxLineLen - 1, 'a'), &r).status, mc::Parse::kNeedMore);
}

TEST(McLongLine, HeadOfALongGet) {
  mc::Request r;
  const std::string keys = keys_line(12000);
  ASSERT_GT(keys.size(), mc::kMaxLineLen);
  mc::ParseResult res = mc::parse_request("  gets " + keys, &r);
  ASSERT_EQ(res.status, mc::Parse::kLongGet);
  EXPECT_EQ(r.cmd, mc::Cmd::kGets);
  EXPECT_EQ(res.consumed, 6u);  // up to the first key's separator
  EXPECT_TRUE(res.error.empty());
  res = mc::parse_request("gat -5 " + keys, &r);
  ASSERT_EQ(res.status, mc::Parse::kLongGet);
  EXPECT_EQ(r.cmd, mc::Cmd::kGat);
  EXPECT_EQ(r.exptime, -5);
  EXPECT_EQ(res.consumed, 6u);
  res = mc::parse_request("gats x1 " + keys, &r);
  ASSERT_EQ(res.status, mc::Parse::kLongGet);
  EXPECT_EQ(res.error, "CLIENT_ERROR invalid exptime argument");  // answered at once, as memcached does
  // memcached's safe_strtol: one sign, a long kept in 32 bits.
  res = mc::parse_request("gat +4294967301 " + keys, &r);
  ASSERT_EQ(res.status, mc::Parse::kLongGet);
  EXPECT_TRUE(res.error.empty());
  EXPECT_EQ(r.exptime, 5);
  res = mc::parse_request(std::string(100, ' ') + "get " + keys, &r);
  EXPECT_EQ(res.status, mc::Parse::kLongGet);
  // A newline within kMaxLineLen: an ordinary line.
  EXPECT_EQ(mc::parse_request("get a\r\n" + keys, &r).status, mc::Parse::kOk);
}

// Feeds `line` (after its head) to parse_get_part in pieces of `step` bytes
// the way a connection does (unconsumed bytes stay at the front); returns
// the keys answered, "|" after each piece, then "END" or the error.
std::string feed(std::string_view line, std::size_t step, mc::GetLine st) {
  std::string in, got;
  std::size_t fed = 0;
  for (int guard = 0; guard < 1000000; ++guard) {
    const mc::GetPart p = mc::parse_get_part(in, &st);
    EXPECT_LE(p.consumed, in.size());
    if (!p.error.empty()) got += std::string(p.error) + "|";
    mc::KeyIter it(p.keys);
    std::string_view k;
    while (it.next(&k)) got += std::string(k) + " ";
    in.erase(0, p.consumed);
    if (p.end) return got + (p.error.empty() && !st.failed ? "END" : "");
    EXPECT_LE(in.size(), mc::kMaxLineLen);  // never more than a window, a key when no error
    if (p.consumed == 0) {
      if (fed == line.size()) return got + "EOF";
      const std::size_t n = std::min(step, line.size() - fed);
      in.append(line.substr(fed, n));
      fed += n;
    }
  }
  ADD_FAILURE() << "no progress";
  return got;
}

TEST(McLongLine, PiecesAnswerWholeKeysAndKeepThePartialOne) {
  const mc::GetLine get{};
  for (std::size_t step : {1u, 2u, 7u, 4096u, 1u << 20}) {
    SCOPED_TRACE(step);
    EXPECT_EQ(feed(" a bb  ccc\r\n", step, get), "a bb ccc END");
    EXPECT_EQ(feed("a\n", step, get), "a END");
    EXPECT_EQ(feed("a b\r", step, get), "a EOF");      // "b\r" waits for its "\n"
    EXPECT_EQ(feed("   \r\n", step, get), "ERROR|");   // memcached: a get without a key
    const std::string k250(250, 'k');
    EXPECT_EQ(feed("a " + k250 + " b\r\n", step, get), "a " + k250 + " b END");
  }
  // A line already holding keys from earlier pieces may end with spaces.
  mc::GetLine seen{};
  seen.keys_seen = true;
  EXPECT_EQ(feed("  \r\n", 3, seen), "END");
}

TEST(McLongLine, OverLongKeyRefusesTheRestOfTheLine) {
  const mc::GetLine get{};
  const std::string k251(251, 'k');
  // In one piece with the end of line: memcached's error alone.
  EXPECT_EQ(feed("a " + k251 + " b\r\nc", 1u << 20, get), "CLIENT_ERROR bad command line format|");
  // Arriving in pieces: the keys of earlier pieces were answered, then the
  // error, and nothing more of the line (no END).
  EXPECT_EQ(feed("a " + k251 + " b\r\n", 3, get), "a CLIENT_ERROR bad command line format|");
  // Still arriving (no separator yet): refused once it passes 250 bytes.
  mc::GetLine st{};
  std::string in = "a " + std::string(300, 'z');
  mc::GetPart p = mc::parse_get_part(in, &st);
  EXPECT_EQ(p.error, "CLIENT_ERROR bad command line format");
  EXPECT_EQ(p.consumed, in.size());
  EXPECT_TRUE(st.failed);
  // Then the line is discarded up to its "\n".
  p = mc::parse_get_part("zz k2 k3", &st);
  EXPECT_EQ(p.consumed, 8u);
  EXPECT_TRUE(p.keys.empty() && p.error.empty() && !p.end);
  p = mc::parse_get_part("k4\r\nversion\r\n", &st);
  EXPECT_EQ(p.consumed, 4u);
  EXPECT_TRUE(p.end && p.error.empty());
}

TEST(McLongLine, GatWithoutAKeyEnds) {
  // memcached 1.6.18: "gat 10 \r\n" answers END ("get \r\n" answers ERROR).
  const mc::GetLine gat{mc::Cmd::kGat, 10, false, false};
  EXPECT_EQ(feed("   \r\n", 2, gat), "END");
  EXPECT_EQ(feed("   a b\r\n", 2, gat), "a b END");
}

TEST(McLongLine, LooksAtMostAWindowAhead) {
  mc::GetLine st{};
  const std::string in = keys_line(30000);  // > 3 windows
  const mc::GetPart p = mc::parse_get_part(in, &st);
  EXPECT_GT(p.consumed, 0u);
  EXPECT_LE(p.consumed, mc::kMaxLineLen);
  EXPECT_EQ(in[p.consumed - 1], ' ');
  EXPECT_FALSE(p.end);
}

}  // namespace
}  // namespace ferrite::proto
