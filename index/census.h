// Census: live items and their bytes per size class, kept exact without a
// scan (memcached's `stats items` / `stats slabs`; server/memcached/items.h
// gives memcached's classes). Off unless IndexOptions::size_classes has
// bounds.
//
// Where the counts come from (each item counted once):
//  - base: at a clean open, the census the last clean close saved in the
//    pool root (pmem::SizeCensus), if it is this classing's and was written
//    by the session that closed (its stamp is that session's open count;
//    any other opener since, an older build or a tool, makes it unusable)
//    and its items add up to the key count that close saved (else it was
//    damaged);
//  - repaired: after a crash, each table segment's repair counts its live
//    records (repair.cc), before any op may touch the segment. A clean open
//    whose saved census is unusable opens as after a crash (index.cc), so
//    the repair counts everything; the cost is that repair pass, once;
//  - per counter slot, changes since open: a worker's publish (the record
//    it replaces out, the new one in: worker.cc try_publish), and on the
//    shared slot the cleaner's expiry and eviction and the expiry sweep
//    (under clean_mu_; cleaner.cc). A delete takes the key's record out at
//    its publish; the cleaner's relocation copies a record byte for byte,
//    so its class does not change.
// Like the key count, an item is counted from its publish (or repair) until
// its delete, overwrite, eviction or expiry sweep: an expired item still
// counts until the sweep or the cleaner takes it, as in memcached.
//
// Thread safety: note_st() only by the slot's owner; note_shared() and
// add_repaired() from any thread (atomic RMW); totals() from any thread
// (relaxed reads: exact when no writer runs). save()/load() on the control
// path (open, clean close).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "index/index.h"
#include "index/record.h"
#include "pmem/layout.h"

namespace ferrite::index {

class Census {
 public:
  Census(const SizeClasses& classes, unsigned slots);

  bool enabled() const noexcept { return n_ != 0; }
  unsigned classes() const noexcept { return n_; }

  // A crash repair's counts for one table segment (a local tally, then one
  // atomic add per class used).
  struct Tally {
    int64_t items[kMaxSizeClasses] = {};
    int64_t bytes[kMaxSizeClasses] = {};
  };
  void tally(Tally* t, const RecordHeader* r) const noexcept {
    uint64_t size = 0;
    const unsigned c = class_of(r, &size);
    t->items[c] += 1;
    t->bytes[c] += static_cast<int64_t>(size);
  }
  void add_repaired(const Tally& t) noexcept;

  // Record r counted in (sign +1) or out (-1) on slot `slot`. _st: only
  // its owner writes the slot.
  void note_st(unsigned slot, const RecordHeader* r, int sign) noexcept {
    if (n_ == 0) return;
    uint64_t size = 0;
    const unsigned c = class_of(r, &size);
    Counts& s = slots_[slot];
    s.items[c].store(s.items[c].load(std::memory_order_relaxed) + sign, std::memory_order_relaxed);
    s.bytes[c].store(s.bytes[c].load(std::memory_order_relaxed) + sign * static_cast<int64_t>(size),
                     std::memory_order_relaxed);
  }
  void note_shared(unsigned slot, const RecordHeader* r, int sign) noexcept {
    if (n_ == 0) return;
    uint64_t size = 0;
    const unsigned c = class_of(r, &size);
    slots_[slot].items[c].fetch_add(sign, std::memory_order_relaxed);
    slots_[slot].bytes[c].fetch_add(sign * static_cast<int64_t>(size), std::memory_order_relaxed);
  }

  // Items and bytes per class, class 1 first (classes() entries).
  std::vector<ClassCount> totals() const;

  // Clean close: the totals into the root's census, stamped with this
  // session's open count (0 when counting is off: nothing to trust later).
  // The caller writes it back and fences before the clean flag.
  void save(pmem::SizeCensus* dst, uint64_t open_count) const noexcept;
  // Clean open: takes the saved census as the base if it is usable (see
  // above; and its items must add up to keys, the key count the same close
  // saved, which catches a damaged census); open_count: the pool's now.
  // False if it is not usable.
  bool load(const pmem::SizeCensus& src, uint64_t open_count, uint64_t keys) noexcept;

 private:
  unsigned class_of(const RecordHeader* r, uint64_t* size) const noexcept;

  struct alignas(64) Counts {
    std::atomic<int64_t> items[kMaxSizeClasses] = {};
    std::atomic<int64_t> bytes[kMaxSizeClasses] = {};
  };
  SizeClasses def_;
  unsigned n_ = 0;
  unsigned nslots_ = 0;
  std::unique_ptr<Counts[]> slots_;
  Counts repaired_;
  int64_t base_items_[kMaxSizeClasses] = {};
  int64_t base_bytes_[kMaxSizeClasses] = {};
};

}  // namespace ferrite::index
