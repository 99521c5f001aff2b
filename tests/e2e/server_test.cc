// End-to-end over loopback: a real ferrited process, the client library and
// raw datagrams. The shared scenarios (tests/util/scenarios.h) over the
// native protocol and memcached's TCP and UDP ports; batches, retries,
// malformed input, restart durability and the allowlist.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "client/cluster.h"
#include "proto/native.h"
#include "tests/e2e/server_harness.h"
#include "tests/util/scenarios.h"
#include "tests/util/stats.h"

namespace ferrite {
namespace {

using proto::Opcode;
using proto::OpStatus;
using testing::op;
using testing::ServerProcess;

using testing::parse_stats;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start()) << "ferrited did not start (is $FERRITED set?)";
    c_ = server_.client();
    ASSERT_NE(c_, nullptr);
  }
  std::map<std::string, uint64_t> stats() {
    auto s = c_->stats();
    EXPECT_TRUE(s.is_ok());
    return parse_stats(s.is_ok() ? *s : "");
  }
  ServerProcess server_;
  std::unique_ptr<client::Client> c_;
};

// The scenario list (tests/util/scenarios.h), each against its own ferrited:
// the native protocol over kernel UDP, and memcached over TCP and UDP.
class Scenarios : public ::testing::TestWithParam<testing::Scenario> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start()) << "ferrited did not start (is $FERRITED set?)";
  }
  void run(testing::KvTransport& t) { GetParam().run(t, testing::Keys("")); }
  template <typename Wire>
  void run_memcached() {
    Wire wire(htonl(INADDR_LOOPBACK), server_.memcached_port());
    ASSERT_TRUE(wire.ok());
    testing::McTransport t(&wire);
    run(t);
  }
  ServerProcess server_{testing::ServerOptions{.memcached = true}};
};

TEST_P(Scenarios, Native) {
  auto c = server_.client();
  ASSERT_NE(c, nullptr);
  testing::NativeTransport t(c.get());
  run(t);
}

TEST_P(Scenarios, MemcachedTcp) {
  if (GetParam().needs_scan) GTEST_SKIP() << "memcached has no scan";
  run_memcached<testing::McTcpWire>();
}

TEST_P(Scenarios, MemcachedUdp) {
  if (GetParam().needs_scan) GTEST_SKIP() << "memcached has no scan";
  run_memcached<testing::McUdpWire>();
}

INSTANTIATE_TEST_SUITE_P(KernelUdp, Scenarios, ::testing::ValuesIn(testing::scenarios()), testing::scenario_name);

TEST_F(ServerTest, ManyOpsPerDatagram) {
  std::vector<std::string> keys, vals;
  for (int i = 0; i < 40; ++i) {
    keys.push_back("m" + std::to_string(i));
    vals.push_back("v" + std::to_string(i * 7));
  }
  std::vector<proto::RequestOp> sets, gets;
  for (int i = 0; i < 40; ++i) {
    sets.push_back(op(Opcode::kSet, keys[i], vals[i]));
    gets.push_back(op(Opcode::kGet, keys[i]));
  }
  std::vector<client::Reply> r;
  ASSERT_TRUE(c_->execute(sets, &r).is_ok());
  ASSERT_EQ(r.size(), 40u);
  ASSERT_TRUE(c_->execute(gets, &r).is_ok());
  ASSERT_EQ(r.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(r[i].value, vals[i]);
  auto st = stats();
  EXPECT_GT(st["pool_allocated_bytes"], 0u);
  EXPECT_EQ(st["pool_bytes"], 256u << 20);
  EXPECT_GE(st["ops"], 80u);
  EXPECT_LT(st["requests"], 10u) << "40 ops went in one request each way";
}

// Builds one request datagram by hand (for retries and malformed input).
std::vector<uint8_t> raw_request(uint64_t rid, uint64_t cookie, const std::vector<proto::RequestOp>& ops) {
  std::vector<uint8_t> body;
  for (const auto& o : ops) proto::append_request_op(&body, o);
  std::vector<uint8_t> dg(proto::kHeaderSize + body.size());
  proto::Header h;
  h.type = proto::MsgType::kRequest;
  h.request_id = rid;
  h.cookie = cookie;
  h.msg_len = static_cast<uint32_t>(body.size());
  proto::encode_header(h, dg.data());
  std::copy(body.begin(), body.end(), dg.begin() + proto::kHeaderSize);
  return dg;
}

TEST_F(ServerTest, RetriedWriteIsAppliedOnce) {
  ASSERT_TRUE(c_->set("ctr", "10").is_ok());
  auto dg = raw_request(777, c_->cookie(), {op(Opcode::kIncr, "ctr", {}, 5)});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c_->TEST_send_raw(dg).is_ok());
    auto reply = c_->TEST_recv_raw(1000);
    ASSERT_TRUE(reply.is_ok()) << "every copy is answered";
    proto::Header h;
    std::span<const uint8_t> payload;
    ASSERT_EQ(proto::decode_header(*reply, &h, &payload), Result::kOk);
    EXPECT_EQ(h.request_id, 777u);
    proto::ResponseReader rd(payload);
    proto::ResponseOp rop;
    ASSERT_EQ(rd.next(&rop), Result::kOk);
    EXPECT_EQ(rop.value, "15") << "the duplicate's answer is the original's";
  }
  client::Reply r;
  ASSERT_TRUE(c_->get("ctr", &r).is_ok());
  EXPECT_EQ(r.value, "15") << "applied once";
  EXPECT_GE(stats()["duplicates"], 2u);
}

TEST_F(ServerTest, MalformedInputIsCountedAndServerKeepsServing) {
  const uint64_t ck = c_->cookie();
  // 1. shorter than a header: dropped.
  std::vector<uint8_t> tiny = {0x46, 0x45, 1};
  ASSERT_TRUE(c_->TEST_send_raw(tiny).is_ok());
  EXPECT_FALSE(c_->TEST_recv_raw(200).is_ok()) << "no reply to a truncated header";
  // 2. bad magic: dropped.
  auto bad = raw_request(1, ck, {op(Opcode::kGet, "x")});
  bad[0] = 0;
  ASSERT_TRUE(c_->TEST_send_raw(bad).is_ok());
  EXPECT_FALSE(c_->TEST_recv_raw(200).is_ok());
  // 3. header intact, body truncated (value length beyond the datagram): error reply.
  auto trunc = raw_request(2, ck, {op(Opcode::kSet, "x", "value")});
  trunc.resize(trunc.size() - 3);
  ferrite::store_le32(trunc.data() + 8, static_cast<uint32_t>(trunc.size() - proto::kHeaderSize));  // msg_len consistent
  ASSERT_TRUE(c_->TEST_send_raw(trunc).is_ok());
  auto rep = c_->TEST_recv_raw(1000);
  ASSERT_TRUE(rep.is_ok());
  proto::Header h;
  std::span<const uint8_t> pl;
  ASSERT_EQ(proto::decode_header(*rep, &h, &pl), Result::kOk);
  EXPECT_EQ(h.type, proto::MsgType::kError);
  EXPECT_EQ(h.request_id, 2u);
  // 4. unknown opcode: answered with that status, earlier ops executed.
  auto unk = raw_request(3, ck, {op(Opcode::kSet, "u", "1"), op(static_cast<Opcode>(0x7f), "u")});
  ASSERT_TRUE(c_->TEST_send_raw(unk).is_ok());
  rep = c_->TEST_recv_raw(1000);
  ASSERT_TRUE(rep.is_ok());
  ASSERT_EQ(proto::decode_header(*rep, &h, &pl), Result::kOk);
  proto::ResponseReader rd(pl);
  proto::ResponseOp r1, r2;
  ASSERT_EQ(rd.next(&r1), Result::kOk);
  ASSERT_EQ(rd.next(&r2), Result::kOk);
  EXPECT_EQ(r1.status, OpStatus::kOk);
  EXPECT_EQ(r2.status, OpStatus::kUnknownOpcode);
  // 5. oversized key (251 bytes): too_large, counted.
  std::string longkey(251, 'k');
  std::vector<client::Reply> rr;
  ASSERT_TRUE(c_->execute(std::vector<proto::RequestOp>{op(Opcode::kSet, longkey, "v")}, &rr).is_ok());
  ASSERT_EQ(rr.size(), 1u);
  EXPECT_EQ(rr[0].status, OpStatus::kTooLarge);
  // 6. garbage of every length up to 100 bytes: never a crash.
  for (std::size_t n = 0; n < 100; ++n) {
    std::vector<uint8_t> g(n, static_cast<uint8_t>(n * 37));
    (void)c_->TEST_send_raw(g);
  }
  while (c_->TEST_recv_raw(100).is_ok()) {
  }
  auto st = stats();
  EXPECT_GE(st["drop_bad_header"], 2u);
  EXPECT_GE(st["malformed"], 1u);
  EXPECT_GE(st["unknown_opcode"], 1u);
  EXPECT_GE(st["too_large"], 1u);
  ASSERT_TRUE(c_->set("still", "alive").is_ok());
  client::Reply r;
  ASSERT_TRUE(c_->get("still", &r).is_ok());
  EXPECT_EQ(r.value, "alive");
}

TEST_F(ServerTest, UnprovenSourceGetsOnlyACookie) {
  auto dg = raw_request(9, /*cookie=*/12345, {op(Opcode::kSet, "spoof", std::string(100, 'x')), op(Opcode::kGet, "still")});
  ASSERT_TRUE(c_->TEST_send_raw(dg).is_ok());
  auto rep = c_->TEST_recv_raw(1000);
  ASSERT_TRUE(rep.is_ok());
  EXPECT_EQ(rep->size(), proto::kHeaderSize) << "never more bytes than the request";
  proto::Header h;
  std::span<const uint8_t> pl;
  ASSERT_EQ(proto::decode_header(*rep, &h, &pl), Result::kOk);
  EXPECT_EQ(h.type, proto::MsgType::kCookie);
  client::Reply r;
  ASSERT_TRUE(c_->get("spoof", &r).is_ok());
  EXPECT_EQ(r.status, OpStatus::kNotFound) << "nothing was executed";
}

TEST_F(ServerTest, DumpPagesThroughEveryKeyOnce) {
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back("dump-" + std::to_string(i));
  const std::string value(100, 'd');  // ops hold views: the value must outlive them
  for (std::size_t i = 0; i < keys.size(); i += 50) {
    std::vector<proto::RequestOp> sets;
    for (std::size_t j = i; j < i + 50; ++j) sets.push_back(op(Opcode::kSet, keys[j], value));
    std::vector<client::Reply> r;
    ASSERT_TRUE(c_->execute(sets, &r).is_ok());
  }
  ASSERT_EQ(*c_->del("dump-7"), OpStatus::kOk);
  std::map<std::string, int> seen;
  uint64_t cursor = 0, next = 0;
  bool done = false;
  int pages = 0;
  std::string page;
  std::vector<proto::ScanEntry> entries;
  while (!done) {
    ASSERT_TRUE(c_->scan(cursor, &page, &entries, &next, &done).is_ok());
    for (const auto& e : entries) {
      seen[std::string(e.key)]++;
      EXPECT_EQ(e.value, std::string(100, 'd'));
    }
    cursor = next;
    ASSERT_LT(++pages, 1000);
  }
  EXPECT_GT(pages, 3) << "300 KB of data takes several pages";
  EXPECT_EQ(seen.size(), keys.size() - 1);
  EXPECT_EQ(seen.count("dump-7"), 0u);
  for (auto& [k, n] : seen) ASSERT_EQ(n, 1) << k;
}

TEST(ServerRestart, SigtermKeepsEveryAcknowledgedWrite) {
  ServerProcess server;
  ASSERT_TRUE(server.start());
  {
    auto c = server.client();
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(*c->set("r" + std::to_string(i), std::to_string(i * i)), OpStatus::kOk);
    ASSERT_EQ(*c->del("r7"), OpStatus::kOk);
  }
  EXPECT_EQ(server.stop(SIGTERM), 0) << "graceful shutdown exits 0";
  ASSERT_TRUE(server.start());
  auto c = server.client();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 2000; ++i) {
    client::Reply r;
    ASSERT_TRUE(c->get("r" + std::to_string(i), &r).is_ok());
    if (i == 7) {
      EXPECT_EQ(r.status, OpStatus::kNotFound);
    } else {
      ASSERT_EQ(r.value, std::to_string(i * i)) << i;
    }
  }
  EXPECT_EQ(parse_stats(*c->stats())["keys"], 1999u);
}

TEST(ServerRestart, SigkillKeepsEveryAcknowledgedWrite) {
  ServerProcess server;
  ASSERT_TRUE(server.start());
  {
    auto c = server.client();
    ASSERT_NE(c, nullptr);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(*c->set("k" + std::to_string(i), "v" + std::to_string(i)), OpStatus::kOk);
  }
  server.stop(SIGKILL);
  ASSERT_TRUE(server.start());
  auto c = server.client();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 2000; ++i) {
    client::Reply r;
    ASSERT_TRUE(c->get("k" + std::to_string(i), &r).is_ok());
    ASSERT_EQ(r.value, "v" + std::to_string(i)) << i;
  }
}

TEST(ServerConfig, RefusesABadMemcachedPort) {
  ServerProcess server({"--set", "server.memcached_udp_port=70000"});
  EXPECT_FALSE(server.start());
  EXPECT_EQ(server.exit_code(), 2) << "a configuration error exits 2";
}

// memcached protocol (issue 7) in a real ferrited: UDP and TCP on one port
// number, the native protocol beside them, and values (with their flags)
// that survive a restart.
std::string mc_tcp(uint16_t port, const std::string& req) {
  testing::McTcpWire wire(htonl(INADDR_LOOPBACK), port);
  return wire.ok() ? wire.exchange(req, testing::mc_reply::value) : "";
}

TEST(ServerMemcached, UdpTcpAndNativeShareTheStoreAcrossRestarts) {
  ServerProcess server(testing::ServerOptions{.memcached = true});
  ASSERT_TRUE(server.start());
  const uint16_t mport = server.memcached_port();
  EXPECT_EQ(mc_tcp(mport, "set k 42 0 5\r\nhello\r\n"), "STORED\r\n");
  // UDP: frame header (request id 7, seq 0, count 1, reserved 0x0100 as memaslap sends).
  const int u = ::socket(AF_INET, SOCK_DGRAM, 0);
  const sockaddr_in a = testing::loopback_addr(mport);
  const std::string req = std::string("\x00\x07\x00\x00\x00\x01\x01\x00", 8) + "get k\r\n";
  ASSERT_EQ(::sendto(u, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof(a)),
            static_cast<ssize_t>(req.size()));
  timeval tv{5, 0};
  ::setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[2048];
  const ssize_t n = ::recv(u, buf, sizeof(buf), 0);
  ::close(u);
  ASSERT_GT(n, 8);
  EXPECT_EQ(std::string(buf, 8), std::string("\x00\x07\x00\x00\x00\x01\x00\x00", 8));
  EXPECT_EQ(std::string(buf + 8, static_cast<std::size_t>(n - 8)), "VALUE k 42 5\r\nhello\r\nEND\r\n");
  // The native protocol sees the same key.
  auto c = server.client();
  ASSERT_NE(c, nullptr);
  client::Reply r;
  auto st = c->get("k", &r);
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(*st, proto::OpStatus::kOk);
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(r.flags, 42u);
  // After a clean restart the value and its flags are there.
  EXPECT_EQ(server.stop(SIGTERM), 0);
  ASSERT_TRUE(server.start());
  EXPECT_EQ(mc_tcp(mport, "get k\r\n"), "VALUE k 42 5\r\nhello\r\nEND\r\n");
}

TEST(ServerConfig, MaxDatagramSizesReplyDatagrams) {
  ServerProcess server({"--set", "server.max_datagram=9000"});
  ASSERT_TRUE(server.start());
  auto c = server.client();
  ASSERT_NE(c, nullptr);
  const std::string value(20000, 'm');
  ASSERT_EQ(*c->set("big", value), OpStatus::kOk);
  std::vector<uint8_t> body;
  proto::append_request_op(&body, op(Opcode::kGet, "big"));
  std::vector<uint8_t> dg(proto::kHeaderSize + body.size());
  proto::Header h;
  h.request_id = 4242;
  h.cookie = c->cookie();
  h.msg_len = static_cast<uint32_t>(body.size());
  proto::encode_header(h, dg.data());
  std::copy(body.begin(), body.end(), dg.begin() + proto::kHeaderSize);
  ASSERT_TRUE(c->TEST_send_raw(dg).is_ok());
  auto first = c->TEST_recv_raw(1000);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->size(), 9000u) << "reply fragments fill the configured datagram size";
  client::Reply r;
  ASSERT_TRUE(c->get("big", &r).is_ok());
  EXPECT_TRUE(r.value == value);
}

TEST(ServerAllowlist, SourceOutsideAllowlistGetsNoReply) {
  ServerProcess server({"--set", "server.allow=[\"10.0.0.0/8\"]"});
  // start() waits for a hello answer, which must never come: start it by hand.
  EXPECT_FALSE(server.start()) << "a loopback client is outside 10.0.0.0/8: even the hello goes unanswered";
}

TEST(ServerCluster, ThreeServersKetamaSpreadAndReadBack) {
  ServerProcess a, b, c;
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(b.start());
  ASSERT_TRUE(c.start());
  std::vector<std::string> servers;
  for (ServerProcess* s : {&a, &b, &c}) servers.push_back("127.0.0.1:" + std::to_string(s->port()));
  auto cc = client::ClusterClient::connect(servers);
  ASSERT_TRUE(cc.is_ok()) << cc.status().to_string();
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back("cluster-" + std::to_string(i));
  std::vector<proto::RequestOp> sets, gets;
  for (const auto& k : keys) {
    sets.push_back(op(Opcode::kSet, k, k));
    gets.push_back(op(Opcode::kGet, k));
  }
  std::vector<client::Reply> r;
  ASSERT_TRUE((*cc)->execute(sets, &r).is_ok());
  for (const auto& x : r) ASSERT_EQ(x.status, OpStatus::kOk);
  ASSERT_TRUE((*cc)->execute(gets, &r).is_ok());
  for (std::size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(r[i].value, keys[i]);
  // Each server holds its share, and exactly the keys the ring gives it.
  uint64_t total = 0;
  for (std::size_t s = 0; s < 3; ++s) {
    const uint64_t n = parse_stats(*(*cc)->server(s).stats())["keys"];
    EXPECT_GT(n, 500u) << "server " << s;
    total += n;
  }
  EXPECT_EQ(total, keys.size()) << "no key on two servers";
}

}  // namespace
}  // namespace ferrite
