// A write that meets a segment in the window between its split's retirement
// and the directory switch (split.cc S4: S.state = retired, then the
// transaction that names the successors).
//
// In that window a lookup still reaches S (its directory entry is unchanged,
// A4 in lookup.cc), and every slot of S carries the moved bit. A writer must
// wait there for the switch: if it took the moved bit for a crash's leftover
// and cleared it, its write would land in S, whose contents the successors
// have already copied, and the acknowledged value would be gone once the
// switch is visible. The splitter is held at crash point split.after_retire
// (nothing crashes: the hook waits) while another worker overwrites a key of
// S; the overwrite must not be acknowledged before the switch, and the key
// must read back as the new value after it.
//
// Concurrency: the hook runs on the splitting thread (worker 0's insert);
// the writer is a second thread on worker 1; they meet through atomics, and
// every wait is bounded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "common/crash_point.h"
#include "index/index.h"
#include "pmem/pool.h"
#include "tests/util/temp_path.h"

namespace ferrite {
namespace {

std::atomic<bool> g_armed{false};
std::atomic<bool> g_in_window{false};    // the splitter is held after retire
std::atomic<bool> g_writer_done{false};  // the overwrite returned
std::atomic<bool> g_done_in_window{false};

// Holds the first split that reaches split.after_retire for up to 300 ms,
// or until the writer's overwrite returns (which it must not do while held).
void hold_hook(const char* name) {
  if (std::strcmp(name, crash::kSplitAfterRetire) != 0 || !g_armed.exchange(false)) return;
  g_in_window.store(true);
  for (int i = 0; i < 3000 && !g_writer_done.load(); ++i) ::usleep(100);
  g_done_in_window.store(g_writer_done.load());
  g_in_window.store(false);
}

TEST(SplitRace, OverwriteInTheRetireWindowWaitsForTheSwitchAndSurvivesIt) {
  testing::TempPath pool_path("split-race");
  auto pool = pmem::Pool::create(pool_path.str(), 64u << 20, 2u << 20);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  auto opened = index::Index::open(**pool, {.workers = 2});
  ASSERT_TRUE(opened.is_ok());
  index::Index& idx = **opened;
  // A new index has one segment (depth 0), so the first split is of the
  // segment that holds "victim".
  const std::string victim = "split-race-victim";
  index::Op set_old = index::Op::set(victim, "old");
  ASSERT_EQ(idx.worker(0).execute_one(set_old), Result::kOk);
  ASSERT_EQ(idx.stats().splits, 0u);
  crash::set_hook(hold_hook);
  g_armed.store(true);

  std::thread writer([&] {
    for (int i = 0; i < 50000 && !g_in_window.load(); ++i) ::usleep(100);  // bounded: 5 s
    index::Op set_new = index::Op::set(victim, "new");
    EXPECT_EQ(idx.worker(1).execute_one(set_new), Result::kOk);
    g_writer_done.store(true);
    idx.worker(1).quiesce();
  });
  // Fill the segment until it splits (the hook holds that split).
  for (int i = 0; idx.stats().splits == 0 && i < 100000; ++i) {
    const std::string k = "filler-" + std::to_string(i);
    index::Op op = index::Op::set(k, "f");
    ASSERT_EQ(idx.worker(0).execute_one(op), Result::kOk);
  }
  writer.join();
  crash::set_hook(nullptr);
  ASSERT_GT(idx.stats().splits, 0u);
  ASSERT_TRUE(g_writer_done.load());
  EXPECT_FALSE(g_done_in_window.load())
      << "an overwrite was acknowledged while its segment was retired but still named";
  std::string v;
  index::Op get = index::Op::get(victim, &v);
  ASSERT_EQ(idx.worker(0).execute_one(get), Result::kOk);
  EXPECT_EQ(v, "new") << "the acknowledged overwrite was lost to the split";
}

}  // namespace
}  // namespace ferrite
