// The log cleaner and the expiry sweep.
//
// Cleaning a sealed log segment V:
//  C1  walk V's records up to its tail (or the first invalid record when the
//      tail is unknown after a crash). A record R is live iff the key's slot
//      points exactly at R (find()); everything else is dead and skipped.
//  C2  copy each live R to the cleaner's own log, write back. A slot that
//      names R only as a deleted or expired key becomes a dead tombstone
//      instead (no copy, no space needed: a full pool can still be cleaned).
//      An eviction pass does the same to a live key whose record was not
//      read since the last pass (read bit clear): the key is evicted.
//  P1  fence                                     -- copies durable (inv. 1)
//  C3  CAS each slot from the word that pointed at R to the copy | dirty;
//      write the slot back. A failed CAS means a writer replaced the key
//      (the copy is dead) or a split froze the slot (wait, find the key in
//      the successor, retry while it still points at R).
//  P2  fence                                     -- no durable slot points into V
//  C4  retire V through QSBR; free it once no worker can still be reading
//      one of its records, unlinked from the log chain in the same
//      libpmemobj transaction (log_chain.h).
// Crash table:
//  before P1: copies are unreferenced garbage in the cleaner's segment.
//  P1..P2: each slot points at R or at its copy; both durable, same content.
//  after P2, before the free: V is allocated but dead; the next cleaning
//    pass walks it, finds nothing live and frees it.
// Nothing else writes records into V (it is sealed), and no op publishes a
// word naming a record it did not just write, except delete, which CASes
// the word it observed (so it fails and retries if the cleaner moved R).
// Eviction is durable: the dead tombstone of an evicted key is durable at
// P2, before V (its only record) can be freed, and no older record of the
// key is named by any slot, so a crash or restart cannot bring it back. A
// record of a burst that has not returned is never evicted: its segment is
// the writer's head, or sealed only after the burst's P2 (log.h), and an
// eviction pass takes the oldest sealed segments first.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/crash_point.h"
#include "common/hash.h"
#include "common/log.h"
#include "index/cleaner.h"
#include "index/space.h"

namespace ferrite::index {

void Cleaner::flush_moves(std::vector<Move>& moves, CleanStats* st) {
  if (moves.empty()) return;
  log_.writeback_tail_nodrain(batch_);
  FERRITE_CRASH_POINT(crash::kCleanerAfterCopyFlush);
  batch_.commit();  // P1: copies durable
  std::vector<std::pair<std::atomic<uint64_t>*, uint64_t>> published;
  for (Move& m : moves) {
    // C2 recorded the word that named R, and R is in the victim.
    FERRITE_DCHECK(slot::rec_off(m.expected) == static_cast<uint64_t>(reinterpret_cast<const char*>(m.from) - idx_.base_));
    for (;;) {
      uint64_t exp = m.expected;
      // Never CAS a frozen slot: a split already copied its entry into a
      // successor, so the new word would be lost there while the successor
      // keeps naming R in V -- and V is freed below (a slot naming freed
      // space once the split publishes; found by ferrite-crashtest).
      // find_for_write() below waits for the split and finds the successor.
      if (!slot::is_moved(exp) &&
          m.slot->compare_exchange_strong(exp, m.word | slot::kDirty, std::memory_order_acq_rel)) {  // C3
        batch_.add(m.slot, sizeof(uint64_t));
        published.emplace_back(m.slot, m.word | slot::kDirty);
        switch (m.kind) {
          case MoveKind::kCopy:
            idx_.account_live(m.from, -static_cast<int64_t>(m.from->size()));
            idx_.account_live(m.to, static_cast<int64_t>(m.to->size()));
            ++st->records_moved;
            st->bytes_moved += m.to->size();
            idx_.space_->bytes_copied.fetch_add(m.to->size(), std::memory_order_relaxed);
            break;
          case MoveKind::kDrop:
            break;  // a deleted key: its live bytes and key count went at the delete
          case MoveKind::kExpire:
          case MoveKind::kEvict:
            // A key that counted as live is gone: the cleaner's key counter
            // (shared with the expiry sweep, both under clean_mu_).
            idx_.account_live(m.from, -static_cast<int64_t>(m.from->size()));
            idx_.counters_[idx_.opts_.workers].keys.fetch_sub(1, std::memory_order_relaxed);
            idx_.census_->note_shared(idx_.opts_.workers, m.from, -1);
            if (m.kind == MoveKind::kEvict) {
              ++st->evicted;
              idx_.space_->evictions.fetch_add(1, std::memory_order_relaxed);
            } else {
              ++st->expired_dropped;
              idx_.space_->expired_reclaimed.fetch_add(1, std::memory_order_relaxed);
            }
            break;
        }
        break;
      }
      // Changed under us. Still pointing at the same record (a split moved
      // the entry, or only the dirty bit changed)? Then retry there.
      Lookup lk;
      if (idx_.find_for_write(m.from->key(), m.h, &lk) != Result::kOk) break;
      if (!lk.found || slot::rec_off(lk.value) != slot::rec_off(m.expected)) {
        break;  // a writer replaced the key: the copy is dead
      }
      if (slot::is_tombstone(lk.value) != slot::is_tombstone(m.expected)) {
        if (!slot::is_tombstone(lk.value)) break;
        // Deleted (or expired by the sweep) since C1: the tombstone still
        // names R, and V is about to be freed, so it must become a dead
        // tombstone like the deleted keys C2 finds (the copy is dead).
        // Leaving it would let a slot name freed space, which a later log
        // segment reuses: another key's record behind a tombstone hides
        // that key (found by ferrite-crashtest).
        m.word = slot::kDead;
        m.to = nullptr;
        m.kind = MoveKind::kDrop;
      }
      m.slot = lk.slot;
      m.expected = lk.value;
    }
  }
  FERRITE_CRASH_POINT(crash::kCleanerAfterSlotCas);
  batch_.commit();  // P2
  log_.seal_retired_st();  // the cleaner's own old heads, now that its copies are published
  for (auto& [sl, w] : published) {
    uint64_t e = w;
    (void)sl->compare_exchange_strong(e, w & ~slot::kDirty, std::memory_order_release, std::memory_order_relaxed);
  }
  moves.clear();
}

bool Cleaner::clean_segment(LogSegInfo& v, CleanStats* st, bool evict) {
  const uint64_t voff = v.off.load(std::memory_order_acquire);
  auto* vh = idx_.pool_.ptr(pmem::POff<pmem::SegmentHeader>(voff));
  // No reservation up front: copies fill the cleaner's segments densely. If
  // the pool cannot give the cleaner a segment mid-way, V stays sealed with
  // fewer live records and is finished by a later pass; victims with nothing
  // live are freed without needing any room, so a full pool recovers as soon
  // as deletes or overwrites leave whole segments dead.
  uint8_t sealed = kSegSealed;
  if (!v.use.compare_exchange_strong(sealed, kSegCleaning, std::memory_order_acq_rel)) return false;

  idx_.qsbr_.online(qsbr_slot_);
  const uint64_t moved_before = st->records_moved;
  const uint64_t t = idx_.now();
  const uint64_t limit = std::min<uint64_t>(v.tail.load(std::memory_order_relaxed), vh->data_size());
  const char* data = vh->data();
  bool out_of_room = false;
  for (uint64_t pos = 0; pos + sizeof(RecordHeader) <= limit;) {
    const auto* r = reinterpret_cast<const RecordHeader*>(data + pos);
    if (!record_valid(r, limit - pos)) break;  // C1: end of what was written
    pos += r->size();
    // Read bits are taken for every record walked, so none outlives V into
    // the segment that reuses its space.
    const bool was_read = idx_.space_->take_read(static_cast<uint64_t>(reinterpret_cast<const char*>(r) - idx_.base_));
    const uint64_t h = hash_key(r->key());
    Lookup lk = idx_.find(r->key(), h);
    if (!lk.found || lk.rec != r) continue;  // dead
    const bool tomb = slot::is_tombstone(lk.value);
    const bool expired = !tomb && r->expiry != 0 && r->expiry <= t;
    const bool evicted = !tomb && !expired && evict && !was_read;
    if (tomb || expired || evicted) {
      // A deleted, expired or evicted key needs no copy: its slot becomes a
      // dead tombstone that names no record (slot::kDead). The key is absent
      // either way; a later insert of it takes the first empty slot, and a
      // writer that raced us on this slot fails its CAS and looks again.
      const MoveKind kind = tomb ? MoveKind::kDrop : expired ? MoveKind::kExpire : MoveKind::kEvict;
      moves_.push_back(Move{lk.slot, lk.value, slot::kDead, r, nullptr, h, kind});
    } else {
      char* dst = log_.reserve_st(r->size());
      if (dst == nullptr) {
        out_of_room = true;
        break;
      }
      std::memcpy(dst, r, r->size());  // C2: same bytes, same checksum
      log_.writeback_full_lines_nodrain(batch_);
      const uint64_t word = slot::make(static_cast<uint64_t>(dst - idx_.base_), slot::tag_of(h), false);
      moves_.push_back(Move{lk.slot, lk.value, word, r, reinterpret_cast<const RecordHeader*>(dst), h, MoveKind::kCopy});
    }
    if (moves_.size() >= 32) flush_moves(moves_, st);
  }
  flush_moves(moves_, st);
  log_.seal_retired_st();
  idx_.qsbr_.offline(qsbr_slot_);
  // V is still ours: nothing else moves a segment out of kSegCleaning.
  FERRITE_DCHECK(v.use.load(std::memory_order_relaxed) == kSegCleaning);
  if (out_of_room) {
    v.use.store(kSegSealed, std::memory_order_release);
    ++st->skipped_no_space;
    return false;
  }
  // C4: free V once every worker has quiesced.
  const uint32_t id = idx_.segs_.id_of(&v);
  const bool empty = st->records_moved == moved_before;
  idx_.qsbr_.retire([this, voff, id, empty] {
    // Past V's grace period: V's entry is still V's and still ours (no
    // segment is reused while readers may hold it), and every op that
    // touched V's records has finished, so its live count has settled: it
    // is never negative (segtab.h).
    const LogSegInfo& e = idx_.segs_.at(id);
    FERRITE_CHECK(e.off.load(std::memory_order_relaxed) == voff);
    FERRITE_DCHECK(e.use.load(std::memory_order_relaxed) == kSegCleaning);
    FERRITE_DCHECK(e.live.load(std::memory_order_relaxed) >= 0);
    FERRITE_CRASH_POINT(crash::kCleanerBeforeFree);
    // V leaves the segment table before its space is freed: once freed, the
    // allocator may hand the same space to a new segment at once, whose
    // registration needs V's granule slots (segtab.h, LogSegTable::add).
    // Removed after the free, a new segment could find both slots of a
    // granule taken, go unregistered there, and have its records' live bytes
    // land on V's entry (then lost) or nowhere: its live count would go
    // negative (seen as this check firing in space_soak under load).
    idx_.segs_.remove(id);
    // One transaction: unlinked from the log chain, any log head naming V
    // cleared, freed (IndexImpl::release_log_segment).
    Status s = idx_.release_log_segment(voff);
    if (!s.is_ok()) {
      log_warn("cleaner: could not free log segment: {}", s.to_string());
    } else {
      idx_.space_->bytes_freed.fetch_add(idx_.alloc_.segment_size(), std::memory_order_relaxed);
      idx_.space_->segments_freed.fetch_add(1, std::memory_order_relaxed);
      if (empty) idx_.space_->segments_freed_empty.fetch_add(1, std::memory_order_relaxed);
    }
  });
  ++st->segments_cleaned;
  return true;
}

CleanStats IndexImpl::clean(const CleanOptions& opts) {
  // Live bytes per log segment are known only once crash repair is done.
  if (repair_pending()) return {};
  std::lock_guard<std::mutex> lock(clean_mu_);
  if (!cleaner_) cleaner_ = std::make_unique<Cleaner>(*this);
  CleanStats st;
  const double cap = static_cast<double>(alloc_.segment_size() - sizeof(pmem::SegmentHeader));
  // Victim order (space.h). Eviction: oldest first (the FIFO hand).
  // Cleaning: cost-benefit, highest first: (1 - u) * age / (1 + u), u the
  // live share, age the distance in allocation order from the newest
  // segment; nothing live scores highest (freed without a copy).
  struct Victim {
    double score;
    uint32_t id;
  };
  std::vector<Victim> victims;
  uint64_t newest = 0;
  for (std::size_t i = 0; i < segs_.capacity(); ++i) {
    LogSegInfo& e = segs_.at(i);
    if (e.off.load(std::memory_order_acquire) != 0) newest = std::max(newest, e.seq.load(std::memory_order_relaxed));
  }
  for (std::size_t i = 0; i < segs_.capacity(); ++i) {
    LogSegInfo& e = segs_.at(i);
    if (e.off.load(std::memory_order_acquire) == 0 || e.use.load(std::memory_order_acquire) != kSegSealed) continue;
    const double u = std::max(0.0, static_cast<double>(e.live.load(std::memory_order_relaxed)) / cap);
    const uint64_t seq = e.seq.load(std::memory_order_relaxed);
    if (opts.evict) {
      victims.push_back({-static_cast<double>(seq), static_cast<uint32_t>(i)});
    } else if (u <= opts.max_live_ratio) {
      const double age = static_cast<double>(newest - std::min(newest, seq) + 1);
      const double score = u <= 0.0 ? HUGE_VAL : (1.0 - u) * age / (1.0 + u);
      victims.push_back({score, static_cast<uint32_t>(i)});
    }
  }
  std::sort(victims.begin(), victims.end(), [](const Victim& a, const Victim& b) { return a.score > b.score; });
  // With the background cleaner, workers take segments only while the
  // cleaner holds its standby (Space::worker_may_allocate), and a victim is
  // started only if its live bytes fit in the cleaner's room: so a victim,
  // once started, is finished and freed, whatever the workers do meanwhile.
  const bool managed = space_->managed();
  if (managed) space_->set_cleaner_ready(cleaner_->ensure_standby());
  for (const Victim& v : victims) {
    if (st.segments_cleaned >= opts.max_segments) break;
    if (managed && !opts.evict &&
        static_cast<uint64_t>(std::max<int64_t>(0, segs_.at(v.id).live.load(std::memory_order_relaxed))) >
            cleaner_->room()) {
      continue;
    }
    const uint64_t skipped = st.skipped_no_space;
    cleaner_->clean_segment(segs_.at(v.id), &st, opts.evict);
    qsbr_.reclaim();
    if (managed) space_->set_cleaner_ready(cleaner_->ensure_standby());
    if (st.skipped_no_space != skipped) break;  // no room to copy into: the next victim would fare no better
  }
  qsbr_.reclaim();
  if (managed) space_->set_cleaner_ready(cleaner_->ensure_standby());
  return st;
}

uint64_t IndexImpl::sweep_expired(uint64_t max_slots, bool wait) {
  // The sweep reads slots without find(): it waits until every segment is repaired.
  if (repair_pending()) return 0;
  std::unique_lock<std::mutex> lock(clean_mu_, std::defer_lock);
  if (wait) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return 0;
  }
  qsbr_.online(control_slot_ + 1);
  const uint64_t t = now();
  uint64_t expired = 0;
  pmem::PersistBatch batch(pool_.persister());
  Directory* d = dir();
  const uint64_t nseg_entries = 1ull << d->depth;
  constexpr uint64_t kSegSlots = kBucketsPerSegment * kSlotsPerBucket;
  for (uint64_t done = 0; done < max_slots; ++done, ++sweep_cursor_) {
    const uint64_t entry = (sweep_cursor_ / kSegSlots) % nseg_entries;
    const uint64_t si = sweep_cursor_ % kSegSlots;
    TableSegment* s = seg(d->seg[entry].load(std::memory_order_acquire));
    std::atomic<uint64_t>& w = s->buckets[si / kSlotsPerBucket].slots[si % kSlotsPerBucket];
    uint64_t v = w.load(std::memory_order_acquire);
    if (slot::is_empty(v) || slot::is_tombstone(v) || slot::is_moved(v)) continue;
    const RecordHeader* r = record(v);
    if (r->expiry == 0 || r->expiry > t) continue;
    // Expired: set the tombstone bit (the record still names the key).
    if (w.compare_exchange_strong(v, (v | slot::kTombstone) & ~slot::kDirty, std::memory_order_acq_rel)) {
      batch.add(&w, sizeof(uint64_t));
      account_live(r, -static_cast<int64_t>(r->size()));
      counters_[opts_.workers].keys.fetch_sub(1, std::memory_order_relaxed);  // under clean_mu_
      census_->note_shared(opts_.workers, r, -1);
      ++expired;
    }
  }
  batch.commit();
  qsbr_.offline(control_slot_ + 1);
  return expired;
}

CleanStats Index::clean(const CleanOptions& opts) { return impl_->clean(opts); }
uint64_t Index::sweep_expired(uint64_t max_slots, bool wait) { return impl_->sweep_expired(max_slots, wait); }

}  // namespace ferrite::index
