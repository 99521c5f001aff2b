// Space: the pool's log space as a managed resource. Owns
//  - capacity and free space (what the pool's heap can hold, minus every
//    allocated object: log segments and table segments);
//  - the background cleaner thread, driven by demand: below the low
//    watermark of free space, or while a writer waits, it cleans without
//    pause until free space is back at the high watermark; otherwise it only
//    frees segments with nothing live (no copying) and sleeps;
//  - the writers' side: a worker takes a segment only while the cleaner
//    holds its standby (so the cleaner can always finish a victim) and more
//    than kCleanerReserveSegments are free, and a burst that finds no
//    room waits for the cleaner, bounded by max_wait_ms, instead of failing
//    (Worker::State::execute); a write is refused at once only when live
//    data is above the limit (kLiveFull), else when the wait runs out
//    (kNoSpace);
//  - eviction (SpaceOptions::evict): when live data is above the limit the
//    cleaner runs eviction passes (cleaner.cc) instead of refusing writes;
//    read bits give recently read records a second chance;
//  - the space counters of IndexStats.
//
// Victim choice (IndexImpl::clean): cost-benefit, as in LFS (Rosenblum and
// Ousterhout) and RAMCloud's cleaner: benefit/cost = (1 - u) * age / (1 + u)
// for a segment with live share u; age = allocation sequence distance from
// the newest segment. A segment with nothing live scores highest and is freed
// without copying. Eviction passes take the oldest sealed segments (FIFO).
//
// Thread safety: the cleaner thread is the only caller of run(); the
// worker-side calls (worker_may_allocate, wait_for_room, note_read,
// note_refused) are safe from any serving thread; counters are relaxed
// atomics (statistics). Lock order: wake_mu_ is a leaf (never held while
// taking an index lock); the cleaner thread takes clean_mu_ via clean().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.h"
#include "common/status.h"
#include "index/index.h"

namespace ferrite::index {

class IndexImpl;

// Free segments (by the estimate, free_bytes()) a worker may not take: room
// for table segment splits and for what the estimate misses (libpmemobj's
// runs of small objects hold more chunks than their allocated bytes say).
// The cleaner's own room is its standby segment, already allocated (log.h).
inline constexpr uint64_t kCleanerReserveSegments = 2;

class Space {
 public:
  Space(IndexImpl& idx, const SpaceOptions& opts);
  ~Space();
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  // Checks the options against the pool (watermarks in order, the pool big
  // enough for the cleaner's reserve); called by open.
  Status validate() const;
  // Starts the cleaner thread (background_cleaner only). stop() joins it;
  // both from the control path.
  void start();
  void stop() noexcept;
  bool managed() const noexcept { return opts_.background_cleaner; }
  const SpaceOptions& options() const noexcept { return opts_; }

  uint64_t capacity_bytes() const noexcept { return capacity_; }
  // What the index holds in the pool: log segments (and the cleaner's
  // standby), table segments, the directory; counted by the index itself.
  uint64_t used_bytes() const noexcept;
  // Capacity minus used_bytes(), minus what allocations that failed showed
  // the estimate to miss.
  uint64_t free_bytes() const noexcept;
  // A log segment allocation failed: if free_bytes() said there was room,
  // it overestimates by at least that much from now on.
  void note_allocation_failed() noexcept;
  // May a worker take another log segment? No when only the cleaner's
  // reserve is left.
  bool worker_may_allocate() const noexcept;

  // A burst found no room (its worker is offline). Waits for the cleaner
  // until room may be there (kOk: try again), live data is found above the
  // limit (kLiveFull, error mode; at once, no wait), or the deadline passes
  // (kNoSpace). Counts the wait.
  Result wait_for_room(std::chrono::steady_clock::time_point deadline) noexcept;
  void note_refused(Result why, uint64_t n) noexcept;

  // Read bits (evict mode only; a no-op otherwise): set on a get hit, tested
  // and cleared by an eviction pass. One bit per granule of the pool (64
  // bytes up to 8 GiB pools, coarser above so the map stays <= 16 MiB):
  // records sharing a granule share a bit. A hint: never persisted, lost at
  // restart (every record starts cold).
  void note_read(uint64_t rec_off) noexcept {
    if (refbits_ == nullptr) return;
    const uint64_t g = rec_off >> ref_shift_;
    std::atomic<uint64_t>& w = refbits_[g >> 6];
    const uint64_t m = 1ull << (g & 63);
    if ((w.load(std::memory_order_relaxed) & m) == 0) w.fetch_or(m, std::memory_order_relaxed);
  }
  bool take_read(uint64_t rec_off) noexcept {
    if (refbits_ == nullptr) return false;
    const uint64_t g = rec_off >> ref_shift_;
    const uint64_t m = 1ull << (g & 63);
    return (refbits_[g >> 6].fetch_and(~m, std::memory_order_relaxed) & m) != 0;
  }
  // Wakes the cleaner (a worker took a segment and free space may be low).
  void poke() noexcept;
  // The cleaner holds its standby segment (log.h); set by IndexImpl::clean.
  void set_cleaner_ready(bool ready) noexcept { cleaner_ready_.store(ready, std::memory_order_relaxed); }

  // Counters written by the cleaner (cleaner.cc) and workers.
  std::atomic<uint64_t> bytes_copied{0};
  std::atomic<uint64_t> bytes_freed{0};
  std::atomic<uint64_t> segments_freed{0};
  std::atomic<uint64_t> segments_freed_empty{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> expired_reclaimed{0};

  void fill_stats(IndexStats* st) const noexcept;

 private:
  struct Survey {
    uint64_t live = 0;       // bytes slots point at
    uint64_t heads = 0;      // segments that are some log's head (not cleanable)
    uint64_t free = 0;       // free_bytes()
    uint64_t limit = 0;      // live-data limit now (live_limit())
    uint64_t sealed = 0;     // cleanable segments
    uint64_t least_live = ~0ull;  // live bytes of the emptiest of them
  };
  Survey survey() const noexcept;
  // capacity x (1 - reserve), lowered so that the heads, the cleaner's
  // reserved segments and the reserve as dead space fit beside live data.
  uint64_t live_limit(uint64_t heads) const noexcept;
  // The same for a pool of another capacity (validate()).
  uint64_t limit_for(uint64_t capacity, uint64_t reserve_bytes, uint64_t heads) const noexcept;
  // opts_.reserve x capacity, at least the cleaner's reserve segments.
  uint64_t reserve_for(uint64_t capacity) const noexcept;
  void run();
  // Sleeps up to d, or until a writer waits / stop.
  void idle(std::chrono::microseconds d);

  IndexImpl& idx_;
  SpaceOptions opts_;
  uint64_t seg_size_;
  uint64_t capacity_;       // bytes the heap can hold, in whole segments
  uint64_t reserve_bytes_;  // opts_.reserve x capacity_, at least the cleaner's reserve
  unsigned ref_shift_ = 6;
  std::unique_ptr<std::atomic<uint64_t>[]> refbits_;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;   // cleaner sleeps here; writers and stop() wake it
  std::condition_variable room_cv_;   // waiting writers sleep here; the cleaner wakes them
  std::atomic<unsigned> waiters_{0};
  // Published by the cleaner after each survey: live data above the limit
  // (and not evicting). survey_gen_ counts surveys, so a waiter acts on one
  // made after it started waiting.
  std::atomic<bool> live_full_{false};
  std::atomic<bool> cleaner_ready_{false};
  std::atomic<uint64_t> slack_{0};    // note_allocation_failed()
  std::atomic<uint64_t> survey_gen_{0};

  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> wait_us_{0};
  std::atomic<uint64_t> refused_live_full_{0};
  std::atomic<uint64_t> refused_behind_{0};
};

}  // namespace ferrite::index
