// A write that lands behind another worker's published-but-unfenced slot.
//
// Worker A inserts X into the last slot of a bucket line and stops between
// its slot CAS and its fence (crash point worker.after_slot_cas). Worker B
// then writes Y, whose probe sequence starts in the same line: it passes A's
// dirty slot, takes the first slot of the next line, fences and acknowledges.
// If the power fails now, A's slot may revert to empty -- and a lookup of Y
// stops at that empty slot (invariant T2) unless B made the slots it passed
// durable before acknowledging. The power-failure simulator (fenced-only
// lines) is exactly that crash. Two layouts, because find() reads the first
// bucket line apart from the rest of the probe (index.cc): X in the line's
// last slot (Y in the next line: B must write A's line back itself), and X
// mid-line (Y in the slot after it: B's own slot write-back carries A's slot,
// the same line, so this case holds even without dirty_passed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

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
std::atomic<bool> g_parked{false};
std::atomic<bool> g_release{false};
std::thread::id g_victim;

void park_hook(const char* name) {
  if (!g_armed.load() || std::strcmp(name, crash::kWorkerAfterSlotCas) != 0) return;
  if (std::this_thread::get_id() != g_victim) return;
  g_armed.store(false);
  g_parked.store(true);
  for (int i = 0; i < 20000 && !g_release.load(); ++i) ::usleep(100);  // bounded: 2 s
}

// `filled` keys before X, all with the same first probe bucket: X takes slot
// `filled` of that line, Y the slot after it (the next line's first slot
// when filled is 7).
void run_case(unsigned filled) {
  g_armed = false;
  g_parked = false;
  g_release = false;
  testing::TempPath pool_path("dirty-prefix"), shadow("dirty-prefix-shadow");
  std::vector<std::string> keys;
  const unsigned target = index::bucket1(hash_key("dp-0"));
  for (int i = 0; keys.size() < filled + 2 && i < 1000000; ++i) {
    std::string k = "dp-" + std::to_string(i);
    if (index::bucket1(hash_key(k)) == target) keys.push_back(k);
  }
  ASSERT_EQ(keys.size(), filled + 2);
  const std::string x = keys[filled], y = keys[filled + 1];
  {
    auto pool = pmem::Pool::create(pool_path.str(), 64u << 20, 2u << 20);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    auto idx = index::Index::open(**pool, {.workers = 2});
    ASSERT_TRUE(idx.is_ok());
    for (unsigned i = 0; i < filled; ++i) {
      const std::string v = "v" + std::to_string(i);  // the op holds a view
      index::Op op = index::Op::set(keys[i], v);
      ASSERT_EQ((*idx)->worker(0).execute_one(op), Result::kOk);
    }
    auto sim = recovery::PowerFailSim::start(**pool, shadow.str());
    ASSERT_TRUE(sim.is_ok()) << sim.status().to_string();
    crash::set_hook(park_hook);

    std::thread a([&] {
      g_victim = std::this_thread::get_id();
      g_armed.store(true);
      index::Op op = index::Op::set(x, "x-value");
      (void)(*idx)->worker(0).execute_one(op);  // parks between its slot CAS and P2
    });
    for (int i = 0; i < 20000 && !g_parked.load(); ++i) ::usleep(100);
    ASSERT_TRUE(g_parked.load()) << "worker A never reached its slot CAS";
    index::Op op = index::Op::set(y, "y-value");
    EXPECT_EQ((*idx)->worker(1).execute_one(op), Result::kOk);  // acknowledged
    (*sim)->power_fail(recovery::PfMode::kFencedOnly, 1);
    g_release.store(true);
    a.join();
    crash::set_hook(nullptr);
    sim->reset();
    (*idx)->TEST_abandon();
  }
  testing::RecoveredPool rec;
  ASSERT_NO_FATAL_FAILURE(testing::reopen_after_power_failure(shadow.str(), recovery::PfMode::kFencedOnly, 1, &rec));
  std::string v;
  index::Op get = index::Op::get(y, &v);
  EXPECT_EQ(rec.idx->worker(0).execute_one(get), Result::kOk) << "the acknowledged write of Y was lost";
  EXPECT_EQ(v, "y-value");
  for (unsigned i = 0; i < filled; ++i) {
    index::Op g = index::Op::get(keys[i], &v);
    EXPECT_EQ(rec.idx->worker(0).execute_one(g), Result::kOk) << keys[i];
  }
}

TEST(DirtyPrefix, AcknowledgedWriteBehindAnotherWorkersUnfencedSlotSurvivesPowerFailure) { run_case(7); }

TEST(DirtyPrefix, AcknowledgedWriteBesideAnotherWorkersUnfencedSlotInOneLineSurvivesPowerFailure) { run_case(3); }

}  // namespace
}  // namespace ferrite
