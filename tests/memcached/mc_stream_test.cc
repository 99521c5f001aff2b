// McEngine::process() under an output bound (server/memcached/stream.h, issue 15
// item 5): a get-family request is answered in chunks, paused at the bound
// and resumed by the next call, with the same bytes as an unbounded run and
// pipelined requests after it answered only once it is done; over UDP a
// reply past udp_max_reply (or a request whose reply was stopped) is
// answered "SERVER_ERROR reply too large for UDP" and counted.
//
// Single-threaded: one context per test.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "proto/memcached.h"
#include "server/memcached/udp.h"
#include "tests/util/mc_fixture.h"

namespace ferrite::server {
namespace {

namespace mc = proto::mc;

class McStreamTest : public testing::McEngineTest {
 protected:
  McStreamTest() : McEngineTest("mcstream") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(create_pool(96u << 20));
    McOptions mo;
    mo.udp_max_reply = 64u << 10;
    ASSERT_NO_FATAL_FAILURE(open_engine({.workers = 3}, mo));
  }
  std::string unbounded(std::string_view in) {
    std::string out;
    std::size_t swallow = 0;
    bool close = false;
    EXPECT_EQ(mc_->process(*cx_, in, &out, &swallow, &close), in.size());
    return out;
  }
  // Feeds in with a bound of `limit` unsent bytes, draining the output after
  // every call (what the TCP server does once the socket took it). Returns
  // everything produced; *calls: process() calls, *largest: the most output
  // one call produced.
  std::string bounded(std::string_view in, std::size_t limit, int* calls, std::size_t* largest) {
    McStream s;
    std::string all, out;
    std::size_t done = 0;
    *calls = 0;
    *largest = 0;
    for (int i = 0; i < 10000 && (done < in.size() || s.paused); ++i) {
      out.clear();
      s.out_limit = limit;
      std::size_t swallow = 0;
      bool close = false;
      done += mc_->process(*cx_, in.substr(done), &out, &swallow, &close, &s);
      ++*calls;
      *largest = std::max(*largest, out.size());
      all += out;
    }
    EXPECT_FALSE(s.paused);
    return all;
  }
  void set_values(int n, std::size_t size) {
    for (int i = 0; i < n; ++i) {
      const std::string k = "k" + std::to_string(i);
      ASSERT_EQ(unbounded("set " + k + " 7 0 " + std::to_string(size) + "\r\n" + std::string(size, 'a' + i % 26) + "\r\n"),
                "STORED\r\n");
    }
  }
};

TEST_F(McStreamTest, AManyKeyGetIsPausedAtTheBoundAndResumedWithTheSameBytes) {
  constexpr std::size_t kValue = 100u << 10;
  set_values(40, kValue);
  std::string keys;
  for (int i = 0; i < 40; ++i) keys += " k" + std::to_string(i) + " nope" + std::to_string(i);
  const std::string in = "get" + keys + "\r\nget k3\r\nset k3 0 0 1\r\nz\r\nget k3" + keys + "\r\n";
  const std::string expect = unbounded(in);
  ASSERT_EQ(unbounded("set k3 7 0 " + std::to_string(kValue) + "\r\n" + std::string(kValue, 'd') + "\r\n"), "STORED\r\n");
  int calls = 0;
  std::size_t largest = 0;
  const std::string got = bounded(in, 256u << 10, &calls, &largest);
  EXPECT_EQ(got.size(), expect.size());
  EXPECT_TRUE(got == expect);  // the pipelined set ran after the whole first get, before the last
  // 80 keys per get, 8 per chunk, each chunk past the 256 KiB bound: a pause
  // after every chunk but the last.
  EXPECT_GE(calls, 19);
  EXPECT_LE(largest, (256u << 10) + kGetChunkKeys * (kValue + 64));
  EXPECT_EQ(mc_->sum(&McStats::get_chunks_paused), 9u + 10u);  // 80 keys, then k3 and 80 keys
  EXPECT_EQ(mc_->sum(&McStats::get_hits), 2u * (40 + 1 + 41));
}

TEST_F(McStreamTest, GatTouchesEveryKeyAcrossPauses) {
  set_values(30, 50u << 10);
  std::string in = "gat 1000";
  for (int i = 0; i < 30; ++i) in += " k" + std::to_string(i);
  in += "\r\n";
  int calls = 0;
  std::size_t largest = 0;
  const std::string got = bounded(in, 100u << 10, &calls, &largest);
  EXPECT_GE(calls, 3);
  EXPECT_TRUE(std::string_view(got).ends_with("\r\nEND\r\n"));
  std::size_t values = 0;
  for (std::size_t at = got.find("VALUE "); at != std::string::npos; at = got.find("VALUE ", at + 1)) ++values;
  EXPECT_EQ(values, 30u);
  EXPECT_EQ(mc_->sum(&McStats::touch_hits), 30u);
  // Every key got the expiry (a TTL near 1000 s).
  const std::string md = unbounded("mg k29 t\r\n");
  ASSERT_TRUE(md.starts_with("HD t")) << md;
  EXPECT_GT(std::stoi(md.substr(4)), 990);
}

TEST_F(McStreamTest, ANonResumableStreamStopsAndSaysSo) {
  set_values(3, 40u << 10);
  McStream s;
  s.out_limit = 64u << 10;
  s.resumable = false;
  std::string out;
  std::size_t swallow = 0;
  bool close = false;
  const std::string in = "get k0\r\nget k1\r\nget k2\r\n";
  const std::size_t used = mc_->process(*cx_, in, &out, &swallow, &close, &s);
  EXPECT_TRUE(s.too_large);
  EXPECT_FALSE(s.paused);
  EXPECT_LT(used, in.size());
  EXPECT_LE(out.size(), (64u << 10) + (40u << 10) + 64);
}

std::vector<uint8_t> udp_request(uint16_t rid, std::string_view body) {
  std::vector<uint8_t> d(8 + body.size());
  mc::encode_udp_header({rid, 0, 1, 0}, d.data());
  std::memcpy(d.data() + 8, body.data(), body.size());
  return d;
}

TEST_F(McStreamTest, UdpRepliesPastTheLimitAreAnErrorAndCounted) {
  set_values(3, 40u << 10);  // udp_max_reply is 64 KiB here
  McUdpHandler h(*mc_, 1, 1);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(0x7f000001);
  peer.sin_port = htons(5557);
  std::vector<std::vector<uint8_t>> dgs;
  dgs.push_back(udp_request(1, "get k0 k1 k2\r\n"));      // staged: 120 KiB in one reply
  dgs.push_back(udp_request(2, "get k0\r\nget k1\r\n"));  // pipelined, not staged
  dgs.push_back(udp_request(3, "get k0\r\n"));            // fits
  std::string many = "get";
  for (int i = 0; i < 100; ++i) many += " k1";             // over kMaxStagedKeys: chunked, stopped
  dgs.push_back(udp_request(4, many + "\r\n"));
  std::vector<net::Datagram> in;
  for (const auto& d : dgs) in.push_back({peer, d});
  net::TxQueue out;
  h.on_burst(0, in, out);
  std::vector<std::string> first_of;  // the first datagram's body per request id
  first_of.resize(5);
  std::size_t of3 = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::string_view d(reinterpret_cast<const char*>(out.bytes(i).data()), out.bytes(i).size());
    mc::UdpHeader hd;
    ASSERT_TRUE(mc::decode_udp_header(d, &hd));
    ASSERT_GE(hd.request_id, 1);
    ASSERT_LE(hd.request_id, 4);
    if (hd.seq == 0) first_of[hd.request_id] = std::string(d.substr(8));
    if (hd.request_id == 3) ++of3;
  }
  const std::string err = "SERVER_ERROR reply too large for UDP\r\n";
  EXPECT_EQ(first_of[1], err);
  EXPECT_EQ(first_of[2], err);
  EXPECT_TRUE(first_of[3].starts_with("VALUE k0 7 40960\r\n"));
  EXPECT_EQ(of3, ((40u << 10) + 30 + 1399) / 1400);
  EXPECT_EQ(first_of[4], err);
  EXPECT_EQ(mc_->sum(&McStats::udp_reply_too_large), 3u);
  EXPECT_NE(mc_->stats_lines().find("STAT ferrite_udp_reply_too_large 3\r\n"), std::string::npos);
}

}  // namespace
}  // namespace ferrite::server
