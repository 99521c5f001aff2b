// Growth while serving: splitting a full table segment and doubling the
// directory. Only the worker whose insert found no room runs a split; other
// workers keep reading the frozen segment and wait (writers to that one
// segment only) until its successors are published and the switch durable.
//
// Split protocol for segment S (local depth d):
//  S1  CAS S.state normal -> splitting (one splitter; another that loses
//      the CAS waits while S is splitting, then looks again)
//  S2  freeze: set the moved bit in every slot (fetch_or). From here no CAS
//      on S succeeds, so S's contents are final; readers still use S.
//  S3  build 2^k successors privately (k = 1, or 0 to compact a segment that
//      is mostly tombstones; k grows if a successor overflows): rehash each
//      live entry's key, place it at its first empty probe slot, transient
//      bits cleared. Tombstones are dropped. Then freeze the successors too:
//      state splitting and the moved bit in every slot, empty ones included
//      (they stay frozen until the switch is durable, S5).
//  P3  write every successor line back, and every line of S that held a
//      dirty slot; fence                          -- successors durable, and
//      S holds durably every entry a successor holds
//  S4  under dir_mu_: double the directory if d + k > G (see below), then
//      S.state = retired (release: splitters waiting at S1 leave, and no
//      second split of S can start), then switch S's directory entries to the successors in one libpmemobj
//      transaction (R4, release stores; crash-atomic: the directory shows S
//      or all successors, never a mix; a lookup that sees its entry change
//      retries, A4 in lookup.cc).
//  S5  unfreeze the successors (after the commit): clear their moved bits,
//      state normal, write them back; fence. Writers wait until then.
//      Invariant (no write before the switch is durable): the switch's
//      stores are visible before the transaction commits, and a power
//      failure before the commit rolls the directory back to S. A write
//      acknowledged in a successor in that window would be gone with it (S
//      does not hold it). Frozen successors keep writers out, as the freeze
//      of S does (find_for_write waits on a moved slot; a second split of a
//      successor waits at S1 while it is splitting). Readers may read them:
//      whatever a successor holds, S holds durably (P3).
//  S6  retire S through QSBR; freed once every worker has quiesced.
// Crash table:
//  before the S4 transaction commits: S is still referenced and complete
//    (its state is reset and moved bits cleared by its crash repair); the
//    successors are unreferenced and freed by the orphan scan that follows
//    the crash repair (free_orphans in repair.cc).
//  after commit: successors are referenced and durable (P3); S is freed by
//    that orphan scan if the crash beat S6. A successor the crash left
//    frozen (before S5) is unfrozen by its crash repair, as S would be.
// Objects allocated or retired here that the directory does not name are
// listed in IndexImpl::unlinked_ while so, so that this session's orphan
// scan leaves them alone; every allocation and free here holds objects_mu_
// shared, so the scan's object walk never races one.
// What keeps writers out of S once it is copied is the freeze, not the state:
// a writer never writes a moved slot (find_for_write in lookup.cc looks again
// until the switch is visible), and a writer's CAS of a word it read before
// the freeze fails. A reader that read an old value in S and then sees the
// entry still naming S (A4) read it before any successor write existed.
//
// Directory doubling (under dir_mu_): allocate a directory of depth G+1 with
// entry j = old entry j/2, write it back, and switch IndexRoot::dir to it in
// one transaction (R3, pairs with A1). The old directory is retired through
// QSBR: readers holding it still find correct segments there, and see at
// A4 that root.dir changed, so they retry in the new one.
#include <algorithm>
#include <vector>

#include "common/crash_point.h"
#include "common/hash.h"
#include "common/log.h"
#include <string_view>

#include "index/index_impl.h"

namespace ferrite::index {
namespace {

// Places entry word w (key hash h) at its first empty probe slot in s.
bool place(TableSegment* s, uint64_t h, uint64_t w) noexcept {
  for (unsigned i = 0; i < kProbeSlots; ++i) {
    std::atomic<uint64_t>* sl = probe_slot(s, h, i);
    if (sl->load(std::memory_order_relaxed) == 0) {
      sl->store(w, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

// Undoes a freeze: S2 for a split that could not publish (S serves again
// as it was; S is ours, splitting or retired by a publication that rolled
// back), and S3's freeze of the successors once their switch is durable
// (S5). No writer changes a frozen slot (find_for_write waits on a moved
// one, and a CAS of a word read before the freeze fails), so the words are
// ours: plain stores. Release: a writer that sees the bit cleared (its
// acquire load, A3) sees the word the split placed. Written back here and
// fenced by the caller before the split returns: a slot left moved on media
// after a clean close would keep writers out of it for good (only crash
// repair clears the bit).
void unfreeze_nodrain(const pmem::Persister& persister, TableSegment* s) noexcept {
  FERRITE_DCHECK(s->state.load(std::memory_order_relaxed) != kSegNormal);
  for (auto& b : s->buckets) {
    for (auto& w : b.slots) {
      const uint64_t v = w.load(std::memory_order_relaxed);
      FERRITE_DCHECK(slot::is_moved(v));  // frozen: every slot
      w.store(v & ~slot::kMoved, std::memory_order_release);
    }
  }
  s->state.store(kSegNormal, std::memory_order_release);
  persister.flush_nodrain(s, sizeof(TableSegment));
}

void unfreeze(const pmem::Persister& persister, TableSegment* s) noexcept {
  unfreeze_nodrain(persister, s);
  persister.fence();
}

// S3's freeze of a successor, still private (named by nothing).
void freeze_successor(TableSegment* t) noexcept {
  t->state.store(kSegSplitting, std::memory_order_relaxed);
  for (auto& b : t->buckets) {
    for (auto& w : b.slots) w.store(w.load(std::memory_order_relaxed) | slot::kMoved, std::memory_order_relaxed);
  }
}

}  // namespace

void IndexImpl::note_unlinked(uint64_t obj_off, bool unlinked) {
  std::lock_guard<std::mutex> lock(unlinked_mu_);
  if (unlinked) {
    unlinked_.insert(obj_off);
  } else {
    unlinked_.erase(obj_off);
  }
}

void IndexImpl::free_object(uint64_t obj_off, const char* what) noexcept {
  PMEMoid oid{pmemobj_oid(pool_.root()).pool_uuid_lo, obj_off};
  std::shared_lock<std::shared_mutex> objects(objects_mu_);  // no orphan scan meanwhile
  Status st = pool_.transact([&](pmem::Tx& tx) { tx.free(oid); });
  if (!st.is_ok()) {
    // Stays in unlinked_: this session's orphan scan leaves it, the next
    // dirty open's frees it.
    log_warn("could not free a retired {}: {}", what, st.to_string());
    return;
  }
  note_unlinked(obj_off, false);
  if (std::string_view(what) == "table segment") table_segments_.fetch_sub(1, std::memory_order_relaxed);
}

Result IndexImpl::double_directory(unsigned min_depth) noexcept {
  Directory* old = dir();
  if (old->depth >= min_depth) return Result::kOk;
  if (min_depth > kMaxGlobalDepth) return Result::kNoSpace;
  const unsigned nd = min_depth;
  const unsigned shift = nd - static_cast<unsigned>(old->depth);
  Directory* fresh = nullptr;
  std::shared_lock<std::shared_mutex> objects(objects_mu_);  // allocates (the orphan scan waits)
  Status s = pool_.transact([&](pmem::Tx& tx) {
    PMEMoid d = tx.alloc(Directory::bytes_for(nd), kTypeDirectory, false);
    fresh = pool_.ptr<Directory>(d);
    fresh->magic = kDirMagic;
    fresh->depth = nd;
    fresh->obj_off = d.off;
    for (uint64_t j = 0; j < (1ull << nd); ++j) {
      fresh->seg[j].store(old->seg[j >> shift].load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    // P: the new directory is durable before the root can point at it.
    pool_.persister().persist(fresh, Directory::bytes_for(nd));
    tx.add_range(&root_->dir, sizeof(uint64_t));
    root_->dir.store(d.off, std::memory_order_release);  // R3: pairs with A1 in find()
    FERRITE_CRASH_POINT(crash::kSplitDirDoubleInTx);
  });
  if (!s.is_ok()) return s.code() == Status::Code::kNoSpace ? Result::kNoSpace : Result::kRetry;
  doublings_.fetch_add(1, std::memory_order_relaxed);
  dir_depth_.store(nd, std::memory_order_relaxed);
  FERRITE_CRASH_POINT(crash::kSplitAfterDirDouble);
  const uint64_t old_obj = old->obj_off;
  note_unlinked(old_obj, true);  // under dir_mu_: no orphan scan sees it unnamed and unlisted
  objects.unlock();              // free_object takes it again
  qsbr_.retire([this, old_obj] { free_object(old_obj, "directory"); });
  return Result::kOk;
}

Result IndexImpl::split(TableSegment* s) noexcept {
  ensure_repaired(s);  // successors count as repaired, so S must be first (repair.cc)
  uint32_t expect = kSegNormal;
  if (!s->state.compare_exchange_strong(expect, kSegSplitting, std::memory_order_acq_rel)) {  // S1
    while (s->state.load(std::memory_order_acquire) == kSegSplitting) cpu_relax();
    return Result::kOk;  // someone else split it; the caller looks again
  }
  // S2: freeze.
  std::vector<uint64_t> entries;
  entries.reserve(kBucketsPerSegment * kSlotsPerBucket);
  std::size_t tombstones = 0;
  // Lines of S holding a dirty slot (published, not yet fenced by its
  // writer): written back at P3, see there.
  std::vector<const Bucket*> dirty_lines;
  for (auto& b : s->buckets) {
    bool dirty = false;
    for (auto& w : b.slots) {
      const uint64_t v = w.fetch_or(slot::kMoved, std::memory_order_acq_rel);
      dirty |= slot::is_dirty(v);
      if (slot::is_empty(v)) continue;
      if (slot::is_tombstone(v)) {
        ++tombstones;
      } else {
        entries.push_back(slot::entry(v));
      }
    }
    if (dirty) dirty_lines.push_back(&b);
  }
  FERRITE_CRASH_POINT(crash::kSplitAfterFreeze);
  const unsigned d = s->local_depth;
  // Extendible hashing: a segment's local depth is at most the global depth,
  // and S serves exactly the hashes whose top d bits are its prefix.
  FERRITE_DCHECK(d <= dir()->depth && (d == 0 || (s->prefix >> d) == 0));
  // Compact at the same depth (k = 0) when dropping tombstones frees at least
  // a quarter of the slots; otherwise grow. A compaction that does not make
  // room is followed by a real split (no tombstones left), so growth always
  // makes progress.
  constexpr std::size_t kSlots = kBucketsPerSegment * kSlotsPerBucket;
  unsigned k = (tombstones * 4 >= kSlots) ? 0 : 1;
  std::vector<uint64_t> hashes(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    hashes[i] = hash_key(record(entries[i])->key());
    // Every live entry of S is a key S serves (its top d hash bits are S's
    // prefix): the directory routes no other key to S. O(1) per entry, on
    // the split path only.
    FERRITE_DCHECK(d == 0 || (hashes[i] >> (64 - d)) == s->prefix);
  }

  std::vector<TableSegment*> succ;
  for (;; ++k) {
    if (d + k > kMaxGlobalDepth) {
      unfreeze(pool_.persister(), s);
      return Result::kNoSpace;
    }
    succ.assign(1u << k, nullptr);
    Status st;
    {
      // The successors are named by nothing until S4: unlinked_ keeps the
      // orphan scan (repair.cc) off them, listed before it can run again.
      std::shared_lock<std::shared_mutex> objects(objects_mu_);
      st = pool_.transact([&](pmem::Tx& tx) {
        for (unsigned c = 0; c < succ.size(); ++c) {
          auto r = alloc_table_segment(tx, d + k, (s->prefix << k) | c);
          succ[c] = *r;
        }
      });
      if (st.is_ok()) {
        for (TableSegment* t : succ) note_unlinked(t->obj_off, true);
      }
    }
    if (!st.is_ok()) {
      unfreeze(pool_.persister(), s);  // pool full: no successor was published
      return Result::kNoSpace;
    }
    bool ok = true;
    for (std::size_t i = 0; i < entries.size() && ok; ++i) {
      // Successor c serves the k hash bits right below S's d prefix bits.
      const uint64_t c = k == 0 ? 0 : (hashes[i] << d) >> (64 - k);
      // The entry lands in the successor that serves its hash: the top d + k
      // bits are that successor's prefix.
      FERRITE_DCHECK(d + k == 0 || (hashes[i] >> (64 - (d + k))) == succ[c]->prefix);
      ok = place(succ[c], hashes[i], entries[i]);
    }
    if (ok) break;
    for (TableSegment* t : succ) free_object(t->obj_off, "table segment");  // never referenced
  }
  for (TableSegment* t : succ) freeze_successor(t);  // until S5
  // P3: successors durable before anything can point at them. And S's
  // lines that held a dirty slot: the successors hold that entry clean
  // (transient bits cleared), so a reader that reaches it through a
  // successor once the switch is visible (R4 stores precede the commit)
  // answers without a write-back of its own; if a crash then rolls the
  // switch back, S names the key again, and S's line must hold it durably
  // (the reader rule of slot.h, for a reader the dirty bit cannot reach;
  // test SplitRace.PowerFailureBeforeTheSwitchCommitsKeepsWhatAReaderSaw...).
  for (TableSegment* t : succ) pool_.persister().flush_nodrain(t, sizeof(TableSegment));
  for (const Bucket* b : dirty_lines) pool_.persister().flush_nodrain(b, sizeof(Bucket));
  pool_.persister().fence();
  FERRITE_CRASH_POINT(crash::kSplitAfterSuccessorsDurable);

  {
    std::lock_guard<std::mutex> lock(dir_mu_);
    if (double_directory(d + k) != Result::kOk) {
      for (TableSegment* t : succ) free_object(t->obj_off, "table segment");
      unfreeze(pool_.persister(), s);
      return Result::kNoSpace;
    }
    Directory* dr = dir();
    const unsigned g = static_cast<unsigned>(dr->depth);
    const uint64_t span = 1ull << (g - d);          // entries S covers
    const uint64_t first = s->prefix << (g - d);
    const uint64_t per = span >> k;                 // entries per successor
    // After the doubling, d + k <= G, and S's 2^(G-d) consecutive entries
    // from first all name S (only S's split changes them, and S is frozen
    // and ours). O(entries of S), under dir_mu_ on the split path.
    FERRITE_DCHECK(d + k <= g && per >= 1);
    for (uint64_t j = 0; j < span; ++j) {
      FERRITE_DCHECK(dr->seg[first + j].load(std::memory_order_relaxed) == pool_.off(s).raw());
    }
    s->state.store(kSegRetired, std::memory_order_release);  // before the switch (see above)
    FERRITE_CRASH_POINT(crash::kSplitAfterRetire);
    Status st = pool_.transact([&](pmem::Tx& tx) {
      tx.add_range(&dr->seg[first], span * sizeof(uint64_t));
      for (uint64_t j = 0; j < span; ++j) {
        // R4: pairs with A2 in find().
        dr->seg[first + j].store(pool_.off(succ[j / per]).raw(), std::memory_order_release);
      }
      FERRITE_CRASH_POINT(crash::kSplitPublishInTx);
    });
    if (!st.is_ok()) {
      // The transaction rolled the entries back to S: keep serving from S.
      log_error("split: directory update failed: {}", st.to_string());
      // No path is known where the switch was visible before a failure,
      // but if it were, a lookup could hold a successor, and a splitter
      // could wait on one at S1: retired sends that one back to look again
      // (in S), and QSBR frees them only once no lookup can hold them.
      for (TableSegment* t : succ) {
        t->state.store(kSegRetired, std::memory_order_release);
        const uint64_t obj = t->obj_off;
        qsbr_.retire([this, obj] { free_object(obj, "table segment"); });
      }
      unfreeze(pool_.persister(), s);
      return Result::kNoSpace;
    }
    // Under dir_mu_, as the switch: the successors are named, S is not.
    for (TableSegment* t : succ) note_unlinked(t->obj_off, false);
    note_unlinked(s->obj_off, true);
  }
  FERRITE_CRASH_POINT(crash::kSplitAfterPublish);
  // S5: the switch is durable (committed); writers may use the successors.
  for (TableSegment* t : succ) unfreeze_nodrain(pool_.persister(), t);
  pool_.persister().fence();
  splits_.fetch_add(1, std::memory_order_relaxed);
  // S6: free S once no reader can still hold it.
  const uint64_t obj = s->obj_off;
  qsbr_.retire([this, obj] { free_object(obj, "table segment"); });
  qsbr_.reclaim();
  return Result::kOk;
}

}  // namespace ferrite::index
