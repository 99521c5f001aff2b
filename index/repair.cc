// Crash repair after a dirty shutdown: lazy, per table segment, on first
// touch, with a parallel background pass that finishes the rest.
//
// Open after a crash does O(log segments) work (the log segment table, from
// the log chain: repair_after_open in index.cc) and then serves at once.
// What a crash leaves in a table segment (its state, and inside the slots),
// and the volatile totals the slots imply (live keys, live bytes per log
// segment), are repaired one table segment (2048 slots) at a time, by the
// first thread that needs the segment (an op's find(), split, scan) or by
// the background pass (start_background_repair), whichever comes first.
// Once every segment is repaired, the background pass frees the table
// objects the crash left unreachable (free_orphans).
// Dash's "instant recovery" does the same per segment with a version number;
// here the number is TableSegment::repaired.
//
// Repair epoch protocol (E = repair_epoch_, unique to this Index::open):
//  A5  pending = repair_pending_ (acquire)          pairs with R5; false: nothing to do
//  A6  w = s.repaired (acquire)                     pairs with R6
//        w == E              repaired: go on
//        w == E|repairing    another thread repairs s: wait for R6 (bounded by
//                            one segment's repair, ~100 us)
//        anything else       (an older session's epoch, or 0): claim it
//  C6  CAS s.repaired w -> E|repairing (acq_rel)   one repairer per segment
//      repair the slots (below), write changed slot lines back
//  P6  fence                                        -- repaired slots durable
//  R6  s.repaired = E (release)                     pairs with A6
//  R5  repair_pending_ = false (release), once every segment is repaired;
//      pairs with A5 (after it, ensure_repaired is one predictable branch)
// The word's meaning is volatile: a later session has a different E, so what
// this session leaves on media (E, or E|repairing after a crash mid-repair)
// means "not repaired" there. Segments created this session (split
// successors) are stamped E before they are published (alloc_table_segment):
// they are built from repaired entries. While a segment waits at A6 no other
// thread reads or writes its slots (every path goes through find(), split or
// scan, which call ensure_repaired first; the cleaner and the expiry sweep do
// not run until R5), so the repairer owns them; the only exception is the
// burst prefetch, whose relaxed loads only choose prefetch addresses.
//
// Repair of a segment: its state (volatile in meaning) is reset to normal.
// Repair of one slot word w (not empty):
//  - moved bit: clear. Either a split the crash interrupted never published
//    (the directory, changed only in a transaction, still names this
//    segment), so the segment is authoritative; or this segment is a
//    successor whose switch committed before the crash and which had not
//    been unfrozen yet (split.cc S5): it is then authoritative too. Empty
//    slots included (a successor's are frozen as well).
//  - dirty bit: clear. The record was durable before the slot CAS
//    (invariant 1); the write was not acknowledged, so keeping the word is
//    as correct as having lost it. P6 makes the choice durable.
//  - a dead tombstone (slot::kDead) names no record: kept.
//  - otherwise the record must lie inside the data area of a registered log
//    segment, have a valid checksum, and name a key whose hash matches the
//    slot's tag and this segment's prefix. A slot failing this (which the
//    invariants exclude) becomes a dead tombstone: the key is lost rather
//    than served from garbage. Counted in IndexStats::recovery_bad_records
//    and logged.
//  - a live key (not a tombstone) is counted into repaired_keys_ and its
//    record's bytes into its log segment's live count.
// Crash table:
//  crash during a repair: each slot holds its old or its repaired word, and
//    both are valid input for the next session's repair (idempotent).
//
// Cost: one random read of each live record (header, key, value, one or two
// lines) and a checksum. The records of a segment are prefetched
// kPrefetchAhead slots ahead, so ~10 misses are in flight instead of one
// where the pages are mapped. On a freshly mapped pool on our VM the first
// touch of each 4 KiB page costs 11-16 us and a prefetch of an unmapped page
// stalls like a load, so there the pass is bound by page first touches
// (docs/architecture.md, "Restart and crash repair").
//
// Background pass: one thread per hardware thread (at most
// kMaxRepairThreads), nice IndexOptions::repair_nice (10), each pulling chunks of the
// directory from repair_cursor_; the last one out publishes R5. Own threads,
// not TBB: index/ depends only on pmem/, the pass must stop and join on
// close, and TBB's scheduler is not TSan-instrumented.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/hash.h"
#include "common/log.h"
#include "index/index_impl.h"

namespace ferrite::index {
namespace {

constexpr unsigned kSegSlots = kBucketsPerSegment * kSlotsPerBucket;
constexpr unsigned kPrefetchAhead = 12;
constexpr uint64_t kMaxRepairChunks = 1024;
constexpr uint64_t kMaxBadRecordLogs = 16;

// Per-thread scratch of one segment repair: live bytes per log segment id,
// added to the shared counters once per segment (not once per record: the
// same ~200 counters are hit by every repairing thread).
struct RepairScratch {
  std::vector<int64_t> live;
  std::vector<uint32_t> touched;
};

}  // namespace

void IndexImpl::ensure_repaired_slow(TableSegment* s) const noexcept {
  // Repair writes PMEM slot words and atomic counters only; find() and its
  // callers are const because lookups change nothing a caller can observe.
  const_cast<IndexImpl*>(this)->claim_and_repair(s, /*lazy=*/true);
}

void IndexImpl::claim_and_repair(TableSegment* s, bool lazy) noexcept {
  const uint64_t e = repair_epoch_;
  uint64_t w = s->repaired.load(std::memory_order_acquire);  // A6: pairs with R6
  for (unsigned spins = 0; w != e;) {
    if (w == (e | kRepairingBit)) {
      // Another thread owns the repair; it ends with R6.
      if (++spins % 1024 == 0) {
        std::this_thread::yield();  // the repairer may have been preempted (2 cores)
      } else {
        cpu_relax();
      }
      w = s->repaired.load(std::memory_order_acquire);  // A6
      continue;
    }
    // C6: claim. On failure w holds the new value and the loop decides again.
    if (s->repaired.compare_exchange_weak(w, e | kRepairingBit, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      repair_segment(s, lazy);
      s->repaired.store(e, std::memory_order_release);  // R6: pairs with A6
      return;
    }
  }
}

const RecordHeader* IndexImpl::checked_record(const TableSegment* s, uint64_t w, LogSegInfo** info) noexcept {
  const uint64_t off = slot::rec_off(w);
  LogSegInfo* e = segs_.find(off);
  if (e == nullptr) return nullptr;
  const uint64_t seg_off = e->off.load(std::memory_order_relaxed);
  const auto* h = pool_.ptr(pmem::POff<pmem::SegmentHeader>(seg_off));
  const uint64_t data = seg_off + sizeof(pmem::SegmentHeader);
  const uint64_t end = seg_off + std::min<uint64_t>(h->size, alloc_.segment_size());
  if (off < data || off >= end) return nullptr;
  const RecordHeader* r = record(w);
  if (!record_valid(r, end - off) || !is_value_kind(r->kind())) return nullptr;
  const uint64_t kh = hash_key(r->key());
  if (slot::tag_of(kh) != slot::tag(w)) return nullptr;
  if (dir_index(kh, s->local_depth) != s->prefix) return nullptr;
  *info = e;
  return r;
}

void IndexImpl::repair_segment(TableSegment* s, bool lazy) noexcept {
  thread_local RepairScratch scratch;
  if (scratch.live.size() < segs_.capacity()) scratch.live.assign(segs_.capacity(), 0);
  // Slots that name a record, in slot order; their records are prefetched
  // kPrefetchAhead entries before they are validated.
  uint16_t named[kSegSlots];
  unsigned n = 0;
  for (unsigned i = 0; i < kSegSlots; ++i) {
    const uint64_t w = s->buckets[i / kSlotsPerBucket].slots[i % kSlotsPerBucket].load(std::memory_order_relaxed);
    if (!slot::is_empty(w) && !slot::is_dead(w)) named[n++] = static_cast<uint16_t>(i);
  }
  auto prefetch = [&](unsigned k) {
    const uint64_t w = s->buckets[named[k] / kSlotsPerBucket].slots[named[k] % kSlotsPerBucket].load(
        std::memory_order_relaxed);
    const uint64_t off = slot::rec_off(w);
    if (off + 2 * kCacheLine <= pool_.size()) {
      __builtin_prefetch(base_ + off);
      __builtin_prefetch(base_ + off + kCacheLine);
    }
  };
  for (unsigned k = 0; k < std::min(n, kPrefetchAhead); ++k) prefetch(k);

  int64_t keys = 0;
  uint64_t bad = 0;
  Census::Tally tally;  // items per size class (census.h)
  uint32_t changed_lines[kBucketsPerSegment / 32] = {};  // bit per bucket
  auto fix = [&](unsigned i, uint64_t w, uint64_t nw) {
    if (nw == w) return;
    // The repairer owns the segment's slots until R6 (see the top comment).
    s->buckets[i / kSlotsPerBucket].slots[i % kSlotsPerBucket].store(nw, std::memory_order_relaxed);
    changed_lines[i / kSlotsPerBucket / 32] |= 1u << (i / kSlotsPerBucket % 32);
  };
  // The segment's state is volatile in meaning: a split the crash
  // interrupted left it splitting or retired while the directory (changed
  // only in a transaction, and it named s) still names it, or left it a
  // committed successor still splitting (before S5). Reset before a
  // splitter can CAS it (S1).
  bool header_changed = false;
  if (s->state.load(std::memory_order_relaxed) != kSegNormal) {
    s->state.store(kSegNormal, std::memory_order_relaxed);
    header_changed = true;
  }
  // Empty and dead slots: only transient bits to clear.
  for (unsigned i = 0; i < kSegSlots; ++i) {
    const uint64_t w = s->buckets[i / kSlotsPerBucket].slots[i % kSlotsPerBucket].load(std::memory_order_relaxed);
    if (slot::is_empty(w) || slot::is_dead(w)) fix(i, w, slot::entry(w));
  }
  for (unsigned k = 0; k < n; ++k) {
    if (k + kPrefetchAhead < n) prefetch(k + kPrefetchAhead);
    const unsigned i = named[k];
    const uint64_t w = s->buckets[i / kSlotsPerBucket].slots[i % kSlotsPerBucket].load(std::memory_order_relaxed);
    uint64_t nw = slot::entry(w);
    LogSegInfo* info = nullptr;
    const RecordHeader* r = checked_record(s, nw, &info);
    if (r == nullptr) {
      const uint64_t total = bad_records_.fetch_add(1, std::memory_order_relaxed) + 1;
      if (total <= kMaxBadRecordLogs) {
        log_warn("index repair: slot {} of table segment at {:#x} names no valid record (offset {:#x}); made dead",
                 i, pool_.off(s).raw(), slot::rec_off(nw));
      }
      nw = slot::kDead;
      ++bad;
    } else if (!slot::is_tombstone(nw)) {
      ++keys;
      if (census_->enabled()) census_->tally(&tally, r);
      const uint32_t id = segs_.id_of(info);
      if (scratch.live[id] == 0) scratch.touched.push_back(id);
      scratch.live[id] += static_cast<int64_t>(r->size());
    }
    fix(i, w, nw);
  }
  // P6: repaired slot lines durable before the segment counts as repaired.
  bool any = header_changed;
  if (header_changed) pool_.persister().flush_nodrain(s, kCacheLine);
  for (unsigned b = 0; b < kBucketsPerSegment; ++b) {
    if ((changed_lines[b / 32] >> (b % 32)) & 1u) {
      pool_.persister().flush_nodrain(&s->buckets[b], kCacheLine);
      any = true;
    }
  }
  if (any) pool_.persister().fence();
  for (uint32_t id : scratch.touched) {
    segs_.at(id).live.fetch_add(scratch.live[id], std::memory_order_relaxed);
    scratch.live[id] = 0;
  }
  scratch.touched.clear();
  repaired_keys_.fetch_add(keys, std::memory_order_relaxed);
  census_->add_repaired(tally);
  repair_left_.fetch_sub(1, std::memory_order_relaxed);
  (lazy ? repaired_lazy_ : repaired_bg_).fetch_add(1, std::memory_order_relaxed);
  (void)bad;
}

void IndexImpl::prepare_repair_pass() noexcept {
  Directory* d = dir();
  repair_depth_ = static_cast<unsigned>(d->depth);
  repair_chunks_ = std::min<uint64_t>(1ull << repair_depth_, kMaxRepairChunks);
  repair_cursor_.store(0, std::memory_order_relaxed);
}

void IndexImpl::start_background_repair() {
  if (!repair_pending() || !opts_.background_repair) return;
  unsigned n = opts_.repair_threads != 0 ? opts_.repair_threads : std::thread::hardware_concurrency();
  n = std::clamp(n, 1u, kMaxRepairThreads);
  std::lock_guard<std::mutex> lock(repair_mu_);
  prepare_repair_pass();
  repair_running_.store(n, std::memory_order_relaxed);
  const int nice = std::clamp(opts_.repair_nice, -20, 19);
  for (unsigned i = 0; i < n; ++i) {
    repair_threads_.emplace_back([this, i, nice] {
      // Serving threads win the CPU: they repair what they touch themselves,
      // and the pass only has to be done within about a second. (Linux nice
      // values are per thread.)
      if (nice != 0) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), nice);
      repair_pass(repair_qsbr_slot_ + i);
    });
  }
}

void IndexImpl::repair_pass(unsigned qsbr_slot) noexcept {
  // Chunk c covers directory entries [c * per, (c + 1) * per) at depth
  // repair_depth_, i.e. a fixed range of hash prefixes; a doubling since then
  // only multiplies the entries that range spans. Every segment that still
  // needs repair is an original one that was never split (a split repairs
  // first), so it sits in its range of the current directory.
  const uint64_t per = (1ull << repair_depth_) / repair_chunks_;
  for (;;) {
    if (repair_stop_.load(std::memory_order_relaxed)) break;
    const uint64_t c = repair_cursor_.fetch_add(1, std::memory_order_relaxed);
    if (c >= repair_chunks_) break;
    qsbr_.online(qsbr_slot);  // the segments we touch cannot be freed until offline
    Directory* d = dir();
    const unsigned shift = static_cast<unsigned>(d->depth) - repair_depth_;
    const uint64_t lo = (c * per) << shift;
    const uint64_t hi = ((c + 1) * per) << shift;
    uint64_t prev = 0;
    for (uint64_t j = lo; j < hi; ++j) {
      const uint64_t off = d->seg[j].load(std::memory_order_acquire);  // A2: pairs with R4
      if (off == prev) continue;
      prev = off;
      if (repair_pending_.load(std::memory_order_relaxed)) claim_and_repair(seg(off), /*lazy=*/false);
    }
    qsbr_.offline(qsbr_slot);
  }
  // The last thread out finishes, unless the pass was stopped: then chunks
  // may be left and the repair stays pending (abandon; no clean close).
  if (repair_running_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !repair_stop_.load(std::memory_order_relaxed)) {
    finish_repair();
  }
}

void IndexImpl::finish_repair() noexcept {
  repair_pending_.store(false, std::memory_order_release);  // R5: pairs with A5
  // The cleaner and the expiry sweep may start now; the orphan scan follows
  // (it blocks segment allocations and frees while it walks the objects).
  free_orphans();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - open_start_);
  repair_us_.store(static_cast<uint64_t>(std::max<int64_t>(1, us.count())), std::memory_order_relaxed);
  log_info("index: crash repair done {:.1f} ms after open began: {} table segments ({} on first touch, {} in the "
           "background), {} keys, {} bad records, {} orphaned table objects freed",
           static_cast<double>(us.count()) / 1000.0,
           repaired_lazy_.load(std::memory_order_relaxed) + repaired_bg_.load(std::memory_order_relaxed),
           repaired_lazy_.load(std::memory_order_relaxed), repaired_bg_.load(std::memory_order_relaxed),
           repaired_keys_.load(std::memory_order_relaxed), bad_records_.load(std::memory_order_relaxed),
           orphans_freed_.load(std::memory_order_relaxed));
}

void IndexImpl::free_orphans() noexcept {
  // Orphans: table segments and directories that a crash left unreachable
  // (between a split's allocation and its publication, between a publication
  // or a doubling and the QSBR free of what it replaced). Unreachable means:
  // not named by the directory, not the directory, and not listed in
  // unlinked_ (this session's own unpublished or retired objects). The index
  // root and log segments (on the log chain) are never orphans.
  // dir_mu_ keeps the directory and the unlinked_ transitions made with it
  // still; objects_mu_ (exclusive) keeps every allocation and free out while
  // pmemobj_first/next walk the heap, which they are not safe against.
  std::vector<uint64_t> orphans;
  {
    std::lock_guard<std::mutex> dir_lock(dir_mu_);
    std::unique_lock<std::shared_mutex> objects(objects_mu_);
    const uint64_t dir_off = root_->dir.load(std::memory_order_relaxed);
    Directory* d = dir();
    std::vector<uint64_t> named;
    for (uint64_t j = 0; j < (1ull << d->depth); ++j) {
      const uint64_t off = d->seg[j].load(std::memory_order_relaxed);
      if (named.empty() || named.back() != off) named.push_back(off);
    }
    std::sort(named.begin(), named.end());
    std::lock_guard<std::mutex> unlinked(unlinked_mu_);
    for (PMEMoid o = pmemobj_first(pool_.handle()); !OID_IS_NULL(o); o = pmemobj_next(o)) {
      const uint64_t t = pmemobj_type_num(o);
      if (t == kTypeTableSegment) {
        if (!std::binary_search(named.begin(), named.end(), round_up(o.off, kCacheLine)) &&
            unlinked_.count(o.off) == 0) {
          orphans.push_back(o.off);
        }
      } else if (t == kTypeDirectory && o.off != dir_off && unlinked_.count(o.off) == 0) {
        orphans.push_back(o.off);
      }
    }
    // Freed while objects_mu_ is still held exclusively: no other pmemobj
    // allocation or free (a split, a log segment's allocation or the
    // cleaner's release) runs concurrently with these. With the frees after
    // the locks, ferrited aborted inside libpmemobj (pmemobj_tx_commit of the
    // cleaner's release_log_segment while this thread was in
    // pmemobj_tx_xfree) in 3 of 25 campaigns of 20 restarts under load
    // (crashtest_short, server mode, next to another campaign). Nothing names
    // an orphan and none is in unlinked_, so there is nothing else to update.
    const uint64_t uuid = pmemobj_oid(pool_.root()).pool_uuid_lo;
    for (uint64_t off : orphans) {
      Status st = pool_.transact([&](pmem::Tx& tx) { tx.free(PMEMoid{uuid, off}); });
      if (!st.is_ok()) log_warn("could not free an orphaned table object: {}", st.to_string());
    }
  }
  orphans_freed_.fetch_add(orphans.size(), std::memory_order_relaxed);
  orphan_scan_pending_.store(false, std::memory_order_release);
}

void IndexImpl::wait_repaired() {
  std::lock_guard<std::mutex> lock(repair_mu_);
  for (auto& t : repair_threads_) t.join();
  repair_threads_.clear();
  if (!repair_pending()) return;  // finish_repair ran, orphan scan included
  // No background pass ran to completion (disabled, or stopped): finish here.
  repair_stop_.store(false, std::memory_order_relaxed);
  prepare_repair_pass();
  repair_running_.store(1, std::memory_order_relaxed);
  repair_pass(repair_qsbr_slot_);  // the last one out: finish_repair, with the orphan scan
}

void IndexImpl::stop_repair() noexcept {
  std::lock_guard<std::mutex> lock(repair_mu_);
  repair_stop_.store(true, std::memory_order_relaxed);
  for (auto& t : repair_threads_) t.join();
  repair_threads_.clear();
}

uint64_t IndexImpl::eager_recount() const {
  // The open-time pass this file replaced, kept as the benchmark's peer:
  // every slot of every segment, one thread, one record read per live key.
  auto& segs = const_cast<LogSegTable&>(segs_);
  std::vector<int64_t> live(segs.capacity(), 0);
  uint64_t keys = 0;
  Directory* d = dir();
  uint64_t prev = 0;
  for (uint64_t j = 0; j < (1ull << d->depth); ++j) {
    const uint64_t off = d->seg[j].load(std::memory_order_acquire);
    if (off == prev) continue;
    prev = off;
    const TableSegment* s = seg(off);
    for (const auto& b : s->buckets) {
      for (const auto& w : b.slots) {
        const uint64_t v = w.load(std::memory_order_relaxed);
        if (slot::is_empty(v) || slot::is_tombstone(v)) continue;
        ++keys;
        const RecordHeader* r = record(v);
        if (LogSegInfo* e = segs.find(slot::rec_off(v))) live[segs.id_of(e)] += static_cast<int64_t>(r->size());
      }
    }
  }
  int64_t bytes = 0;
  for (int64_t b : live) bytes += b;
  // Keep the per-segment sums alive: the peer must do all of the old pass's work.
  __asm__ volatile("" : : "g"(bytes) : "memory");
  return keys;
}

}  // namespace ferrite::index
