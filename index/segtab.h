// LogSegTable: volatile directory of the pool's log segments, for the
// cleaner. Maps a record offset to its segment in O(1) and keeps each
// segment's live-byte count (bytes of records that index slots point at).
//
// Lookup: a segment is registered over [off, off + segment_size), and a
// granule of segment_size bytes of the pool has room for two of them:
// granule_[2g], [2g+1] hold their ids + 1 (0 = none). Registered ranges run
// up to 64 bytes past a segment's real end (pmem/segment.h: it starts up to
// 64 bytes into its object), so a third can meet a granule: add() then
// leaves it out of that granule. The e2e space_soak test (evict mode) shows
// this happens; whether records of it can lie there (find() would miss
// them: live-byte statistics only) is not yet established.
//
// Entry states (LogSegInfo::use): free -> head (a log appends to it) ->
// sealed (cleanable; open registers every segment so, and a log that
// resumes its head after a clean close makes it head again) -> cleaning (one
// cleaner pass owns it) -> free by remove(), or back to sealed when the pass
// ran out of room. An entry (its id, and its space in the pool) is reused
// only after remove(), which the cleaner calls once the segment's QSBR grace
// period has ended: no reader still holds one of its records.
//
// Thread safety: add() is called by a segment's allocating thread before any
// record in it is published (so a reader that learned a record's offset
// through a slot (acquire) sees the entry); remove() by the cleaner after the
// segment's QSBR grace period. Live counts are relaxed atomics: statistics
// that steer the cleaner, never correctness (the cleaner re-checks every
// record against the index). A live count may dip below 0 for a moment (a
// record's bytes are added just after the CAS that publishes it, so a
// writer that replaces it at once can subtract first), but it is never
// negative once no op that touched the segment's records runs: checked when
// the cleaner frees the segment, past its grace period (cleaner.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/cacheline.h"
#include "pmem/segment.h"

namespace ferrite::index {

enum SegUse : uint8_t { kSegFree = 0, kSegHead = 1, kSegSealed = 2, kSegCleaning = 3 };

struct LogSegInfo {
  std::atomic<uint64_t> off{0};          // POff of the SegmentHeader; 0 = unused entry
  std::atomic<int64_t> live{0};          // live record bytes
  std::atomic<uint64_t> tail{~0ull};     // bytes appended; ~0 = unknown (walk until invalid)
  std::atomic<uint8_t> use{kSegFree};
  uint32_t owner = 0;
  std::atomic<uint64_t> seq{0};          // SegmentHeader::seq: allocation order (the cleaner's age, the eviction hand)
};

class LogSegTable {
 public:
  LogSegTable(std::size_t pool_size, std::size_t seg_size)
      : seg_size_(seg_size),
        cap_(pool_size / seg_size + 2),
        infos_(new LogSegInfo[cap_]),
        granule_(new std::atomic<uint32_t>[2 * cap_]) {
    for (std::size_t i = 0; i < 2 * cap_; ++i) granule_[i].store(0, std::memory_order_relaxed);
  }

  // Registers a segment; returns its id.
  uint32_t add(uint64_t off, uint32_t owner, SegUse use, uint64_t tail, int64_t live, uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    uint32_t id = 0;
    while (id < cap_ && infos_[id].off.load(std::memory_order_relaxed) != 0) ++id;
    // cap_ entries hold every segment the pool can (pool_size / seg_size).
    FERRITE_CHECK(id < cap_);
    LogSegInfo& e = infos_[id];
    FERRITE_DCHECK(e.use.load(std::memory_order_relaxed) == kSegFree);
    e.owner = owner;
    e.seq.store(seq, std::memory_order_relaxed);
    e.live.store(live, std::memory_order_relaxed);
    e.tail.store(tail, std::memory_order_relaxed);
    e.use.store(use, std::memory_order_relaxed);
    e.off.store(off, std::memory_order_release);
    count_.fetch_add(1, std::memory_order_relaxed);
    // Invariant: a granule (seg_size_ bytes of the pool) overlaps at most two
    // registered segments, since registered segments never overlap: a freed
    // segment leaves the table before its space can be allocated again
    // (cleaner.cc). So a free slot is always there.
    for (uint64_t g = off / seg_size_; g <= (off + seg_size_ - 1) / seg_size_ && g < cap_; ++g) {
      bool registered = false;
      for (int k = 0; k < 2 && !registered; ++k) {
        uint32_t z = 0;
        registered = granule_[2 * g + k].compare_exchange_strong(z, id + 1, std::memory_order_release);
      }
      FERRITE_CHECK(registered);
    }
    return id;
  }

  // The caller owns the entry (kSegCleaning) and its grace period has ended.
  void remove(uint32_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t off = infos_[id].off.load(std::memory_order_relaxed);
    FERRITE_CHECK(off != 0 && infos_[id].use.load(std::memory_order_relaxed) == kSegCleaning);
    for (uint64_t g = off / seg_size_; g <= (off + seg_size_ - 1) / seg_size_ && g < cap_; ++g) {
      for (int k = 0; k < 2; ++k) {
        uint32_t v = id + 1;
        if (granule_[2 * g + k].compare_exchange_strong(v, 0, std::memory_order_release)) break;
      }
    }
    infos_[id].use.store(kSegFree, std::memory_order_relaxed);
    infos_[id].off.store(0, std::memory_order_release);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }

  // Segments registered now (relaxed: space accounting).
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

  // The segment holding pool offset rec_off, or nullptr.
  LogSegInfo* find(uint64_t rec_off) noexcept {
    const uint64_t g = rec_off / seg_size_;
    if (g >= cap_) return nullptr;
    for (int k = 0; k < 2; ++k) {
      const uint32_t id = granule_[2 * g + k].load(std::memory_order_acquire);
      if (id == 0) continue;
      LogSegInfo& e = infos_[id - 1];
      const uint64_t off = e.off.load(std::memory_order_acquire);
      if (off != 0 && rec_off >= off && rec_off < off + seg_size_) return &e;
    }
    return nullptr;
  }

  std::size_t capacity() const noexcept { return cap_; }
  LogSegInfo& at(std::size_t id) noexcept { return infos_[id]; }
  uint32_t id_of(const LogSegInfo* e) const noexcept { return static_cast<uint32_t>(e - infos_.get()); }

 private:
  std::size_t seg_size_;
  std::size_t cap_;
  std::unique_ptr<LogSegInfo[]> infos_;
  std::unique_ptr<std::atomic<uint32_t>[]> granule_;
  std::mutex mu_;  // serializes add/remove (segment allocation rate: rare)
  std::atomic<uint64_t> count_{0};
};

}  // namespace ferrite::index
