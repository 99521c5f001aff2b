// Engine unit tests: behaviour that needs no network (the e2e suite drives
// the engine through a backend).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <string>

#include "index/index.h"
#include "server/engine.h"
#include "tests/util/temp_path.h"

namespace ferrite::server {
namespace {

std::atomic<uint32_t> g_now{2000000};
uint32_t fake_clock() { return g_now.load(); }

class EngineIdleSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unlink(path_.c_str());
    auto p = pmem::Pool::create(path_.str(), 64u << 20, 2u << 20);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    pool_ = std::move(p).value();
    auto i = index::Index::open(*pool_, {.workers = 1, .clock = fake_clock, .background_repair = false});
    ASSERT_TRUE(i.is_ok()) << i.status().to_string();
    idx_ = std::move(i).value();
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

  testing::TempPath path_{"engine_test"};
  std::unique_ptr<pmem::Pool> pool_;
  std::unique_ptr<index::Index> idx_;
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

}  // namespace
}  // namespace ferrite::server
