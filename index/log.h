// RecordLog: one worker's append-only log of records in PMEM segments.
// reserve() hands out 8-byte-aligned space at the tail of the current
// segment; when a record does not fit, a new segment is allocated (one
// libpmemobj transaction per 4 MiB of records) and linked as the worker's
// head in IndexRoot::log_heads and at the head of the log chain
// (log_chain.h) in the same transaction (IndexImpl::allocate_log_segment).
//
// Crash table:
//  - records written but not fenced: torn or intact, never pointed at by a
//    durable slot (invariant 1), so ignorable.
//  - after a dirty shutdown the tail inside the head segment is unknown: the
//    worker simply starts a fresh segment on its first write. The abandoned
//    tail space is reclaimed by the cleaner with the rest of that segment.
//  - after a clean shutdown, IndexRoot::log_tails gives the exact tail.
//
// Thread safety: _st, owned by one Worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "index/segtab.h"
#include "index/table.h"
#include "pmem/segment.h"

namespace ferrite::index {

class IndexImpl;

class RecordLog {
 public:
  // worker: the log_heads slot this log owns (a worker id, or kCleanerLog).
  RecordLog(IndexImpl& idx, unsigned worker) noexcept;

  // Resumes at the tail recorded by a clean close (clean == true), or starts
  // a fresh segment on the first reserve().
  void attach(bool clean) noexcept;
  // Space for size bytes (a multiple of 8), or nullptr if the pool is full.
  char* reserve_st(std::size_t size) noexcept;
  // The segment records are appended to (null before the first write).
  LogSegInfo* head() const noexcept { return info_; }
  // Records the tail for a clean close (persisted by the caller's fence).
  void save_tail_nodrain() noexcept;

  // Write-back of appended records into batch (no fence). Lines are written
  // back once they are full; the partial last line waits for
  // writeback_tail_nodrain(), which the owner calls before the fence that
  // must make the records durable (P1). So no line is written back and then
  // written again by the next record of the same burst (clwb may evict the
  // line, and the rewrite would then miss).
  void writeback_full_lines_nodrain(pmem::PersistBatch& batch) noexcept;
  void writeback_tail_nodrain(pmem::PersistBatch& batch) noexcept;

  // Hands the heads this log left since the last call to the cleaner
  // (kSegSealed). A switch to a new segment does not seal the old head at
  // once: records of the running burst may sit in it unpublished, and a
  // cleaner walking it then would judge them dead and free the segment
  // under the slots the burst is about to publish (found by
  // ferrite-crashtest: live keys naming a freed segment). The owner calls
  // this once the burst's slots are published (worker: after P2; cleaner:
  // after its C3/P2) (_st).
  void seal_retired_st() noexcept;

  // The cleaner's standby segment (Space, space.h): allocated ahead, so the
  // cleaner can always finish a victim whose live bytes fit in room(), even
  // when the pool has no free segment left; the next segment it switches to
  // is the standby, and ensure_standby() allocates the next one (it can
  // fail while the pool is full: room() then is the head's rest only).
  // Crash table: the standby is on the log chain from its allocation on
  // (L1), nobody's head, user[0..1] = 0 (no tail, nothing live); after a
  // clean close or a crash the next open registers it as a sealed segment
  // with nothing live, which the cleaner frees without copying.
  bool ensure_standby() noexcept;
  uint64_t room() const noexcept;

  uint64_t segments_allocated() const noexcept { return segments_; }
  uint64_t bytes_appended() const noexcept { return appended_.load(std::memory_order_relaxed); }
  // From any thread (statistics).
  uint64_t bytes_appended_relaxed() const noexcept { return appended_.load(std::memory_order_relaxed); }

 private:
  bool next_segment() noexcept;

  IndexImpl& idx_;
  pmem::Pool& pool_;
  pmem::SegmentAllocator& alloc_;
  LogSegTable& segs_;
  IndexRoot* root_;
  LogSegInfo* info_ = nullptr;
  unsigned worker_;
  pmem::SegmentHeader* cur_ = nullptr;
  uint64_t tail_ = 0;   // bytes used in cur_'s data area
  uint64_t wb_ = 0;     // bytes of cur_'s data area already written back
  pmem::PersistBatch* pending_batch_ = nullptr;  // where the old segment's tail goes on a switch
  static constexpr unsigned kMaxRetired = 16;
  LogSegInfo* retired_[kMaxRetired] = {};        // old heads awaiting seal_retired_st()
  unsigned nretired_ = 0;
  uint64_t segments_ = 0;
  std::atomic<uint64_t> appended_{0};  // written by the owner only (load + store)
  std::chrono::steady_clock::time_point last_failure_{};  // of next_segment()
  uint64_t standby_ = 0;  // POff of the standby segment (cleaner's log only), 0: none
};

}  // namespace ferrite::index
