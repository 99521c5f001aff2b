// PartialTable unit tests: the eviction rules E1-E3 of server/reassembly.h.
// Single-threaded, as the table is.
#include "server/reassembly.h"

#include <gtest/gtest.h>

namespace ferrite::server {
namespace {

using Clock = PartialTable::Clock;

TEST(PartialTable, BudgetIsAnEighthOfTheSlotsAndAtLeastTwo) {
  EXPECT_EQ(PartialTable(64).per_source(), 8u);
  EXPECT_EQ(PartialTable(8).per_source(), 2u);
  EXPECT_EQ(PartialTable(1).per_source(), 1u);
  EXPECT_EQ(PartialTable(0).max_partial(), 1u) << "a table always has a slot";
}

TEST(PartialTable, SourceAtItsBudgetEvictsItsOwnOldest) {
  PartialTable t(64);
  PartialEvictions ev;
  const Clock::time_point t0 = Clock::now();
  t.find_or_open_st({2, 1}, t0, &ev);  // another source, opened first (the oldest of all)
  for (uint64_t rid = 0; rid < 20; ++rid) t.find_or_open_st({1, rid}, t0 + std::chrono::milliseconds(rid + 1), &ev);
  EXPECT_EQ(t.held_by(1), 8u);
  EXPECT_EQ(ev.source_budget, 12u);
  EXPECT_EQ(ev.oldest, 0u);
  for (uint64_t rid = 0; rid < 12; ++rid) EXPECT_FALSE(t.contains({1, rid})) << rid;
  for (uint64_t rid = 12; rid < 20; ++rid) EXPECT_TRUE(t.contains({1, rid})) << "the newest stay: " << rid;
  EXPECT_TRUE(t.contains({2, 1})) << "the flooding source paid, not the older message of another";
  EXPECT_EQ(t.size(), 9u);
}

TEST(PartialTable, FullTableEvictsTheOldestOfAll) {
  PartialTable t(16);  // budget 2
  PartialEvictions ev;
  const Clock::time_point t0 = Clock::now();
  for (uint64_t s = 0; s < 16; ++s) t.find_or_open_st({s, 7}, t0 + std::chrono::milliseconds(s), &ev);
  ASSERT_EQ(t.size(), 16u);
  t.find_or_open_st({100, 7}, t0 + std::chrono::milliseconds(20), &ev);
  EXPECT_EQ(ev.oldest, 1u);
  EXPECT_EQ(ev.source_budget, 0u);
  EXPECT_FALSE(t.contains({0, 7}));
  EXPECT_TRUE(t.contains({1, 7}));
  EXPECT_TRUE(t.contains({100, 7})) << "a new message always gets a slot";
  EXPECT_EQ(t.size(), 16u);
  EXPECT_EQ(t.held_by(0), 0u);
}

TEST(PartialTable, FindingAnOpenMessageEvictsNothing) {
  PartialTable t(8);
  PartialEvictions ev;
  const Clock::time_point t0 = Clock::now();
  proto::Reassembly& a = t.find_or_open_st({1, 1}, t0, &ev);
  t.find_or_open_st({1, 2}, t0, &ev);
  EXPECT_EQ(&t.find_or_open_st({1, 1}, t0, &ev), &a);
  EXPECT_EQ(ev.source_budget + ev.oldest, 0u);
  t.erase_st({1, 1});
  t.erase_st({1, 1});  // absent: no-op
  EXPECT_EQ(t.held_by(1), 1u);
}

TEST(PartialTable, ExpireDropsOnlyMessagesOlderThanTheAge) {
  PartialTable t(64);
  PartialEvictions ev;
  const Clock::time_point t0 = Clock::now();
  for (uint64_t i = 0; i < 5; ++i) t.find_or_open_st({i, 0}, t0 + std::chrono::milliseconds(100 * i), &ev);
  EXPECT_EQ(t.expire_st(t0 + std::chrono::milliseconds(1250), std::chrono::seconds(1), &ev), 3u);
  EXPECT_EQ(ev.expired, 3u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.contains({3, 0}));
  EXPECT_EQ(t.held_by(0), 0u);
}

}  // namespace
}  // namespace ferrite::server
