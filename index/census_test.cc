// The item census (index/census.h): items and bytes per size class follow
// every write, delete and expiry sweep; a clean close saves them and a clean
// open reads them back without a scan; a crash, or a census that is not
// usable (another classing, a session that did not count), is answered by a
// repair pass that counts every item again. Expected counts come from a
// model of the keys the test wrote, classed by the test's own rule.
//
// Single-threaded except where a test says otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "index/index.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {

std::atomic<uint32_t> g_now{1000};
uint32_t test_clock() { return g_now.load(); }

SizeClasses classes(uint64_t tag = 7) {
  SizeClasses c;
  c.overhead = 10;
  c.flags_bytes = 4;
  c.bounds = {32, 64, 128, 1024, 4096};
  c.tag = tag;
  return c;
}

class CensusTest : public testing::PoolIndexTest {
 protected:
  CensusTest() : PoolIndexTest("census") {}
  void SetUp() override {
    g_now = 1000;
    ASSERT_NO_FATAL_FAILURE(create_pool());
    open({classes()});
  }
  void open(const SizeClasses& c) {
    ASSERT_NO_FATAL_FAILURE(open_index({.workers = 2, .clock = test_clock, .size_classes = c}));
  }
  // Reopens the pool (cleanly, or like a crash) with these classes and waits
  // for any repair pass.
  void reopen(bool crash, const SizeClasses& c) {
    if (crash) idx_->TEST_abandon();
    ASSERT_NO_FATAL_FAILURE(open_pool());
    ASSERT_NO_FATAL_FAILURE(open(c));
    idx_->wait_repaired();
  }
  Result run(Op op, unsigned w = 0) { return idx_->worker(w).execute_one(op); }
  void set(const std::string& k, std::size_t vlen, uint32_t flags = 0, uint32_t exptime = 0) {
    const std::string value(vlen, 'v');  // alive while op views it
    Op op = Op::set(k, value);
    op.flags = flags;
    op.exptime = exptime;
    ASSERT_EQ(run(op, static_cast<unsigned>(k.size() % 2)), Result::kOk);
    model_[k] = {k.size() + vlen, flags};
  }
  void del(const std::string& k) {
    ASSERT_EQ(run(Op::del(k)), Result::kOk);
    model_.erase(k);
  }
  // What the census should say: the model classed by the test's rule.
  std::vector<ClassCount> expected(const SizeClasses& c) const {
    std::vector<ClassCount> out(c.bounds.size());
    for (const auto& [k, item] : model_) {
      const uint64_t size = c.overhead + item.first + (item.second != 0 ? c.flags_bytes : 0);
      std::size_t i = 0;
      while (i + 1 < c.bounds.size() && c.bounds[i] < size) ++i;
      out[i].items += 1;
      out[i].bytes += size;
    }
    return out;
  }
  void expect_census(const std::string& when) {
    const std::vector<ClassCount> got = idx_->item_census(), want = expected(classes());
    ASSERT_EQ(got.size(), want.size()) << when;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].items, want[i].items) << when << ": class " << i + 1;
      EXPECT_EQ(got[i].bytes, want[i].bytes) << when << ": class " << i + 1;
    }
  }
  void fill() {
    for (int i = 0; i < 300; ++i) set("key" + std::to_string(i), static_cast<std::size_t>(i * 17 % 5000), i % 3 == 0 ? 5u : 0u);
  }

  std::map<std::string, std::pair<uint64_t, uint32_t>> model_;  // key -> (key + value bytes, flags)
};

TEST_F(CensusTest, FollowsSetsOverwritesAppendsAndDeletes) {
  expect_census("empty");
  fill();
  expect_census("after the sets");
  // Overwrites that move keys between classes, and appends.
  for (int i = 0; i < 300; i += 7) set("key" + std::to_string(i), 3, 0);
  for (int i = 1; i < 300; i += 11) {
    const std::string k = "key" + std::to_string(i);
    const std::string tail(100, 'a');  // alive while a views it
    Op a;
    a.code = OpCode::kAppend;
    a.key = k;
    a.value = tail;
    ASSERT_EQ(run(a, 1), Result::kOk);
    model_[k].first += 100;
  }
  expect_census("after overwrites and appends");
  for (int i = 0; i < 300; i += 5) del("key" + std::to_string(i));
  Op again = Op::del("key0");
  EXPECT_EQ(run(again), Result::kNotFound);
  expect_census("after deletes");
}

TEST_F(CensusTest, ExpiredItemsLeaveAtTheSweep) {
  fill();
  for (int i = 0; i < 50; ++i) set("exp" + std::to_string(i), static_cast<std::size_t>(i * 40), 0, 1500);
  expect_census("before expiry");
  g_now = 2000;
  expect_census("expired, not yet swept: still counted (as memcached's items)");
  uint64_t swept = 0;
  for (int i = 0; i < 100 && swept < 50; ++i) swept += idx_->sweep_expired(1u << 20);
  ASSERT_EQ(swept, 50u);
  for (int i = 0; i < 50; ++i) model_.erase("exp" + std::to_string(i));
  expect_census("after the sweep");
}

TEST_F(CensusTest, ACleanCloseSavesItAndACleanOpenReadsItWithoutARepair) {
  fill();
  reopen(/*crash=*/false, classes());
  EXPECT_EQ(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u)
      << "a clean open with a saved census repairs nothing";
  expect_census("after a clean reopen");
  for (int i = 0; i < 300; i += 3) del("key" + std::to_string(i));
  reopen(/*crash=*/false, classes());
  expect_census("after deletes and a second clean reopen");
}

TEST_F(CensusTest, ACrashIsCountedByTheRepair) {
  fill();
  reopen(/*crash=*/false, classes());
  for (int i = 0; i < 300; i += 4) del("key" + std::to_string(i));
  set("late", 2000, 1);
  reopen(/*crash=*/true, classes());
  EXPECT_GT(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u);
  expect_census("after a crash");
  reopen(/*crash=*/false, classes());
  expect_census("after the crash, a clean close and a clean open");
}

TEST_F(CensusTest, AnUnusableCensusIsRecountedByARepairPass) {
  fill();
  // A session that does not count (no classes) closes cleanly: what it
  // saved says nothing, and the next counting open recounts.
  reopen(/*crash=*/false, SizeClasses{});
  EXPECT_TRUE(idx_->item_census().empty());
  for (int i = 0; i < 300; i += 6) del("key" + std::to_string(i));
  reopen(/*crash=*/false, classes());
  EXPECT_GT(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u);
  expect_census("after a session without a census");
  // Another classing (tag) than the one saved: recounted too.
  reopen(/*crash=*/false, classes(/*tag=*/8));
  EXPECT_GT(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u);
  expect_census("after a change of classing");
  // A tool that opened the pool in between (open count moved on).
  idx_.reset();
  ASSERT_NO_FATAL_FAILURE(open_pool());
  ASSERT_NO_FATAL_FAILURE(open_pool());
  ASSERT_NO_FATAL_FAILURE(open(classes(8)));
  idx_->wait_repaired();
  EXPECT_GT(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u);
  expect_census("after another opener");
  // A damaged census (its items no longer add up to the key count saved
  // with it): recounted, not trusted.
  idx_.reset();
  ASSERT_NO_FATAL_FAILURE(open_pool());
  pool_->root()->census.items[2] += 1;
  ASSERT_NO_FATAL_FAILURE(open(classes(8)));
  idx_->wait_repaired();
  EXPECT_GT(idx_->stats().recovery_segments_background + idx_->stats().recovery_segments_lazy, 0u);
  expect_census("after damage to the saved census");
}

TEST_F(CensusTest, EvictionsAndTheCleanersExpiryLeaveIt) {
  // Evict mode, 150% of the pool written, some of it expired: what the
  // cleaner evicts or drops as expired leaves the census; it then equals a
  // count over a scan of what is left.
  SpaceOptions so;
  so.background_cleaner = true;
  so.evict = true;
  so.max_wait_ms = 5000;
  ASSERT_NO_FATAL_FAILURE(
      open_index({.workers = 2, .clock = test_clock, .space = so, .size_classes = classes()}));
  const uint64_t n = 3 * (64u << 20) / 2 / 1100;
  for (uint64_t i = 0; i < n; ++i) {
    const std::string key = "ev" + std::to_string(i), value(1000 + i % 300, 'e');  // alive while op views them
    Op op = Op::set(key, value);
    op.exptime = i % 10 == 0 ? 1500 : 0;
    ASSERT_EQ(run(op, static_cast<unsigned>(i % 2)), Result::kOk) << i;
    if (i == n / 2) g_now = 2000;  // the first half's 10% expire
  }
  idx_->TEST_stop_cleaner();
  ASSERT_GT(idx_->stats().evictions, 0u);
  {
    // The key count and the census agree, expired keys not yet reclaimed
    // included.
    uint64_t items = 0;
    for (const ClassCount& c : idx_->item_census()) items += c.items;
    EXPECT_EQ(items, idx_->count());
  }
  // The sweep takes the expired keys the cleaner did not reach; then the
  // census is what a scan of the live keys says.
  for (int i = 0; i < 4; ++i) (void)idx_->sweep_expired(1u << 22);
  model_.clear();
  ASSERT_TRUE(idx_->scan([&](std::string_view k, std::string_view v, uint32_t flags, uint32_t, uint64_t) {
                   model_[std::string(k)] = {k.size() + v.size(), flags};
                 }).is_ok());
  ASSERT_LT(model_.size(), n);
  expect_census("after evictions and expiry");
}

}  // namespace
}  // namespace ferrite::index
