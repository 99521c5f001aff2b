// Engine unit tests: behaviour that needs no network (the e2e suite drives
// the engine through a backend): the idle expiry sweep, fragment reassembly
// under a flood, the stats text. Single-threaded: the tests call on_burst/on_idle for worker 0.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "index/index.h"
#include "proto/native.h"
#include "server/engine.h"
#include "tests/util/pool_fixture.h"
#include "tests/util/stats.h"

namespace ferrite::server {
namespace {

std::atomic<uint32_t> g_now{2000000};
uint32_t fake_clock() { return g_now.load(); }

class EngineIdleSweep : public testing::PoolIndexTest {
 protected:
  EngineIdleSweep() : PoolIndexTest("engine_test") {}
  void SetUp() override {
    create_pool();
    open_index({.workers = 1, .clock = fake_clock, .background_repair = false});
  }
  // n keys expiring 5 s from now, then the clock moves past them.
  void set_expiring(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string key = "k" + std::to_string(i);  // ops hold views: the key must outlive execute
      index::Op op = index::Op::set(key, "v", 0, g_now.load() + 5);
      ASSERT_EQ(idx_->worker(0).execute_one(op), Result::kOk);
    }
    g_now += 6;
  }
};

TEST_F(EngineIdleSweep, IdleWorkerExpiresKeysInSmallSteps) {
  set_expiring(300);
  ASSERT_EQ(idx_->count(), 300u);
  EngineOptions eo;
  eo.idle_sweep_slots = 64;
  eo.idle_sweep_interval = std::chrono::microseconds(0);
  Engine engine(*idx_, eo);
  // Each idle call looks at 64 slots: one call cannot expire them all.
  engine.on_idle(0);
  EXPECT_LT(engine.stats(0).idle_sweep_expired.load(), 300u);
  for (int i = 0; i < 100000 && engine.stats(0).idle_sweep_expired.load() < 300; ++i) engine.on_idle(0);
  EXPECT_EQ(engine.stats(0).idle_sweep_expired.load(), 300u);
  EXPECT_EQ(idx_->count(), 0u);
  EXPECT_GT(engine.stats(0).idle_sweep_steps.load(), 1u);
}

TEST_F(EngineIdleSweep, OffByDefaultTheHousekeepingThreadSweeps) {
  set_expiring(50);
  Engine engine(*idx_, EngineOptions{});
  for (int i = 0; i < 1000; ++i) engine.on_idle(0);
  EXPECT_EQ(engine.stats(0).idle_sweep_steps.load(), 0u);
  EXPECT_EQ(idx_->count(), 50u);
  uint64_t swept = 0;
  for (int i = 0; i < 100 && swept < 50; ++i) swept += idx_->sweep_expired(1 << 16, /*wait=*/false);
  EXPECT_EQ(swept, 50u);
  EXPECT_EQ(idx_->count(), 0u);
}

TEST_F(EngineIdleSweep, StepsAreRateLimited) {
  set_expiring(10);
  EngineOptions eo;
  eo.idle_sweep_slots = 64;
  // Longer than any uptime: the steady clock starts near boot, so "never swept" must not
  // be read as "swept at the clock's zero".
  eo.idle_sweep_interval = std::chrono::hours(24 * 365 * 100);
  Engine engine(*idx_, eo);
  for (int i = 0; i < 1000; ++i) engine.on_idle(0);
  EXPECT_EQ(engine.stats(0).idle_sweep_steps.load(), 1u);  // the first call only
}

// Fragment flood (issue 15, item 8): one source keeps opening fragmented
// messages it never finishes; another source's 100 KB sets must all succeed.
// Before the per-source budget every one of them was refused (0 of 9).
// The stats op's text is the engine's registry rendered: the engine's and
// the index's entries read live, then what the server registers afterwards.
TEST_F(EngineIdleSweep, StatsTextRendersTheRegistryWithLaterEntriesLast) {
  set_expiring(40);
  EngineOptions eo;
  eo.idle_sweep_slots = 64;
  eo.idle_sweep_interval = std::chrono::microseconds(0);
  Engine engine(*idx_, eo);
  engine.stats_registry().gauge("pool_bytes", "registered by the server", [] { return 12345; });
  for (int i = 0; i < 100000 && engine.stats(0).idle_sweep_expired.load() < 40; ++i) engine.on_idle(0);
  const std::string text = engine.stats_text();
  const auto st = testing::parse_stats_text(text);
  EXPECT_EQ(text.rfind("uptime ", 0), 0u) << text;
  EXPECT_EQ(st["workers"], 1u);
  EXPECT_EQ(st["idle_sweep_expired"], 40u);
  EXPECT_EQ(st["idle_sweep_steps"], engine.stats(0).idle_sweep_steps.load());
  EXPECT_EQ(st["keys"], idx_->stats().keys);
  EXPECT_EQ(st.real.count("write_amplification"), 1u);
  EXPECT_NE(text.find("\nworker0_ops 0\n"), std::string::npos);
  EXPECT_TRUE(text.ends_with("\nread_bad_records 0\npool_bytes 12345\n")) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(engine.stats_registry().size()));
}

class EngineFragments : public EngineIdleSweep {
 protected:
  static sockaddr_in peer(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }
  // The datagrams of one request message (fragmented at 1472 bytes).
  static std::vector<std::vector<uint8_t>> request(uint64_t rid, uint64_t cookie, const proto::RequestOp& op) {
    std::vector<uint8_t> body, scratch;
    proto::append_request_op(&body, op);
    proto::Header h;
    h.type = proto::MsgType::kRequest;
    h.request_id = rid;
    h.cookie = cookie;
    std::vector<std::vector<uint8_t>> dgs;
    proto::fragment(h, body, 1472, &scratch, [&](std::span<const uint8_t> d) { dgs.emplace_back(d.begin(), d.end()); });
    return dgs;
  }
};

TEST_F(EngineFragments, FloodingSourceCannotStarveAnother) {
  EngineOptions eo;
  eo.allow.push_back(*parse_cidr("127.0.0.0/8"));
  Engine engine(*idx_, eo);
  const sockaddr_in flooder = peer(40000), honest = peer(40001);
  const std::string value(100 * 1000, 'v');
  // The flooder's messages: the first of two fragments only, never the second.
  uint64_t flood_rid = 1;
  auto flood_one = [&] {
    const std::string junk(2000, 'j');
    return request(flood_rid++, engine.cookie_for(flooder),
                   proto::RequestOp{.opcode = proto::Opcode::kSet, .key = "junk", .value = junk})[0];
  };
  std::vector<std::vector<uint8_t>> wire;  // the bytes the datagrams below point into
  std::vector<net::Datagram> burst;
  net::TxQueue out;
  int honest_ok = 0;
  auto deliver = [&] {
    out.clear();
    engine.on_burst(0, burst, out);
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out.peer(i).sin_port != honest.sin_port) continue;
      proto::Header h;
      std::span<const uint8_t> payload;
      ASSERT_EQ(proto::decode_header(out.bytes(i), &h, &payload), Result::kOk);
      ASSERT_EQ(h.type, proto::MsgType::kResponse);
      proto::ResponseReader rd(payload);
      proto::ResponseOp rop;
      ASSERT_EQ(rd.next(&rop), Result::kOk);
      if (rop.status == proto::OpStatus::kOk) ++honest_ok;
    }
    burst.clear();
    wire.clear();
  };
  auto queue = [&](const sockaddr_in& from, std::vector<uint8_t> dg) {
    wire.push_back(std::move(dg));
    burst.push_back(net::Datagram{from, std::span<const uint8_t>(wire.back())});
    if (burst.size() == 32) deliver();
  };
  wire.reserve(64);  // spans into wire stay valid until deliver()
  // The flooder fills every slot first, as in the issue.
  for (int i = 0; i < 3 * static_cast<int>(eo.max_partial); ++i) queue(flooder, flood_one());
  deliver();
  // Then 9 honest sets, each datagram followed by two new flooding messages.
  for (uint64_t s = 0; s < 9; ++s) {
    const std::string key = "big" + std::to_string(s);
    for (auto& dg : request(1000 + s, engine.cookie_for(honest),
                            proto::RequestOp{.opcode = proto::Opcode::kSet, .key = key, .value = value})) {
      queue(honest, std::move(dg));
      queue(flooder, flood_one());
      queue(flooder, flood_one());
    }
  }
  deliver();
  EXPECT_EQ(honest_ok, 9) << "every honest 100 KB set succeeds while the flood goes on";
  for (int s = 0; s < 9; ++s) {
    const std::string key = "big" + std::to_string(s);
    std::string got;
    index::Op get = index::Op::get(key, &got);
    ASSERT_EQ(idx_->worker(0).execute_one(get), Result::kOk) << key;
    EXPECT_EQ(got, value);
  }
  const EngineStats& st = engine.stats(0);
  EXPECT_GT(st.drop_partial_source_budget.load(), 0u) << "the flooder paid with its own messages";
  EXPECT_EQ(st.drop_partial_oldest.load(), 0u) << "nobody else was evicted";
  EXPECT_EQ(st.drop_partial_evicted.load(), st.drop_partial_source_budget.load());
  EXPECT_NE(engine.stats_text().find("drop_partial_source_budget "), std::string::npos);
}

TEST_F(EngineFragments, IdleExpiryIsCountedAsExpired) {
  EngineOptions eo;
  eo.allow.push_back(*parse_cidr("127.0.0.0/8"));
  Engine engine(*idx_, eo);
  const sockaddr_in from = peer(40002);
  const std::string v(3000, 'x');
  auto dg = request(5, engine.cookie_for(from),
                    proto::RequestOp{.opcode = proto::Opcode::kSet, .key = "k", .value = v})[0];
  net::TxQueue out;
  const net::Datagram d{from, std::span<const uint8_t>(dg)};
  engine.on_burst(0, std::span<const net::Datagram>(&d, 1), out);
  EXPECT_EQ(out.size(), 0u) << "an incomplete message gets no reply";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (engine.stats(0).drop_partial_expired.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    engine.on_idle(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(engine.stats(0).drop_partial_expired.load(), 1u);
  EXPECT_EQ(engine.stats(0).drop_partial_evicted.load(), 1u);
}

}  // namespace
}  // namespace ferrite::server
