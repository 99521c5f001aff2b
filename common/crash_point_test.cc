// common/crash_point.h: the hook installed with set_hook() sees every point
// hit, by name, from any thread; no hook means nothing happens; every named
// point is listed once in kAllPoints. This file is compiled as a test build
// would be (FERRITE_CRASH_POINTS=1), so the macro calls hit().
//
// Thread safety: the hook is installed before the threads start, as the
// header requires; it counts with atomics.
#define FERRITE_CRASH_POINTS 1
#include "common/crash_point.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ferrite::crash {
namespace {

std::atomic<int> g_hits{0};
std::atomic<const char*> g_last{nullptr};

void counting_hook(const char* name) {
  g_last.store(name);
  g_hits.fetch_add(1);
}

class CrashPoint : public ::testing::Test {
 protected:
  void SetUp() override {
    g_hits = 0;
    g_last = nullptr;
  }
  void TearDown() override { set_hook(nullptr); }
};

TEST_F(CrashPoint, HookSeesEveryHitByName) {
  FERRITE_CRASH_POINT(kWorkerAfterSlotCas);  // no hook yet: nothing happens
  EXPECT_EQ(g_hits.load(), 0);
  set_hook(counting_hook);
  FERRITE_CRASH_POINT(kWorkerAfterSlotCas);
  EXPECT_EQ(g_hits.load(), 1);
  EXPECT_STREQ(g_last.load(), "worker.after_slot_cas");
  hit(kCloseBeforeCleanFlag);
  EXPECT_EQ(g_hits.load(), 2);
  EXPECT_STREQ(g_last.load(), kCloseBeforeCleanFlag);
  set_hook(nullptr);
  FERRITE_CRASH_POINT(kSplitAfterPublish);
  EXPECT_EQ(g_hits.load(), 2) << "removing the hook stops the calls";
}

TEST_F(CrashPoint, HitFromManyThreads) {
  set_hook(counting_hook);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([] {
      for (int i = 0; i < 1000; ++i) FERRITE_CRASH_POINT(kCleanerBeforeFree);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(g_hits.load(), 4000);
}

TEST(CrashPointNames, EveryPointIsListedOnceAsComponentDotWhat) {
  std::set<std::string> names;
  for (const char* p : kAllPoints) {
    const std::string n = p;
    EXPECT_TRUE(names.insert(n).second) << "listed twice: " << n;
    const auto dot = n.find('.');
    EXPECT_TRUE(dot != std::string::npos && dot > 0 && dot + 1 < n.size()) << n;
  }
  EXPECT_EQ(names.size(), kNumPoints);
}

}  // namespace
}  // namespace ferrite::crash
