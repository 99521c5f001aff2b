// Litmus test of Qsbr's online() barrier (F1, qsbr.h): a worker that comes
// online and then loads a pointer must never be handed memory a concurrent
// reclaim() has already freed.
//
// The race F1 closes is x86's store buffer (and the C++ model's store-load
// reordering): the "online" store waits in the reader's store buffer while
// its next load (the pointer) is already performed, so a reclaimer can
// unlink the object, retire it, read the reader's slot as still offline and
// free the object the reader is about to use. The reader here widens that
// window the way a busy worker would: before going online it writes a few
// cache lines the reclaimer owns, so its "online" store queues behind
// ownership misses while its load of the pointer does not wait.
//
// Two threads, one round at a time (a spin barrier): the reclaimer swaps
// the shared pointer to a fresh object, retires the old one (its "free"
// marks it dead) and reclaims; the reader comes online, loads the pointer,
// lingers, checks the object is not dead, goes offline. A dead object seen
// by the reader is a use after free. With online() (F1) none may occur;
// FERRITE_QSBR_LITMUS_OLD=1 runs the same rounds with the release store
// online() was before F1 and expects at least one (it is the proof that this
// test can fail; timing dependent, so not part of the suite).
//
// At the end, death tests of Qsbr's debug-build checks (qsbr.h, Q1-Q4).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/cacheline.h"
#include "index/qsbr.h"

namespace ferrite::index {
namespace {

struct alignas(kCacheLine) Obj {
  std::atomic<int> alive{1};
};

struct alignas(kCacheLine) Line {
  std::atomic<uint64_t> v{0};
};

struct Outcome {
  uint64_t rounds = 0;
  uint64_t stale_pointer = 0;  // the reader loaded the object being retired
  uint64_t use_after_free = 0;  // ... and found it freed under it
};

void pause_for(int n) {
  for (int i = 0; i < n; ++i) __builtin_ia32_pause();
}

void spin_for(uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) __asm__ volatile("" ::: "memory");
}

Outcome run_litmus(bool fenced, std::chrono::milliseconds budget, uint64_t max_rounds) {
  Qsbr q(1);  // slot 0: the reader
  std::array<Obj, 2> objs;
  std::atomic<Obj*> shared{&objs[0]};
  std::array<Line, 8> contended;  // written by both threads every round
  std::atomic<uint64_t> go{0}, reader_done{0}, reclaimer_done{0};
  std::atomic<bool> reader_was_early{false};  // it loaded the object being retired
  std::atomic<bool> stop{false};
  Outcome out;

  std::thread reader([&] {
    for (uint64_t r = 1;; ++r) {
      for (int spins = 0; go.load(std::memory_order_acquire) < r; ++spins) {
        if (stop.load(std::memory_order_relaxed)) return;
        if (spins > (1 << 18)) std::this_thread::yield();
      }
      for (Line& l : contended) l.v.store(r, std::memory_order_relaxed);  // queue misses ahead of the online store
      if (fenced) {
        q.online(0);
      } else {
        q.TEST_online_without_fence(0);
      }
      Obj* o = shared.load(std::memory_order_acquire);
      pause_for(200);  // the burst uses what it found
      const bool early = o == &objs[(r - 1) & 1];  // the object this round's reclaimer retires
      reader_was_early.store(early, std::memory_order_relaxed);
      if (early) {
        ++out.stale_pointer;
        if (o->alive.load(std::memory_order_acquire) == 0) ++out.use_after_free;
      }
      q.offline(0);
      reader_done.store(r, std::memory_order_release);
    }
  });

  // The reclaimer's delay between "go" and the unlink follows a staircase:
  // longer after a round the reader lost (it loaded the new object), shorter
  // after one it won; so the unlink keeps landing where the reader loads the
  // pointer, which is where the race is, whatever this machine's timing.
  uint64_t delay = 0;
  // Runs for the budget, and on (up to 4x) until the reader has held the
  // retired object in 1000 rounds: a busy machine that rarely runs both
  // threads at once gets more time before the test calls the window unvisited.
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + budget, hard_deadline = t0 + 4 * budget;
  uint64_t early_rounds = 0;  // as the reclaimer saw them (reader_done orders them)
  auto more = [&] {
    const auto now = std::chrono::steady_clock::now();
    return now < deadline || (early_rounds < 1000 && now < hard_deadline);
  };
  for (uint64_t r = 1; r <= max_rounds && more(); ++r) {
    Obj* old = &objs[(r - 1) & 1];  // what `shared` names now
    Obj* next = &objs[r & 1];
    next->alive.store(1, std::memory_order_relaxed);  // reused: freed last round, no reader holds it
    for (Line& l : contended) l.v.store(r, std::memory_order_relaxed);  // take the lines back
    go.store(r, std::memory_order_release);
    spin_for(delay);
    shared.store(next, std::memory_order_seq_cst);  // unlink old
    q.retire([old] { old->alive.store(0, std::memory_order_release); });  // its free
    q.reclaim();
    for (int spins = 0; reader_done.load(std::memory_order_acquire) < r; ++spins) {
      if (spins > (1 << 18)) std::this_thread::yield();
    }
    q.reclaim();  // the reader is offline: the old object is freed now at the latest
    if (reader_was_early.load(std::memory_order_relaxed)) {
      ++early_rounds;
      delay = delay >= 16 ? delay - 16 : 0;
    } else {
      delay = std::min<uint64_t>(delay + 16, 1 << 14);  // ~10 us: the reader is not running now
    }
    EXPECT_EQ(q.pending(), 0u);
    reclaimer_done.store(r, std::memory_order_relaxed);
    out.rounds = r;
  }
  stop.store(true, std::memory_order_relaxed);
  reader.join();
  return out;
}

TEST(QsbrLitmus, OnlineIsABarrierBeforeTheBurstsLoads) {
  const char* scale_env = std::getenv("FERRITE_STRESS_SCALE");
  const double scale = scale_env != nullptr ? std::atof(scale_env) : 1.0;
  const auto budget = std::chrono::milliseconds(static_cast<int64_t>(4000 * (scale > 0 ? scale : 1.0)));
  const Outcome o = run_litmus(/*fenced=*/true, budget, 5'000'000);
  std::printf("rounds %llu, reader held the retired object %llu times, use after free %llu\n",
              static_cast<unsigned long long>(o.rounds), static_cast<unsigned long long>(o.stale_pointer),
              static_cast<unsigned long long>(o.use_after_free));
  EXPECT_GT(o.rounds, 1000u);
  EXPECT_GT(o.stale_pointer, 0u) << "the race never came up: the test did not exercise the window";
  EXPECT_EQ(o.use_after_free, 0u);
}

TEST(QsbrLitmus, TheReleaseStoreOnlineWasWrong) {
  if (std::getenv("FERRITE_QSBR_LITMUS_OLD") == nullptr) GTEST_SKIP() << "set FERRITE_QSBR_LITMUS_OLD=1 to run";
  const Outcome o = run_litmus(/*fenced=*/false, std::chrono::milliseconds(10000), 50'000'000);
  std::printf("without F1: rounds %llu, reader held the retired object %llu times, use after free %llu\n",
              static_cast<unsigned long long>(o.rounds), static_cast<unsigned long long>(o.stale_pointer),
              static_cast<unsigned long long>(o.use_after_free));
  EXPECT_GT(o.use_after_free, 0u);
}

// Debug-build checks of the invariants in qsbr.h (Q1-Q4) fire when a
// caller breaks them. FERRITE_DCHECK is compiled out under NDEBUG: skipped.
#ifdef NDEBUG
constexpr bool kDchecksOn = false;
#else
constexpr bool kDchecksOn = true;
#endif

TEST(QsbrChecksDeathTest, OnlineOfAnOnlineSlotAborts) {
  if (!kDchecksOn) GTEST_SKIP() << "FERRITE_DCHECK is compiled out (NDEBUG)";
  Qsbr q(1);
  q.online(0);
  EXPECT_DEATH(q.online(0), "check failed: was == kOffline");  // Q2
  q.offline(0);
  q.online(0);  // from offline, as run() does
  q.offline(0);
}

TEST(QsbrChecksDeathTest, QuiesceOfAnOfflineSlotAborts) {
  if (!kDchecksOn) GTEST_SKIP() << "FERRITE_DCHECK is compiled out (NDEBUG)";
  Qsbr q(1);
  EXPECT_DEATH(q.quiesce(0), "check failed: seen != kOffline");
  q.online(0);
  q.quiesce(0);
  q.offline(0);
}

TEST(QsbrChecksDeathTest, DrainAllWhileASlotIsOnlineAborts) {
  if (!kDchecksOn) GTEST_SKIP() << "FERRITE_DCHECK is compiled out (NDEBUG)";
  Qsbr q(2);
  int ran = 0;
  q.online(1);
  q.retire([&ran] { ++ran; });  // slot 1 may hold it
  EXPECT_DEATH(q.drain_all(), "check failed: s\\.seen.* == kOffline");  // Q4
  EXPECT_EQ(q.reclaim(), 0u);  // slot 1 has not quiesced since the retire
  q.offline(1);
  q.drain_all();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace ferrite::index
