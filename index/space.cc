// Space (see space.h): capacity, the demand-driven cleaner thread, the
// writers' backpressure wait, read bits for eviction.
#include "index/space.h"

#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/log.h"
#include "index/cleaner.h"
#include "index/index_impl.h"

namespace ferrite::index {
namespace {

// Active cleaning skips segments fuller than this: copying a 98%-live
// segment to free 2% of one costs more than it gives.
constexpr double kMaxCleanLive = 0.95;
// ... unless a writer waits and nothing cheaper is left.
constexpr double kMaxCleanLiveUnderDemand = 0.995;
// In evict mode segments fuller than this are not copied: an eviction pass
// makes the room instead.
constexpr double kMaxCleanLiveEvicting = 0.90;
// libpmemobj's own space before the heap (lanes, ~3 MiB, and the first
// zone's header), and each further zone's metadata (a zone header and 8
// bytes per 256 KiB chunk of its 16 GiB). Measured here: a 16 MiB..1 GiB pool
// holds (size - 4 MiB) / 4 MiB segments of 4 MiB, exactly (a test checks
// capacity against what can be allocated).
constexpr uint64_t kHeapOverhead = 4ull << 20;
constexpr uint64_t kZoneBytes = 16ull << 30;
constexpr uint64_t kZoneOverhead = 1ull << 20;

}  // namespace

Space::Space(IndexImpl& idx, const SpaceOptions& opts)
    : idx_(idx), opts_(opts), seg_size_(idx.alloc_.segment_size()) {
  const uint64_t size = idx.pool_.size();
  const uint64_t zones = (size + kZoneBytes - 1) / kZoneBytes;
  const uint64_t overhead = kHeapOverhead + (zones - 1) * kZoneOverhead;
  const uint64_t heap = size > overhead ? size - overhead : 0;
  capacity_ = heap / seg_size_ * seg_size_;
  reserve_bytes_ = reserve_for(capacity_);
  if (opts_.evict) {
    // <= 2^27 bits (16 MiB) whatever the pool size.
    const unsigned log2 = static_cast<unsigned>(std::bit_width(size) - 1);
    ref_shift_ = std::max(6u, log2 > 27 ? log2 - 27 : 0u);
    const uint64_t words = (size >> ref_shift_) / 64 + 1;
    refbits_.reset(new std::atomic<uint64_t>[words]());
  }
}

Space::~Space() { stop(); }

Status Space::validate() const {
  const SpaceOptions& o = opts_;
  auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };
  if (!in(o.low_watermark, 0.0, 0.9) || !in(o.high_watermark, 0.01, 0.95) || o.low_watermark >= o.high_watermark) {
    return Status::invalid_argument(fmt::format(
        "cleaner watermarks low = {} and high = {} are out of order or range (need 0 <= low < high <= 0.95)",
        o.low_watermark, o.high_watermark));
  }
  if (!in(o.reserve, 0.0, 0.5)) {
    return Status::invalid_argument(fmt::format("pool reserve = {} is out of range (allowed 0..0.5)", o.reserve));
  }
  if (!o.background_cleaner) return Status::ok();
  // The pool must hold the cleaner's segments, its reserve may not take more
  // than half of it, and with two logs writing (a worker's and the
  // cleaner's) at least one segment of live data must fit under the limit.
  auto fits = [&](uint64_t capacity) {
    const uint64_t reserve = reserve_for(capacity);
    return capacity >= (kCleanerReserveSegments + 2) * seg_size_ && reserve * 2 <= capacity &&
           limit_for(capacity, reserve, 2) >= seg_size_;
  };
  if (!fits(capacity_)) {
    uint64_t cap = capacity_;
    for (int i = 0; i < 4096 && !fits(cap); ++i) cap += seg_size_;
    return Status::invalid_argument(fmt::format(
        "pool of {} MiB is too small for its reserve: it holds {} log segments of {} MiB; the cleaner keeps {} free and "
        "a standby, each writing worker a partly filled one, and pool.reserve = {} keeps {} MiB from live data; use a "
        "pool of at least {} MiB (or smaller segments, pool.segment_size)",
        idx_.pool_.size() >> 20, capacity_ / seg_size_, seg_size_ >> 20, kCleanerReserveSegments, o.reserve,
        reserve_for(capacity_) >> 20, (cap + kHeapOverhead) >> 20));
  }
  return Status::ok();
}

void Space::start() {
  if (!opts_.background_cleaner || thread_.joinable()) return;
  stop_.store(false, std::memory_order_relaxed);
  thread_ = std::thread([this] { run(); });
}

void Space::stop() noexcept {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(wake_mu_);
    stop_.store(true, std::memory_order_relaxed);
  }
  wake_cv_.notify_all();
  room_cv_.notify_all();
  thread_.join();
}

uint64_t Space::used_bytes() const noexcept {
  // Our own count, not libpmemobj's stats.heap.curr_allocated: that counter
  // is not crash safe (after simulated power failures it drifted, once
  // below zero, and the pool refused writes it had room for).
  const uint64_t logs = idx_.segs_.count() + (cleaner_ready_.load(std::memory_order_relaxed) ? 1 : 0);
  const auto tables = static_cast<uint64_t>(std::max<int64_t>(0, idx_.table_segments_.load(std::memory_order_relaxed)));
  // A table segment's allocation unit (register_table_class) in runs of 32,
  // plus a run header's share; the directory (8 bytes an entry); the root.
  const uint64_t table_unit = (sizeof(TableSegment) + 2 * kCacheLine + 16) * 33 / 32;
  const uint64_t depth = std::min<uint64_t>(idx_.dir_depth_.load(std::memory_order_relaxed), 40);
  return logs * seg_size_ + tables * table_unit + (8ull << depth) + (256u << 10);
}

uint64_t Space::free_bytes() const noexcept {
  const uint64_t used = used_bytes() + slack_.load(std::memory_order_relaxed);
  return used >= capacity_ ? 0 : capacity_ - used;
}

void Space::note_allocation_failed() noexcept {
  // The heap holds more than its allocated bytes (libpmemobj's runs of
  // small objects, table segments among them, take whole chunks) or is
  // fragmented: whatever the estimate says is free now is not a segment.
  const uint64_t f = free_bytes();
  if (f == 0) return;
  const uint64_t slack = slack_.fetch_add(f, std::memory_order_relaxed) + f;
  log_info("space: a log segment allocation failed with {} KiB counted free; the free-space estimate is lowered by "
           "{} KiB in all",
           f >> 10, slack >> 10);
}

bool Space::worker_may_allocate() const noexcept {
  if (!managed()) return true;
  return cleaner_ready_.load(std::memory_order_relaxed) && free_bytes() / seg_size_ > kCleanerReserveSegments;
}

uint64_t Space::reserve_for(uint64_t capacity) const noexcept {
  return std::max<uint64_t>(static_cast<uint64_t>(opts_.reserve * static_cast<double>(capacity)),
                            kCleanerReserveSegments * seg_size_);
}

uint64_t Space::live_limit(uint64_t heads) const noexcept { return limit_for(capacity_, reserve_bytes_, heads); }

uint64_t Space::limit_for(uint64_t cap, uint64_t reserve, uint64_t heads) const noexcept {
  // Room that is never live data: the log heads (partly filled), the
  // cleaner's standby and the free segments workers leave, and one segment
  // of dead space to clean.
  // (Evict mode needs no dead segment: eviction makes room without copying.)
  const uint64_t fixed = (heads + kCleanerReserveSegments + (opts_.evict ? 1 : 2)) * seg_size_;
  const uint64_t by_heads = cap > fixed ? cap - fixed : 0;
  // Evict mode fills the pool up to that. Error mode keeps the reserve from
  // live data, and at least half of it as dead space beside the heads, so
  // cleaning stays affordable at the limit (write amplification about
  // 2 / reserve at worst on a small pool, 1 / reserve on a large one).
  if (opts_.evict) return by_heads;
  const uint64_t by_reserve = cap - reserve;
  return std::min(by_reserve, by_heads > reserve / 2 ? by_heads - reserve / 2 : 0);
}

Space::Survey Space::survey() const noexcept {
  Survey s;
  LogSegTable& segs = idx_.segs_;
  for (std::size_t i = 0; i < segs.capacity(); ++i) {
    const LogSegInfo& e = segs.at(i);
    if (e.off.load(std::memory_order_acquire) == 0) continue;
    s.live += static_cast<uint64_t>(std::max<int64_t>(0, e.live.load(std::memory_order_relaxed)));
    if (e.use.load(std::memory_order_relaxed) == kSegHead) ++s.heads;
    if (e.use.load(std::memory_order_relaxed) == kSegSealed) {
      ++s.sealed;
      s.least_live = std::min<uint64_t>(s.least_live, static_cast<uint64_t>(std::max<int64_t>(0, e.live.load(std::memory_order_relaxed))));
    }
  }
  s.free = free_bytes();
  s.limit = live_limit(s.heads);
  return s;
}

void Space::poke() noexcept {
  if (!managed()) return;
  wake_cv_.notify_one();
}

void Space::idle(std::chrono::microseconds d) {
  std::unique_lock<std::mutex> lk(wake_mu_);
  wake_cv_.wait_for(lk, d, [this] {
    return stop_.load(std::memory_order_relaxed) || waiters_.load(std::memory_order_relaxed) > 0;
  });
}

void Space::run() {
  (void)pthread_setname_np(pthread_self(), "ferrite-clean");
  bool active = false;
  while (!stop_.load(std::memory_order_relaxed)) {
    // Live bytes per segment are known once crash repair is done.
    if (idx_.repair_pending()) {
      idle(std::chrono::milliseconds(10));
      continue;
    }
    const Survey s = survey();
    const bool over = s.live > s.limit;
    live_full_.store(over && !opts_.evict, std::memory_order_relaxed);
    survey_gen_.fetch_add(1, std::memory_order_release);
    const bool demand = waiters_.load(std::memory_order_relaxed) > 0;
    if (demand) room_cv_.notify_all();  // they act on this survey (live_full_)
    const double free_share = static_cast<double>(s.free) / static_cast<double>(capacity_);
    if (free_share < opts_.low_watermark || demand) {
      active = true;
    } else if (free_share >= opts_.high_watermark) {
      active = false;
    }
    const bool evict_now = opts_.evict && over;
    // Live data above the limit without eviction: copying cannot make room
    // that the refusals (kLiveFull) will not take back; only what is free
    // of charge (dead segments) is worth doing.
    if ((active && !(over && !opts_.evict)) || evict_now) {
      CleanOptions co;
      co.max_segments = 1;
      co.evict = evict_now;
      co.max_live_ratio = opts_.evict ? kMaxCleanLiveEvicting : kMaxCleanLive;
      CleanStats st = idx_.clean(co);
      if (st.segments_cleaned == 0 && !evict_now) {
        // No segment is cheap to clean. In evict mode make room by evicting
        // (a cache would rather drop cold keys than copy mostly live
        // segments); else, if a writer waits, take any segment that frees
        // something.
        if (opts_.evict) {
          co.evict = true;
          st = idx_.clean(co);
        } else if (demand) {
          co.max_live_ratio = kMaxCleanLiveUnderDemand;
          st = idx_.clean(co);
        }
      }
      room_cv_.notify_all();
      if (st.segments_cleaned == 0 && demand) {
        log_debug("cleaner: writers wait and nothing was cleaned: free {} B ({} allocated), live {} B, limit {} B, "
                 "heads {}, skipped for lack of room {}, ready {}, room {}, sealed {}, least live {}",
                 s.free, idx_.pool_.allocated_bytes(), s.live, s.limit, s.heads, st.skipped_no_space,
                 cleaner_ready_.load(), idx_.cleaner_ ? idx_.cleaner_->room() : 0, s.sealed, s.least_live);
      }
      if (st.segments_cleaned == 0) {
        // Nothing cleanable now: every sealed segment is too full, or the
        // victims await their grace period. A short sleep that waiting
        // writers do not cut (they would make it a spin).
        std::unique_lock<std::mutex> lk(wake_mu_);
        wake_cv_.wait_for(lk, std::chrono::microseconds(200), [this] { return stop_.load(std::memory_order_relaxed); });
      } else if (!demand && opts_.max_copy_mbps != 0 && st.bytes_moved != 0) {
        idle(std::chrono::microseconds(st.bytes_moved / opts_.max_copy_mbps));  // bytes / (MB/s) = us
      }
      continue;
    }
    // Room enough: free only what needs no copying, then sleep until a
    // worker takes a segment (poke) or a writer waits.
    const CleanStats st = idx_.clean({.max_live_ratio = 0.0, .max_segments = 4, .evict = false});
    if (st.segments_cleaned != 0) room_cv_.notify_all();
    idle(std::chrono::milliseconds(20));
  }
}

Result Space::wait_for_room(std::chrono::steady_clock::time_point deadline) noexcept {
  const auto t0 = std::chrono::steady_clock::now();
  waits_.fetch_add(1, std::memory_order_relaxed);
  const uint64_t gen0 = survey_gen_.load(std::memory_order_acquire);
  waiters_.fetch_add(1, std::memory_order_relaxed);
  Result r = Result::kNoSpace;
  {
    std::unique_lock<std::mutex> lk(wake_mu_);
    wake_cv_.notify_one();
    for (;;) {
      // Acquire: pairs with the release increment in run(), so live_full_
      // is the value of a survey made after this wait began.
      if (survey_gen_.load(std::memory_order_acquire) != gen0 && live_full_.load(std::memory_order_relaxed)) {
        r = Result::kLiveFull;
        break;
      }
      if (worker_may_allocate()) {
        r = Result::kOk;
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      if (stop_.load(std::memory_order_relaxed) || now >= deadline) break;
      room_cv_.wait_until(lk, std::min(deadline, now + std::chrono::milliseconds(1)));
    }
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  wait_us_.fetch_add(static_cast<uint64_t>(
                         std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
                             .count()),
                     std::memory_order_relaxed);
  return r;
}

void Space::note_refused(Result why, uint64_t n) noexcept {
  if (n == 0) return;
  (why == Result::kLiveFull ? refused_live_full_ : refused_behind_).fetch_add(n, std::memory_order_relaxed);
}

void Space::fill_stats(IndexStats* st) const noexcept {
  st->capacity_bytes = capacity_;
  st->free_bytes = free_bytes();
  uint64_t heads = 0;
  {
    LogSegTable& segs = idx_.segs_;
    for (std::size_t i = 0; i < segs.capacity(); ++i) {
      const LogSegInfo& e = segs.at(i);
      if (e.off.load(std::memory_order_acquire) != 0 && e.use.load(std::memory_order_relaxed) == kSegHead) ++heads;
    }
  }
  st->live_limit_bytes = live_limit(heads);
  uint64_t appended = 0;
  for (const auto& w : idx_.workers_) appended += w->state_->log_.bytes_appended_relaxed();
  st->bytes_appended = appended;
  st->cleaner_bytes_copied = bytes_copied.load(std::memory_order_relaxed);
  st->cleaner_bytes_freed = bytes_freed.load(std::memory_order_relaxed);
  st->cleaner_segments_freed = segments_freed.load(std::memory_order_relaxed);
  st->cleaner_segments_freed_empty = segments_freed_empty.load(std::memory_order_relaxed);
  st->write_amplification =
      appended == 0 ? 1.0
                    : static_cast<double>(appended + st->cleaner_bytes_copied) / static_cast<double>(appended);
  st->evictions = evictions.load(std::memory_order_relaxed);
  st->expired_reclaimed = expired_reclaimed.load(std::memory_order_relaxed);
  st->backpressure_waits = waits_.load(std::memory_order_relaxed);
  st->backpressure_wait_us = wait_us_.load(std::memory_order_relaxed);
  st->refused_live_full = refused_live_full_.load(std::memory_order_relaxed);
  st->refused_cleaner_behind = refused_behind_.load(std::memory_order_relaxed);
}

}  // namespace ferrite::index
