// Crash repair (repair.cc): lazy per-segment repair on first touch, the
// background pass, what repair does to slots on media (dirty and moved bits,
// torn or foreign records), exact counts with writers running during the
// pass, and a clean reopen that repairs nothing. A "crash" is
// Index::TEST_abandon() plus a pool closed without its clean flag; media are
// edited between sessions through a pool opened without an index.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "index/index.h"
#include "index/log_chain.h"
#include "index/record.h"
#include "index/slot.h"
#include "index/table.h"
#include "pmem/segment.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {


std::string key(int i) { return "key-" + std::to_string(i); }
std::string value(int i) { return "value-" + std::to_string(i) + "-0123456789abcdef"; }

// Media access while no index is open on the pool.
class Media {
 public:
  explicit Media(pmem::Pool& pool) : pool_(pool) {
    root_ = pool.ptr(pmem::POff<IndexRoot>(pool.root()->index_root));
    dir_ = pool.ptr(pmem::POff<Directory>(root_->dir.load()));
  }
  void for_each_segment(const std::function<void(TableSegment*)>& fn) {
    uint64_t prev = 0;
    for (uint64_t j = 0; j < (1ull << dir_->depth); ++j) {
      const uint64_t off = dir_->seg[j].load();
      if (off == prev) continue;
      prev = off;
      fn(pool_.ptr(pmem::POff<TableSegment>(off)));
    }
  }
  void for_each_slot(const std::function<void(std::atomic<uint64_t>&)>& fn) {
    for_each_segment([&](TableSegment* s) {
      for (auto& b : s->buckets) {
        for (auto& w : b.slots) fn(w);
      }
    });
  }
  // The slot holding k (value or tombstone), or null.
  std::atomic<uint64_t>* slot_of(std::string_view k) {
    const uint64_t h = hash_key(k);
    auto* s = pool_.ptr(pmem::POff<TableSegment>(dir_->seg[dir_index(h, static_cast<unsigned>(dir_->depth))].load()));
    for (unsigned i = 0; i < kProbeSlots; ++i) {
      std::atomic<uint64_t>* sl = probe_slot(s, h, i);
      const uint64_t w = sl->load();
      if (slot::is_empty(w)) return nullptr;
      if (slot::is_dead(w) || slot::tag(w) != slot::tag_of(h)) continue;
      if (rec(w)->key() == k) return sl;
    }
    return nullptr;
  }
  RecordHeader* rec(uint64_t w) { return reinterpret_cast<RecordHeader*>(pool_.base() + slot::rec_off(w)); }

 private:
  pmem::Pool& pool_;
  IndexRoot* root_;
  Directory* dir_;
};

// Objects of a libpmemobj type in the pool (nothing may allocate meanwhile).
uint64_t objects_of_type(pmem::Pool& pool, uint64_t type) {
  uint64_t n = 0;
  for (PMEMoid o = pmemobj_first(pool.handle()); !OID_IS_NULL(o); o = pmemobj_next(o)) {
    n += pmemobj_type_num(o) == type ? 1 : 0;
  }
  return n;
}

// L1 (log_chain.h): the chain lists exactly the pool's log segments.
void expect_chain_exact(pmem::Pool& pool, const std::string& what) {
  auto* root = pool.ptr(pmem::POff<IndexRoot>(pool.root()->index_root));
  std::vector<uint64_t> chain, logs;
  std::string why;
  ASSERT_TRUE(read_log_chain(pool, root, 1u << 20, &chain, &why)) << what << ": " << why;
  pmem::SegmentAllocator(pool).for_each_segment([&](pmem::POff<pmem::SegmentHeader> off, pmem::SegmentHeader* h) {
    if (h->kind == static_cast<uint32_t>(pmem::SegmentKind::kLog)) logs.push_back(off.raw());
  });
  std::sort(chain.begin(), chain.end());
  std::sort(logs.begin(), logs.end());
  EXPECT_GT(logs.size(), 0u) << what;
  EXPECT_EQ(chain, logs) << what;
}

class RecoveryTest : public testing::PoolIndexTest {
 protected:
  RecoveryTest() : PoolIndexTest("recovery") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(create_pool(256u << 20));
    open_index();
  }
  void open_index(IndexOptions o = {.workers = 2}) { PoolIndexTest::open_index(o); }
  // Crash: neither index nor pool closed cleanly; then the pool alone.
  void crash_and_open_pool() {
    idx_->TEST_abandon();
    idx_.reset();
    open_pool();
  }
  void crash_and_reopen(IndexOptions o = {.workers = 2}) {
    crash_and_open_pool();
    open_index(o);
  }
  void clean_reopen(IndexOptions o = {.workers = 2}) {
    idx_.reset();
    pool_->mark_clean_on_close();
    ASSERT_NO_FATAL_FAILURE(open_pool());
    open_index(o);
  }
  // Writes keys [from, to) in bursts with worker w.
  void fill(int from, int to, unsigned w = 0) {
    std::vector<std::string> ks, vs;
    std::vector<Op> ops;
    for (int base = from; base < to; base += 64) {
      ks.clear();
      vs.clear();
      ops.clear();
      for (int i = base; i < std::min(to, base + 64); ++i) {
        ks.push_back(key(i));
        vs.push_back(value(i));
      }
      for (std::size_t i = 0; i < ks.size(); ++i) ops.push_back(Op::set(ks[i], vs[i]));
      idx_->worker(w).execute(ops);
      for (const Op& o : ops) ASSERT_EQ(o.result, Result::kOk);
    }
  }
  Result set(std::string_view k, std::string_view v) {
    Op o = Op::set(k, v);
    return idx_->worker(0).execute_one(o);
  }
  Result del(int i, unsigned w = 0) {
    const std::string k = key(i);  // the op holds a view: keep the key alive
    Op o = Op::del(k);
    return idx_->worker(w).execute_one(o);
  }
  std::string get(std::string_view k, unsigned w = 0) {
    std::string out;
    Op o = Op::get(k, &out);
    return idx_->worker(w).execute_one(o) == Result::kOk ? out : "<" + std::string(result_name(o.result)) + ">";
  }
  uint64_t scanned() {
    uint64_t n = 0;
    EXPECT_TRUE(idx_->scan([&](std::string_view, std::string_view, uint32_t, uint32_t, uint64_t) { ++n; }).is_ok());
    return n;
  }
};

constexpr int kKeys = 60000;  // ~45 table segments

TEST_F(RecoveryTest, LazyRepairServesAtOnceThenCountsExactly) {
  fill(0, kKeys);
  for (int i = 0; i < kKeys; i += 5) ASSERT_EQ(del(i), Result::kOk);
  const uint64_t truth = kKeys - kKeys / 5;
  crash_and_reopen({.workers = 2, .background_repair = false});
  IndexStats st = idx_->stats();
  EXPECT_FALSE(st.repair_done);
  EXPECT_GT(st.recovery_pending_segments, 10u);
  EXPECT_GT(st.open_ms, 0.0);
  // First touches repair their segments: reads are right at once.
  for (int i = 0; i < kKeys; i += 97) {
    EXPECT_EQ(get(key(i)), i % 5 == 0 ? "<not found>" : value(i)) << i;
  }
  st = idx_->stats();
  EXPECT_GT(st.recovery_segments_lazy, 0u);
  EXPECT_FALSE(st.repair_done) << "97 keys do not touch every segment";
  EXPECT_EQ(idx_->clean({.max_live_ratio = 1.0, .max_segments = 100}).segments_cleaned, 0u)
      << "the cleaner waits for the repair (live bytes unknown)";
  EXPECT_EQ(idx_->sweep_expired(1u << 20), 0u);
  idx_->wait_repaired();
  st = idx_->stats();
  EXPECT_TRUE(st.repair_done);
  EXPECT_EQ(st.recovery_pending_segments, 0u);
  EXPECT_EQ(st.recovery_segments_lazy + st.recovery_segments_background, st.table_segments);
  EXPECT_EQ(st.recovery_bad_records, 0u);
  EXPECT_GT(st.repair_ms, 0.0);
  EXPECT_EQ(idx_->count(), truth);
  EXPECT_EQ(scanned(), truth);
  EXPECT_GT(st.log_bytes_live, truth * 24) << "live bytes recounted";
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(get(key(i)), i % 5 == 0 ? "<not found>" : value(i)) << i;
}

TEST_F(RecoveryTest, BackgroundPassRepairsEverySegment) {
  fill(0, kKeys);
  crash_and_reopen({.workers = 2, .repair_threads = 2});
  idx_->wait_repaired();
  const IndexStats st = idx_->stats();
  EXPECT_TRUE(st.repair_done);
  EXPECT_EQ(st.recovery_segments_lazy + st.recovery_segments_background, st.table_segments);
  EXPECT_GT(st.recovery_segments_background, 0u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  EXPECT_GT(st.repair_ms, 0.0);
  EXPECT_GE(st.repair_ms, st.open_ms);
}

TEST_F(RecoveryTest, DirtyAndMovedBitsAreClearedOnMedia) {
  fill(0, kKeys);
  crash_and_open_pool();
  {
    // What a crash can leave: slots published but not cleaned (W2..W3) and
    // a split frozen before it published (S2..S4).
    Media m(*pool_);
    int n = 0;
    m.for_each_slot([&](std::atomic<uint64_t>& w) {
      const uint64_t v = w.load();
      if (slot::is_empty(v)) return;
      w.store(v | (n % 2 == 0 ? slot::kDirty : slot::kDirty | slot::kMoved));
      ++n;
    });
    ASSERT_EQ(n, kKeys);
  }
  open_index();
  idx_->wait_repaired();
  {
    Media m(*pool_);
    int dirty = 0, moved = 0, live = 0;
    m.for_each_slot([&](std::atomic<uint64_t>& w) {
      const uint64_t v = w.load();
      dirty += slot::is_dirty(v);
      moved += slot::is_moved(v);
      live += !slot::is_empty(v) && !slot::is_tombstone(v);
    });
    EXPECT_EQ(dirty, 0);
    EXPECT_EQ(moved, 0);
    EXPECT_EQ(live, kKeys);
  }
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  EXPECT_EQ(idx_->stats().recovery_bad_records, 0u);
  // Writers work on the repaired slots (a leftover moved bit would block them).
  for (int i = 0; i < kKeys; i += 101) ASSERT_EQ(set(key(i), "new"), Result::kOk);
  EXPECT_EQ(get(key(101)), "new");
}

// What a crash between a split's commit and the unfreeze of its successors
// (split.cc S5) leaves: segments the directory names, state splitting, the
// moved bit in every slot, empty ones included. Repair unfreezes them; a
// leftover moved bit on an empty slot would hold every insert there, and a
// leftover splitting state every later split of the segment.
TEST_F(RecoveryTest, SuccessorsLeftFrozenBeforeTheirUnfreezeAreRepaired) {
  fill(0, kKeys);
  crash_and_open_pool();
  {
    Media m(*pool_);
    int segments = 0;
    m.for_each_segment([&](TableSegment* s) {
      s->state.store(kSegSplitting);
      ++segments;
    });
    ASSERT_GT(segments, 1) << "fill() should have split the first segment";
    m.for_each_slot([&](std::atomic<uint64_t>& w) { w.store(w.load() | slot::kMoved); });
  }
  open_index();
  idx_->wait_repaired();
  {
    Media m(*pool_);
    int moved = 0, not_normal = 0;
    m.for_each_slot([&](std::atomic<uint64_t>& w) { moved += slot::is_moved(w.load()); });
    m.for_each_segment([&](TableSegment* s) { not_normal += s->state.load() != kSegNormal; });
    // ASSERT: with a leftover the inserts below would wait forever.
    ASSERT_EQ(moved, 0);
    ASSERT_EQ(not_normal, 0);
  }
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  // Inserts into empty slots and the splits they cause go on.
  const uint64_t splits = idx_->stats().splits;
  fill(kKeys, 2 * kKeys);
  EXPECT_GT(idx_->stats().splits, splits);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(2 * kKeys));
  EXPECT_EQ(get(key(2 * kKeys - 1)), value(2 * kKeys - 1));
}

TEST_F(RecoveryTest, TornOrForeignRecordsBecomeDeadSlots) {
  fill(0, 5000);
  ASSERT_EQ(del(40), Result::kOk);
  crash_and_open_pool();
  {
    Media m(*pool_);
    // A torn record: a value byte overwritten (checksum fails).
    std::atomic<uint64_t>* a = m.slot_of(key(123));
    ASSERT_NE(a, nullptr);
    const_cast<char*>(m.rec(a->load())->value_ptr())[0] ^= 0x5a;
    // A foreign record: the slot of key 7 names key 8's (valid) record.
    std::atomic<uint64_t>* b = m.slot_of(key(7));
    std::atomic<uint64_t>* c = m.slot_of(key(8));
    ASSERT_NE(b, nullptr);
    ASSERT_NE(c, nullptr);
    b->store((b->load() & ~slot::kOffMask) | (c->load() & slot::kOffMask));
    // A tombstone whose record is torn.
    std::atomic<uint64_t>* d = m.slot_of(key(40));
    ASSERT_NE(d, nullptr);
    ASSERT_TRUE(slot::is_tombstone(d->load()));
    const_cast<char*>(m.rec(d->load())->value_ptr())[1] ^= 0x11;
    // A slot pointing outside every log segment (into its own table).
    std::atomic<uint64_t>* e = m.slot_of(key(9));
    ASSERT_NE(e, nullptr);
    e->store((e->load() & ~slot::kOffMask) | ((reinterpret_cast<char*>(e) - pool_->base()) >> 3));
  }
  open_index();
  idx_->wait_repaired();
  const IndexStats st = idx_->stats();
  EXPECT_EQ(st.recovery_bad_records, 4u);
  EXPECT_EQ(idx_->count(), 5000u - 1 - 3) << "torn, foreign and stray keys are gone; the tombstone was no key";
  EXPECT_EQ(scanned(), 5000u - 4);
  EXPECT_EQ(get(key(123)), "<not found>");
  EXPECT_EQ(get(key(7)), "<not found>");
  EXPECT_EQ(get(key(9)), "<not found>");
  EXPECT_EQ(get(key(40)), "<not found>");
  EXPECT_EQ(get(key(8)), value(8));
  EXPECT_EQ(get(key(124)), value(124));
  {
    Media m(*pool_);
    int dead = 0;
    m.for_each_slot([&](std::atomic<uint64_t>& w) { dead += slot::is_dead(w.load()); });
    EXPECT_EQ(dead, 4);
  }
  // The key can be written again (into the first empty slot; dead slots stay).
  ASSERT_EQ(set(key(123), "again"), Result::kOk);
  EXPECT_EQ(get(key(123)), "again");
  EXPECT_EQ(idx_->count(), 5000u - 4 + 1);
}

TEST_F(RecoveryTest, WritersDuringTheBackgroundPassKeepCountsExact) {
  fill(0, kKeys);
  crash_and_reopen({.workers = 2, .repair_threads = 2});
  // Two writers start at once: inserts (with splits), overwrites and deletes,
  // racing the lazy and background repairs of the same segments.
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 2; ++t) {
    ts.emplace_back([this, t] {
      std::vector<std::string> ks;
      std::vector<Op> ops;
      for (int base = 0; base < kKeys; base += 32) {
        ks.clear();
        ops.clear();
        for (int i = base; i < base + 32; ++i) {
          if (i % 2 != static_cast<int>(t)) continue;
          ks.push_back(key(i));
          ks.push_back(key(kKeys + i));
        }
        for (std::size_t j = 0; j < ks.size(); j += 2) {
          const int i = base + static_cast<int>(t + j);  // ks[j] is key(i)
          if (i % 6 < 2) {
            ops.push_back(Op::del(ks[j]));
          } else {
            ops.push_back(Op::set(ks[j], "over"));
          }
          ops.push_back(Op::set(ks[j + 1], "fresh"));
        }
        idx_->worker(t).execute(ops);
      }
    });
  }
  for (auto& th : ts) th.join();
  idx_->wait_repaired();
  const IndexStats st = idx_->stats();
  EXPECT_TRUE(st.repair_done);
  EXPECT_EQ(st.recovery_bad_records, 0u);
  const uint64_t n = scanned();
  EXPECT_EQ(idx_->count(), n);
  // And the truth survives a clean close (the saved count) and another crash (a recount).
  clean_reopen();
  EXPECT_EQ(idx_->count(), n);
  crash_and_reopen();
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), n);
}

TEST_F(RecoveryTest, CleanReopenRepairsNothing) {
  fill(0, kKeys);
  clean_reopen();
  const IndexStats st = idx_->stats();
  EXPECT_TRUE(st.repair_done);
  EXPECT_EQ(st.recovery_pending_segments, 0u);
  EXPECT_EQ(st.recovery_segments_lazy, 0u);
  EXPECT_EQ(st.recovery_segments_background, 0u);
  EXPECT_EQ(st.recovery_bad_records, 0u);
  EXPECT_EQ(st.repair_ms, 0.0);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  EXPECT_EQ(get(key(5)), value(5));
  EXPECT_EQ(idx_->stats().recovery_segments_lazy, 0u);
}

TEST_F(RecoveryTest, CloseWhileRepairingFinishesTheRepairFirst) {
  fill(0, kKeys);
  crash_and_reopen({.workers = 2, .repair_threads = 1});
  clean_reopen();  // the close waits for the pass, then saves an exact count
  EXPECT_EQ(idx_->stats().recovery_segments_background, 0u) << "a clean open";
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  crash_and_reopen({.workers = 2, .background_repair = false});
  clean_reopen();  // no pass running: the close repairs
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
}

TEST_F(RecoveryTest, CrashDuringRepairIsRepairedAgain) {
  fill(0, kKeys);
  for (int round = 0; round < 3; ++round) {
    crash_and_reopen({.workers = 2, .repair_threads = 2});
    EXPECT_EQ(get(key(round)), value(round));
  }
  crash_and_reopen();
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  EXPECT_EQ(idx_->stats().recovery_bad_records, 0u);
}

TEST_F(RecoveryTest, ReopenOnTheSamePoolAfterAbandonRepairsAgain) {
  // A second Index on the same Pool object has the pool's open count: the
  // repair epoch must still differ from the first one's.
  fill(0, kKeys);
  idx_->TEST_abandon();
  idx_.reset();
  open_index();
  idx_->TEST_abandon();
  idx_.reset();
  open_index();
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
}

TEST_F(RecoveryTest, CleanOpenWithoutAUsableLogChainEnumeratesSegments) {
  // The log chain (IndexRoot::log_chain) lists the log segments; a pool an
  // older build opened last may have none, and a chain that fails a check is
  // ignored: either way open finds the segments by enumeration, and rebuilds
  // the chain.
  fill(0, kKeys);
  const uint64_t segs = idx_->stats().log_segments;
  const uint64_t live = idx_->stats().log_bytes_live;
  ASSERT_GT(segs, 1u);
  for (int variant = 0; variant < 2; ++variant) {
    idx_.reset();
    pool_->mark_clean_on_close();
    pool_.reset();
    {
      auto p = pmem::Pool::open(path_.str());
      ASSERT_TRUE(p.is_ok());
      auto* root = p.value()->ptr(pmem::POff<IndexRoot>(p.value()->root()->index_root));
      ASSERT_EQ(root->clean, 1u);
      ASSERT_EQ(root->log_chain & 1, 1u) << "the chain is present";
      if (variant == 0) {
        root->log_chain = 0;  // as an older build leaves it
      } else {
        auto* h = p.value()->ptr(pmem::POff<pmem::SegmentHeader>(root->log_chain & ~uint64_t{1}));
        h->user[2] = 12345;  // a broken link
      }
      p.value()->mark_clean_on_close();
    }
    ASSERT_NO_FATAL_FAILURE(open_pool());
    open_index();
    EXPECT_EQ(idx_->TEST_open_enumerations(), 1u) << variant;
    const IndexStats st = idx_->stats();
    EXPECT_EQ(st.log_segments, segs) << variant;
    EXPECT_EQ(st.log_bytes_live, live) << variant;
    EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
    EXPECT_TRUE(st.repair_done);
    EXPECT_EQ(get(key(77)), value(77));
  }
  ASSERT_EQ(set("after", "chain"), Result::kOk);
  clean_reopen();
  EXPECT_EQ(idx_->TEST_open_enumerations(), 0u) << "the fallback rebuilt the chain";
  EXPECT_EQ(get("after"), "chain");
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys) + 1);
}

TEST_F(RecoveryTest, DirtyOpenEnumeratesNothingAndTheBackgroundPassFreesOrphans) {
  fill(0, kKeys);
  crash_and_open_pool();
  // What a crash mid-split leaves (successors allocated, not published; or
  // published and the old segment not yet freed): table segments and a
  // directory that nothing names.
  ASSERT_TRUE(pool_->transact([&](pmem::Tx& tx) {
                     for (int i = 0; i < 3; ++i) (void)tx.alloc(sizeof(TableSegment) + 64, kTypeTableSegment, true);
                     (void)tx.alloc(Directory::bytes_for(3), kTypeDirectory, true);
                   }).is_ok());
  // The crashed session may have left its own (a retired segment QSBR had
  // not freed yet): every object found here but not named is one.
  const uint64_t tables = objects_of_type(*pool_, kTypeTableSegment);
  const uint64_t dirs = objects_of_type(*pool_, kTypeDirectory);
  open_index({.workers = 2, .background_repair = false});
  EXPECT_EQ(idx_->TEST_open_enumerations(), 0u) << "a dirty open finds the log segments on the chain";
  EXPECT_FALSE(idx_->stats().repair_done);
  EXPECT_EQ(get(key(3)), value(3)) << "serves before the orphans are freed";
  EXPECT_EQ(objects_of_type(*pool_, kTypeTableSegment), tables) << "no object work at open";
  idx_->wait_repaired();
  IndexStats st = idx_->stats();
  EXPECT_TRUE(st.repair_done);
  EXPECT_GE(st.recovery_orphans_freed, 4u);
  EXPECT_EQ(st.recovery_orphans_freed, tables - st.table_segments + dirs - 1);
  EXPECT_EQ(objects_of_type(*pool_, kTypeTableSegment), st.table_segments);
  EXPECT_EQ(objects_of_type(*pool_, kTypeDirectory), 1u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  // A clean close leaves no orphans: the clean open has no scan to run.
  clean_reopen();
  EXPECT_EQ(idx_->TEST_open_enumerations(), 0u);
  EXPECT_EQ(idx_->stats().recovery_orphans_freed, 0u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
}

TEST_F(RecoveryTest, OrphanScanDuringSplitsFreesOnlyOrphans) {
  // The scan runs in the background while writers split segments (and so
  // allocate successors not yet published and retire segments not yet
  // freed): it must free the crash's orphans and nothing of this session's.
  fill(0, kKeys);
  crash_and_open_pool();
  ASSERT_TRUE(pool_->transact([&](pmem::Tx& tx) {
                     for (int i = 0; i < 5; ++i) (void)tx.alloc(sizeof(TableSegment) + 64, kTypeTableSegment, true);
                   }).is_ok());
  open_index({.workers = 2, .repair_threads = 2});
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 2; ++t) {
    ts.emplace_back([this, t] {
      for (int base = kKeys + static_cast<int>(t) * 64; base < 2 * kKeys; base += 128) {
        fill(base, std::min(base + 64, 2 * kKeys), t);
      }
    });
  }
  for (auto& th : ts) th.join();
  idx_->wait_repaired();
  IndexStats st = idx_->stats();
  EXPECT_GE(st.recovery_orphans_freed, 5u);
  EXPECT_GT(st.splits, 0u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(2 * kKeys));
  clean_reopen();  // the close frees what QSBR still held
  st = idx_->stats();
  EXPECT_EQ(objects_of_type(*pool_, kTypeTableSegment), st.table_segments);
  EXPECT_EQ(objects_of_type(*pool_, kTypeDirectory), 1u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(2 * kKeys));
  for (int i = 0; i < 2 * kKeys; i += 7) ASSERT_EQ(get(key(i)), value(i)) << i;
}

TEST_F(RecoveryTest, LogChainIsExactAfterEveryCrash) {
  // Segments are allocated by the workers and the cleaner and freed by the
  // cleaner, each with its chain change in the same transaction: whenever
  // the session ends, the chain lists every log segment and nothing else.
  for (int round = 0; round < 4; ++round) {
    fill(0, kKeys / 2, round % 2);  // overwrites: older segments become dead
    if (round > 0) {
      idx_->wait_repaired();  // live bytes are known only then
      EXPECT_GT(idx_->clean({.max_live_ratio = 0.9, .max_segments = 64}).segments_cleaned, 0u) << round;
    }
    const uint64_t segs = idx_->stats().log_segments;
    crash_and_open_pool();
    expect_chain_exact(*pool_, "after crash " + std::to_string(round));
    open_index();
    EXPECT_EQ(idx_->TEST_open_enumerations(), 0u);
    EXPECT_EQ(idx_->stats().log_segments, segs) << round;
  }
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys / 2));
  for (int i = 0; i < kKeys / 2; i += 13) ASSERT_EQ(get(key(i)), value(i)) << i;
}

TEST_F(RecoveryTest, DirtyOpenWithoutAChainEnumeratesAndRebuildsIt) {
  // A pool an older build crashed with has no chain (it cleared it at open).
  fill(0, kKeys);
  const uint64_t segs = idx_->stats().log_segments;
  crash_and_open_pool();
  {
    auto* root = pool_->ptr(pmem::POff<IndexRoot>(pool_->root()->index_root));
    root->log_chain = 0;
    pool_->persister().persist(&root->log_chain, sizeof(uint64_t));
  }
  open_index();
  EXPECT_EQ(idx_->TEST_open_enumerations(), 1u);
  EXPECT_EQ(idx_->stats().log_segments, segs);
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys));
  EXPECT_EQ(idx_->stats().recovery_bad_records, 0u) << "every record's log segment registered";
  fill(kKeys, kKeys + 20000);  // new segments go on the rebuilt chain
  crash_and_open_pool();
  expect_chain_exact(*pool_, "after the rebuild");
  open_index();
  EXPECT_EQ(idx_->TEST_open_enumerations(), 0u);
  idx_->wait_repaired();
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(kKeys + 20000));
}

// Stale records (md I / ms I): the feature bit is durable before the first
// one exists, and crash repair keeps them live and stale (a repair that did
// not know the kind would turn their slots into dead ones: key lost).
TEST_F(RecoveryTest, StaleRecordsSurviveACrashAndSetTheFeatureBitFirst) {
  fill(0, 200);
  EXPECT_EQ(pool_->root()->incompat_features & pmem::kIncompatStaleRecords, 0u) << "no stale record yet";
  std::vector<std::string> ks;
  for (int i = 0; i < 100; ++i) ks.push_back(key(i));
  std::vector<Op> ops;
  for (int i = 0; i < 100; ++i) {
    Op o;
    o.code = OpCode::kInvalidate;
    o.key = ks[static_cast<std::size_t>(i)];
    ops.push_back(o);
  }
  idx_->worker(1).execute(ops);
  for (const Op& o : ops) {
    ASSERT_EQ(o.result, Result::kOk);
    EXPECT_TRUE(o.out_stale);
  }
  EXPECT_NE(pool_->root()->incompat_features & pmem::kIncompatStaleRecords, 0u);
  crash_and_reopen();
  idx_->wait_repaired();
  EXPECT_NE(pool_->root()->incompat_features & pmem::kIncompatStaleRecords, 0u);
  EXPECT_EQ(idx_->stats().recovery_bad_records, 0u);
  EXPECT_EQ(idx_->count(), 200u);
  for (int i = 0; i < 200; ++i) {
    std::string v;
    const std::string k = key(i);
    Op g = Op::get(k, &v);
    ASSERT_EQ(idx_->worker(0).execute_one(g), Result::kOk) << k;
    EXPECT_EQ(v, value(i));
    EXPECT_EQ(g.out_stale, i < 100) << k;
  }
  // A set makes a fresh value; the bit stays (other stale records may exist).
  ASSERT_EQ(set(key(0), "fresh"), Result::kOk);
  clean_reopen();
  std::string v;
  const std::string k0 = key(0), k1 = key(1);
  Op g0 = Op::get(k0, &v), g1 = Op::get(k1, &v);
  ASSERT_EQ(idx_->worker(0).execute_one(g0), Result::kOk);
  ASSERT_EQ(idx_->worker(0).execute_one(g1), Result::kOk);
  EXPECT_FALSE(g0.out_stale);
  EXPECT_TRUE(g1.out_stale);
}

}  // namespace
}  // namespace ferrite::index
