// The lock-free lookup: find() (readers), find_for_write() (a writer's view
// of the key's slot), read_intact() (verify-on-read of a record).
//
// Lookup protocol (readers, any thread):
//  A1  d = root.dir (acquire)                         pairs with R3 (dir switch)
//  A2  s = d.seg[top G bits of h] (acquire)          pairs with R4 (split publish)
//  A3  for the 32 probe slots: w = slot (acquire)     pairs with R2 (writer CAS)
//        empty -> key absent (T2); tag match -> compare the record's key
//  A4  re-read root.dir and d.seg[j] (acquire): if either changed, a split
//      (or a doubling) has replaced s since A2; retry from A1
// Between A2 and A3, ensure_repaired(s) (repair.cc): after a dirty shutdown
// the first toucher of s repairs it (or waits for its repairer) before any
// slot of s is read; otherwise one predictable branch.
// A reader never waits for a writer; it looks again only when a split or a
// doubling switched its directory entry while it read (bounded: each retry
// follows a switch that completed).
// Why A4 reads the directory and not s.state: the entry and root.dir are the
// lines A1/A2 just read (in L1); s.state is on the segment's header line:
// one more cache miss per lookup at 10M keys (and with 4 KiB pages one more
// page walk: a segment spans five pages), which the burst's prefetch passes
// did not cover (42% of find()'s samples in a 10M-key batched GET run).
// A writer writes into a successor only after it has seen the switch (A2 of
// its own lookup) and the successor unfrozen (split.cc S5), so a lookup that sees the entry still naming s at A4 read
// s's slots before any successor write: the successors then held nothing s
// did not. Until the switch (split.cc S4) a lookup keeps returning s, whose
// slots are frozen (moved) and complete; find_for_write() never writes a
// moved slot: it looks again until the switch (or a failed split's unfreeze)
// is visible, and, in a successor, until its split's switch is durable
// (split.cc S5).
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "index/bucket_scan.h"
#include "index/index_impl.h"

namespace ferrite::index {

Lookup IndexImpl::find(std::string_view key, uint64_t h) const noexcept {
  const uint16_t tag = slot::tag_of(h);
  for (;;) {
    Directory* d = dir();                                                                  // A1
    std::atomic<uint64_t>& entry = d->seg[dir_index(h, static_cast<unsigned>(d->depth))];
    const uint64_t seg_off = entry.load(std::memory_order_acquire);                        // A2
    TableSegment* s = seg(seg_off);
    ensure_repaired(s);                                                                    // A5/A6 (repair.cc)
    Lookup r;
    r.seg = s;
    // The first bucket (where most keys are) without a branch per slot: a
    // branch on which slot matches would mispredict on most lookups, and
    // only once the bucket's cache miss is back, so the CPU could not run
    // ahead into the caller's next lookup while this one waits for memory.
    // Masks over the bucket's 8 words (bit i = probe position i), then one
    // well-predicted branch per candidate. Same rules as the loop below.
    Bucket& b0 = s->buckets[bucket1(h)];
    uint64_t w[kSlotsPerBucket];
#pragma GCC unroll 8
    for (unsigned i = 0; i < kSlotsPerBucket; ++i) w[i] = b0.slots[i].load(std::memory_order_acquire);  // A3
    const auto [match, empty, dirty] = scan_bucket(w, tag);  // bucket_scan.h: slot.h's predicates
    // T2: nothing past the first empty slot belongs to the key.
    const unsigned before_empty = (empty & (0u - empty)) - 1;  // all bits when none is empty
    for (unsigned cand = match & before_empty; cand != 0; cand &= cand - 1) {
      const unsigned i = static_cast<unsigned>(__builtin_ctz(cand));
      const RecordHeader* rec = record(w[i]);
      // The record's second line (verify-on-read reads the whole record;
      // 72 bytes for a 16-byte key and a 32-byte value): its miss overlaps
      // the first one's instead of following it.
      __builtin_prefetch(reinterpret_cast<const char*>(rec) + kCacheLine);
      if (FERRITE_LIKELY(rec->key_is(key))) {
        r.slot = &b0.slots[i];
        r.value = w[i];
        r.rec = rec;
        r.found = true;
        r.dirty_passed = dirty & ((2u << i) - 1);
        break;
      }
    }
    if (!r.found && empty != 0) {
      const unsigned e = static_cast<unsigned>(__builtin_ctz(empty));
      r.slot = &b0.slots[e];
      r.value = w[e];
      r.dirty_passed = dirty & ((1u << e) - 1);
    } else if (!r.found) {
      r.dirty_passed = dirty & 0xffu;  // every slot of the first bucket was passed
    }
    // The rest of the probe only when the first bucket settled nothing.
    const bool settled = r.found || empty != 0;
    for (unsigned i = settled ? kProbeSlots : kSlotsPerBucket; i < kProbeSlots; ++i) {
      std::atomic<uint64_t>* sl = probe_slot(s, h, i);
      const uint64_t v = sl->load(std::memory_order_acquire);                              // A3
      if (slot::is_empty(v)) {
        r.slot = sl;
        r.value = v;
        break;  // T2: the key cannot be past the first empty slot
      }
      if (FERRITE_UNLIKELY(slot::is_dirty(v))) r.dirty_passed |= 1u << i;
      if (slot::tag(v) != tag || slot::is_dead(v)) continue;
      const RecordHeader* rec = record(v);
      if (rec->key_is(key)) {
        r.slot = sl;
        r.value = v;
        r.rec = rec;
        r.found = true;
        break;
      }
    }
    // A4: pairs with R3 (dir switch) and R4 (split publish), as A1 and A2.
    if (FERRITE_UNLIKELY(entry.load(std::memory_order_acquire) != seg_off || dir() != d)) {
      cpu_relax();
      continue;
    }
    return r;
  }
}

Result IndexImpl::find_for_write(std::string_view key, uint64_t h, Lookup* out) noexcept {
  for (unsigned spins = 0;;) {
    Lookup lk = find(key, h);
    if (lk.slot == nullptr) {
      Result r = split(lk.seg);
      if (r != Result::kOk) return r;
      continue;
    }
    if (FERRITE_UNLIKELY(slot::is_moved(lk.value))) {
      // A frozen slot: never written, never cleared here; look again. A
      // split froze the segment (splitting), or retired it and has not
      // switched the directory yet (find() still returns it, A4): the
      // successors come, or the split fails and unfreezes (it clears the
      // moved bits before it stores normal). Clearing the bit would let this
      // write land in a segment whose contents a split already copied: lost.
      // Or the segment is a successor whose switch is visible but not yet
      // committed (split.cc S3/S5): a power failure now would roll the
      // directory back to the old segment, and a write here with it.
      // A crash leaves no moved bit behind: crash repair clears transient
      // bits before any lookup reads a slot of the segment (repair.cc).
      if (++spins % 1024 == 0) {
        std::this_thread::yield();  // the splitter may have been preempted (2 cores)
      } else {
        cpu_relax();
      }
      continue;
    }
    *out = lk;
    return Result::kOk;
  }
}

bool IndexImpl::read_intact(const RecordHeader* r) noexcept {
  const auto off = static_cast<uint64_t>(reinterpret_cast<const char*>(r) - base_);
  // Bounded by the mapping, not the record's segment: a header whose length
  // bits flipped may make the checksum read a neighbour's bytes (harmless,
  // the sum fails), never past the pool; and a get pays no segment-table
  // lookup or segment-header miss for it.
  const uint64_t size = pool_.size();
  if (FERRITE_LIKELY(off < size && record_valid(r, size - off) && is_value_kind(r->kind()))) return true;
  const uint64_t total = bad_reads_.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto t = static_cast<int64_t>(mono_now_ns());
  int64_t next = bad_read_log_ns_.load(std::memory_order_relaxed);
  if (t >= next && bad_read_log_ns_.compare_exchange_strong(next, t + 1'000'000'000, std::memory_order_relaxed)) {
    log_warn("index: record at {:#x} failed its checksum when read; key answered as a miss "
             "({} such reads since open; at most one line a second). Run ferrite-check on the pool",
             off, total);
  }
  return false;
}

}  // namespace ferrite::index
