// Splits racing writers and readers, held at their crash points (nothing
// crashes in the first test: the hook waits).
//
// RetireWindow: a write that meets a segment between its split's
// retirement and the directory switch (split.cc S4: S.state = retired, then
// the transaction that names the successors). In that window a lookup still
// reaches S (its directory entry is unchanged, A4 in lookup.cc), and every
// slot of S carries the moved bit. A writer must wait there for the switch:
// if it took the moved bit for a crash's leftover and cleared it, its write
// would land in S, whose contents the successors have already copied, and
// the acknowledged value would be gone once the switch is visible.
//
// PowerFailure: a reader that reaches an entry through a successor whose
// switch is not yet committed. The successor holds the entry clean (split
// S3 clears transient bits), so the reader answers without writing anything
// back; if the power fails before the commit, the transaction rolls the
// directory back to S, and the entry must be durable there although its
// writer never fenced it (split P3 writes back S's lines that held a dirty
// slot). The power-failure simulator (recovery/pfsim.h, fenced lines only)
// is that crash.
//
// PowerFailureBeforeTheSwitchCommits...Write: a writer that reaches its key
// through a successor whose switch is visible but not committed. If it
// wrote there and answered, a power failure before the commit would roll
// the directory back to S, which does not hold the write: an acknowledged
// write lost. Successors stay frozen until the switch is durable (split.cc
// S5), so the writer waits instead.
//
// Concurrency: the hooks run on the splitting and writing threads, the test
// thread drives; they meet through atomics, and every wait is bounded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "common/crash_point.h"
#include "common/hash.h"
#include "index/index.h"
#include "index/table.h"
#include "pmem/pool.h"
#include "recovery/pfsim.h"
#include "tests/util/power_fail.h"
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

TEST(SplitRace, RetireWindowOverwriteWaitsForTheSwitchAndSurvivesIt) {
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

  std::atomic<bool> never_held{false};
  std::thread writer([&] {
    for (int i = 0; i < 50000 && !g_in_window.load(); ++i) ::usleep(100);  // bounded: 5 s
    if (!g_in_window.load()) {
      never_held.store(true);
      return;
    }
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
  ASSERT_FALSE(never_held.load()) << "no split reached split.after_retire";
  ASSERT_FALSE(g_armed.load());
  ASSERT_TRUE(g_writer_done.load());
  EXPECT_FALSE(g_done_in_window.load())
      << "an overwrite was acknowledged while its segment was retired but still named";
  std::string v;
  index::Op get = index::Op::get(victim, &v);
  ASSERT_EQ(idx.worker(0).execute_one(get), Result::kOk);
  EXPECT_EQ(v, "new") << "the acknowledged overwrite was lost to the split";
}

std::atomic<bool> g_pf_armed{false};
std::atomic<std::thread::id> g_writer_id{}, g_splitter_id{};
std::atomic<bool> g_writer_parked{false}, g_split_parked{false}, g_pf_release{false};

// Parks the writer between its slot CAS and its fence (the slot stays
// dirty), and the splitter inside its publish transaction (entries
// switched, not committed), each once, until released (bounded: 5 s).
void park_hook(const char* name) {
  if (!g_pf_armed.load()) return;
  const std::thread::id me = std::this_thread::get_id();
  std::atomic<bool>* parked = nullptr;
  if (std::strcmp(name, crash::kWorkerAfterSlotCas) == 0 && me == g_writer_id.load()) parked = &g_writer_parked;
  if (std::strcmp(name, crash::kSplitPublishInTx) == 0 && me == g_splitter_id.load()) parked = &g_split_parked;
  if (parked == nullptr || parked->exchange(true)) return;
  for (int i = 0; i < 50000 && !g_pf_release.load(); ++i) ::usleep(100);
}

bool wait_for(const std::atomic<bool>& flag) {
  for (int i = 0; i < 50000 && !flag.load(); ++i) ::usleep(100);  // bounded: 5 s
  return flag.load();
}

TEST(SplitRace, PowerFailureBeforeTheSwitchCommitsKeepsWhatAReaderSawThroughASuccessor) {
  testing::TempPath pool_path("split-race-pf"), shadow("split-race-pf-shadow");
  const std::string x = "split-race-x";
  // A fresh index has one segment, so X takes the first slot of its first
  // bucket. Fillers never probe that bucket: one that passed X's dirty slot
  // would write X's line back itself (the reader rule of slot.h) and the
  // test would show nothing.
  const unsigned bx = index::bucket1(hash_key(x));
  auto probes_bx = [bx](uint64_t h) {
    const unsigned b1 = index::bucket1(h), b2 = index::bucket2(h), m = index::kBucketsPerSegment - 1;
    return b1 == bx || ((b1 + 1) & m) == bx || b2 == bx || ((b2 + 1) & m) == bx;
  };
  {
    auto pool = pmem::Pool::create(pool_path.str(), 64u << 20, 2u << 20);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    auto opened = index::Index::open(**pool, {.workers = 3});
    ASSERT_TRUE(opened.is_ok());
    index::Index& idx = **opened;
    auto sim = recovery::PowerFailSim::start(**pool, shadow.str());
    ASSERT_TRUE(sim.is_ok()) << sim.status().to_string();
    crash::set_hook(park_hook);
    g_pf_armed.store(true);

    std::thread writer([&] {
      g_writer_id.store(std::this_thread::get_id());
      index::Op op = index::Op::set(x, "x-value");
      (void)idx.worker(0).execute_one(op);  // parks with X's slot dirty
    });
    ASSERT_TRUE(wait_for(g_writer_parked)) << "the writer never reached its slot CAS";
    std::thread splitter([&] {
      g_splitter_id.store(std::this_thread::get_id());
      for (int i = 0; idx.stats().splits == 0 && i < 100000; ++i) {
        const std::string k = "filler-" + std::to_string(i);
        if (probes_bx(hash_key(k))) continue;
        index::Op op = index::Op::set(k, "f");
        if (idx.worker(1).execute_one(op) != Result::kOk) break;
      }
    });
    const bool split_parked = wait_for(g_split_parked);
    std::string seen;
    Result r = Result::kNotFound;
    if (split_parked) {
      index::Op get = index::Op::get(x, &seen);  // through a successor: the switch is visible
      r = idx.worker(2).execute_one(get);
    }
    (*sim)->power_fail(recovery::PfMode::kFencedOnly, 1);
    g_pf_release.store(true);
    writer.join();
    splitter.join();
    crash::set_hook(nullptr);
    g_pf_armed.store(false);
    sim->reset();
    idx.TEST_abandon();
    ASSERT_TRUE(split_parked) << "no split reached split.publish.in_tx";
    ASSERT_EQ(r, Result::kOk) << "the reader did not find X through the successor";
    ASSERT_EQ(seen, "x-value");
  }
  testing::RecoveredPool rec;
  ASSERT_NO_FATAL_FAILURE(testing::reopen_after_power_failure(shadow.str(), recovery::PfMode::kFencedOnly, 1, &rec));
  std::string v;
  index::Op get = index::Op::get(x, &v);
  EXPECT_EQ(rec.idx->worker(0).execute_one(get), Result::kOk)
      << "a value a reader answered was lost to the power failure";
  EXPECT_EQ(v, "x-value");
}

TEST(SplitRace, PowerFailureBeforeTheSwitchCommitsLosesNoWriteAcknowledgedThroughASuccessor) {
  testing::TempPath pool_path("split-race-pfw"), shadow("split-race-pfw-shadow");
  const std::string x = "split-race-w";
  std::atomic<bool> acked{false};     // the overwrite returned kOk
  bool acked_before_failure = false;  // ... before the power failed
  {
    auto pool = pmem::Pool::create(pool_path.str(), 64u << 20, 2u << 20);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    auto opened = index::Index::open(**pool, {.workers = 2});
    ASSERT_TRUE(opened.is_ok());
    index::Index& idx = **opened;
    index::Op set_old = index::Op::set(x, "old");
    ASSERT_EQ(idx.worker(0).execute_one(set_old), Result::kOk);  // fenced: durable
    auto sim = recovery::PowerFailSim::start(**pool, shadow.str());
    ASSERT_TRUE(sim.is_ok()) << sim.status().to_string();
    g_writer_id.store(std::thread::id{});  // the writer is not parked here
    g_split_parked.store(false);
    g_pf_release.store(false);
    crash::set_hook(park_hook);
    g_pf_armed.store(true);
    std::thread splitter([&] {
      g_splitter_id.store(std::this_thread::get_id());
      for (int i = 0; idx.stats().splits == 0 && i < 100000; ++i) {
        const std::string k = "filler-" + std::to_string(i);  // the op holds a view
        index::Op op = index::Op::set(k, "f");
        if (idx.worker(0).execute_one(op) != Result::kOk) break;
      }
    });
    const bool split_parked = wait_for(g_split_parked);  // X's entries switched, not committed
    std::thread writer;
    if (split_parked) {
      writer = std::thread([&] {
        index::Op set_new = index::Op::set(x, "new");
        if (idx.worker(1).execute_one(set_new) == Result::kOk) acked.store(true);
        idx.worker(1).quiesce();
      });
      // Long enough for an unhindered overwrite (microseconds) to return.
      for (int i = 0; i < 2000 && !acked.load(); ++i) ::usleep(100);  // bounded: 200 ms
    }
    acked_before_failure = acked.load();
    (*sim)->power_fail(recovery::PfMode::kFencedOnly, 1);
    g_pf_release.store(true);
    splitter.join();
    if (writer.joinable()) writer.join();
    crash::set_hook(nullptr);
    g_pf_armed.store(false);
    sim->reset();
    idx.TEST_abandon();
    ASSERT_TRUE(split_parked) << "no split reached split.publish.in_tx";
    EXPECT_TRUE(acked.load()) << "the overwrite never returned once the split went on";
  }
  EXPECT_FALSE(acked_before_failure)
      << "an overwrite was acknowledged through a successor whose switch was not committed";
  testing::RecoveredPool rec;
  ASSERT_NO_FATAL_FAILURE(testing::reopen_after_power_failure(shadow.str(), recovery::PfMode::kFencedOnly, 1, &rec));
  std::string v;
  index::Op get = index::Op::get(x, &v);
  ASSERT_EQ(rec.idx->worker(0).execute_one(get), Result::kOk);
  if (acked_before_failure) {
    EXPECT_EQ(v, "new") << "an acknowledged overwrite was lost to the power failure";
  } else {
    EXPECT_TRUE(v == "old" || v == "new") << v;
  }
}

}  // namespace
}  // namespace ferrite
