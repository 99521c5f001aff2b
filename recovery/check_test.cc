// check_pool, repair_pool and the ferrite-check command: for each problem
// class a pool is built, corrupted precisely on media (pool closed, or through
// pointers before close), and the test asserts the exact problem, the exit
// code, that --repair fixes it (exit 3, then a second check exits 0) and that
// no other key was lost (every key read back through a freshly opened index).
// A healthy pool passes and stays byte-for-byte untouched by --repair; the
// command's error cases exit 2.
#include "recovery/check.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpmemobj.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "common/hash.h"
#include "index/index.h"
#include "index/record.h"
#include "index/slot.h"
#include "index/table.h"
#include "pmem/segment.h"
#include "tests/util/temp_path.h"

namespace ferrite::recovery {
namespace {

using ::testing::HasSubstr;
namespace slot = index::slot;

constexpr int kKeys = 3000;  // > 2048 slots: at least two table segments

std::string key_of(int i) { return "k" + std::to_string(i); }
std::string value_of(int i) { return "value-" + std::to_string(i); }

// kKeys keys k<i> = value-<i>; every tenth (i % 10 == 1) deleted again.
void fill(const std::string& path, int n = kKeys) {
  auto pool = pmem::Pool::create(path, 32u << 20);
  ASSERT_TRUE(pool.is_ok());
  auto idx = index::Index::open(**pool, {.workers = 1});
  ASSERT_TRUE(idx.is_ok());
  auto& w = (*idx)->worker(0);
  for (int i = 0; i < n; ++i) {
    const std::string key = key_of(i), value = value_of(i);  // ops hold views
    index::Op op = index::Op::set(key, value);
    ASSERT_EQ(w.execute_one(op), Result::kOk);
  }
  for (int i = 1; i < n; i += 10) {
    const std::string key = key_of(i);
    index::Op op = index::Op::del(key);
    ASSERT_EQ(w.execute_one(op), Result::kOk);
  }
  idx.value().reset();
  (*pool)->mark_clean_on_close();
}

void set_key(const std::string& path, const std::string& key, const std::string& value) {
  auto pool = pmem::Pool::open(path);
  ASSERT_TRUE(pool.is_ok());
  auto idx = index::Index::open(**pool, {.workers = 1});
  ASSERT_TRUE(idx.is_ok());
  index::Op op = index::Op::set(key, value);
  ASSERT_EQ((*idx)->worker(0).execute_one(op), Result::kOk);
  idx.value().reset();
  (*pool)->mark_clean_on_close();
}

// Every key of fill() reads back with its exact value, except `lost` keys
// (absent) and `changed` ones (their new value).
void expect_keys(const std::string& path, const std::set<std::string>& lost = {},
                 const std::map<std::string, std::string>& changed = {}) {
  auto pool = pmem::Pool::open(path);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  {
    auto idx = index::Index::open(**pool, {.workers = 1});
    ASSERT_TRUE(idx.is_ok());
    auto& w = (*idx)->worker(0);
    int bad = 0;
    for (int i = 0; i < kKeys && bad < 10; ++i) {
      const std::string key = key_of(i);
      std::string out;
      index::Op op = index::Op::get(key, &out);
      const Result r = w.execute_one(op);
      auto c = changed.find(key);
      if (c != changed.end()) {
        EXPECT_EQ(r, Result::kOk) << key;
        EXPECT_EQ(out, c->second) << key;
      } else if (lost.count(key) != 0 || i % 10 == 1) {
        EXPECT_EQ(r, Result::kNotFound) << key;
      } else {
        EXPECT_EQ(r, Result::kOk) << key;
        EXPECT_EQ(out, value_of(i)) << key;
      }
      if (::testing::Test::HasFailure()) ++bad;
    }
  }
  (*pool)->mark_clean_on_close();
}

// Direct access to the media of a closed pool (kept clean on close).
class Media {
 public:
  explicit Media(const std::string& path) {
    auto p = pmem::Pool::open(path);
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    if (p.is_ok()) pool_ = std::move(*p);
  }
  ~Media() {
    if (pool_) pool_->mark_clean_on_close();
  }
  bool ok() const { return pool_ != nullptr; }
  pmem::Pool& pool() { return *pool_; }
  char* base() { return pool_->base(); }
  uint64_t off(const void* p) { return static_cast<uint64_t>(static_cast<const char*>(p) - base()); }
  index::IndexRoot* iroot() { return pool_->ptr(pmem::POff<index::IndexRoot>(pool_->root()->index_root)); }
  index::Directory* dir() { return pool_->ptr(pmem::POff<index::Directory>(iroot()->dir.load())); }
  index::TableSegment* home(std::string_view key) {
    const uint64_t h = hash_key(key);
    return pool_->ptr(
        pmem::POff<index::TableSegment>(dir()->seg[index::dir_index(h, static_cast<unsigned>(dir()->depth))].load()));
  }
  const index::RecordHeader* rec(uint64_t w) {
    return reinterpret_cast<const index::RecordHeader*>(base() + slot::rec_off(w));
  }
  // The slot holding key (its probe position in *pos), or null.
  std::atomic<uint64_t>* slot_of(std::string_view key, unsigned* pos = nullptr) {
    const uint64_t h = hash_key(key);
    index::TableSegment* s = home(key);
    for (unsigned i = 0; i < index::kProbeSlots; ++i) {
      std::atomic<uint64_t>* sl = index::probe_slot(s, h, i);
      const uint64_t w = sl->load();
      if (slot::is_empty(w)) return nullptr;
      if (slot::is_dead(w) || rec(w)->key() != key) continue;
      if (pos != nullptr) *pos = i;
      return sl;
    }
    return nullptr;
  }
  void store(std::atomic<uint64_t>* sl, uint64_t w) {
    sl->store(w);
    pool_->persister().persist(sl, sizeof(uint64_t));
  }

 private:
  std::unique_ptr<pmem::Pool> pool_;
};

struct Cli {
  int code = -1;
  std::string out;
};

Cli run_cli(const std::string& args) {
  Cli c;
  const char* bin = std::getenv("FERRITE_CHECK");
  if (bin == nullptr) {
    ADD_FAILURE() << "FERRITE_CHECK is not set";
    return c;
  }
  const std::string cmd = std::string(bin) + " " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return c;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) c.out.append(buf, n);
  const int st = ::pclose(f);
  c.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return c;
}

// Checks that the pool at path shows exactly one problem of class cls (plus
// `also` others), that the command exits 1, repairs it (exit 3) and then
// passes (exit 0). Returns the problems found before repair.
std::vector<Problem> expect_found_and_repaired(const std::string& path, const std::string& cls,
                                               std::size_t total = 1) {
  auto r = check_pool(path);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  if (!r.is_ok()) return {};
  EXPECT_EQ(r->problem_count, total) << to_string(*r);
  EXPECT_EQ(r->problem_classes[cls], 1u) << to_string(*r);
  EXPECT_EQ(exit_code(*r), 1);
  // The command's exit codes are those of exit_code() (CheckCli tests and
  // the tests above run the command itself); in-process keeps this fast.
  auto fixed = repair_pool(path);
  EXPECT_TRUE(fixed.is_ok());
  if (fixed.is_ok()) {
    EXPECT_EQ(exit_code(*fixed), 3) << to_string(*fixed);
    EXPECT_EQ(fixed->repaired, total);
    EXPECT_TRUE(fixed->errors.empty());
  }
  const Cli again = run_cli(path);
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("result consistent"));
  return r->problems;
}

const Problem* find_problem(const std::vector<Problem>& ps, const std::string& cls) {
  for (const auto& p : ps) {
    if (p.cls == cls) return &p;
  }
  return nullptr;
}

// Contents of every object but the root header (which each open updates).
std::map<uint64_t, uint64_t> digest(const std::string& path) {
  std::map<uint64_t, uint64_t> d;
  Media m(path);
  if (!m.ok()) return d;
  const uint64_t root = m.off(m.pool().root());
  for (PMEMoid o = pmemobj_first(m.pool().handle()); !OID_IS_NULL(o); o = pmemobj_next(o)) {
    if (o.off == root) continue;
    d[o.off] = hash_bytes(m.base() + o.off, pmemobj_alloc_usable_size(o));
  }
  return d;
}

TEST(Check, HealthyPoolPassesAndRepairLeavesItUntouched) {
  testing::TempPath path("check-ok");
  fill(path.str());
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->ok()) << to_string(*r);
  EXPECT_EQ(r->keys, 2700u);
  EXPECT_EQ(r->tombstones, 300u);
  EXPECT_EQ(r->leftovers(), 0u) << to_string(*r);
  EXPECT_GT(r->table_segments, 1u);
  EXPECT_GT(r->referenced_bytes, 0u);
  EXPECT_GE(r->log_bytes, r->referenced_bytes);
  EXPECT_EQ(r->dead_log_segments.count + r->orphan_table_segments.count + r->unknown_objects.count, 0u);
  EXPECT_TRUE(r->pool.clean_shutdown);
  EXPECT_EQ(exit_code(*r), 0);

  const auto before = digest(path.str());
  ASSERT_FALSE(before.empty());
  const Cli repair = run_cli("--repair " + path.str());
  EXPECT_EQ(repair.code, 0) << repair.out;
  EXPECT_THAT(repair.out, HasSubstr("repaired 0 of 0 problems"));
  EXPECT_EQ(digest(path.str()), before) << "--repair changed a healthy pool";

  auto again = check_pool(path.str());
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->pool.clean_shutdown) << "checking leaves a clean pool clean";
  const Cli json = run_cli("--json " + path.str());
  EXPECT_EQ(json.code, 0);
  EXPECT_EQ(json.out.front(), '{');
  EXPECT_THAT(json.out, HasSubstr("\"ok\":true,\"exit_code\":0}"));
  const Cli quiet = run_cli("--quiet " + path.str());
  EXPECT_EQ(quiet.code, 0);
  EXPECT_EQ(quiet.out, "");
  expect_keys(path.str());
}

TEST(Check, PoolWithoutAnIndexPasses) {
  testing::TempPath path("check-empty");
  { ASSERT_TRUE(pmem::Pool::create(path.str(), 16u << 20).is_ok()); }  // closed without mark_clean: dirty
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->ok()) << to_string(*r);
  EXPECT_FALSE(r->pool.has_index);
  EXPECT_FALSE(r->pool.clean_shutdown);
  EXPECT_EQ(run_cli("--repair " + path.str()).code, 0);
}

TEST(Check, TornRecordIsNamedAndItsSlotBecomesADeadTombstone) {
  testing::TempPath path("check-torn");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* sl = m.slot_of("k0");
    ASSERT_NE(sl, nullptr);
    char* value = const_cast<char*>(m.rec(sl->load())->value_ptr());
    value[1] ^= 0x40;
    m.pool().persister().persist(value, 1);
  }
  const Cli json = run_cli("--json " + path.str());
  EXPECT_EQ(json.code, 1);
  EXPECT_THAT(json.out, HasSubstr("\"class\":\"torn_record\""));
  EXPECT_THAT(json.out, HasSubstr("\"exit_code\":1}"));
  auto r = repair_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->before.problem_count, 1u) << to_string(r->before);
  const Problem& p = r->before.problems[0];
  EXPECT_EQ(p.cls, "torn_record");
  EXPECT_THAT(p.what, HasSubstr("fails its checksum"));
  EXPECT_THAT(p.what, HasSubstr("key \"k0\""));
  EXPECT_THAT(p.where, HasSubstr("table segment"));
  EXPECT_EQ(r->keys_lost, 1u);
  EXPECT_EQ(r->repaired, 1u);
  EXPECT_EQ(exit_code(*r), 3);
  EXPECT_TRUE(r->after.ok()) << to_string(r->after);
  EXPECT_EQ(r->after.dead_tombstones, 1u);
  EXPECT_EQ(run_cli("--repair " + path.str()).code, 0) << "a second repair finds nothing";
  expect_keys(path.str(), {"k0"});
}

TEST(Check, SlotPointingOutsideEveryLog) {
  testing::TempPath path("check-outside");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* sl = m.slot_of("k5");
    ASSERT_NE(sl, nullptr);
    const uint64_t w = sl->load();
    m.store(sl, slot::make(m.off(m.iroot()), slot::tag(w), false));  // the index root: no log
  }
  auto ps = expect_found_and_repaired(path.str(), "record_outside_log");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("inside no log segment"));
  EXPECT_THAT(ps[0].repair, HasSubstr("the key is lost"));
  expect_keys(path.str(), {"k5"});
}

TEST(Check, DuplicateKeyInTheSameSegmentKeepsTheNewerVersion) {
  testing::TempPath path("check-dup");
  fill(path.str());
  uint64_t old_word = 0;
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* sl = m.slot_of("k3");
    ASSERT_NE(sl, nullptr);
    old_word = sl->load();
  }
  set_key(path.str(), "k3", "new-3");
  {
    // The old record, still in the log, comes back in the first empty slot
    // after the key's current one: a second, older copy lookups could meet.
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    const uint64_t h = hash_key("k3");
    std::atomic<uint64_t>* empty = nullptr;
    for (unsigned i = 0; i < index::kProbeSlots && empty == nullptr; ++i) {
      auto* sl = index::probe_slot(m.home("k3"), h, i);
      if (slot::is_empty(sl->load())) empty = sl;
    }
    ASSERT_NE(empty, nullptr);
    m.store(empty, old_word);
  }
  auto ps = expect_found_and_repaired(path.str(), "duplicate_key");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("key \"k3\""));
  EXPECT_THAT(ps[0].what, HasSubstr("kept"));
  expect_keys(path.str(), {}, {{"k3", "new-3"}});
}

TEST(Check, DuplicateKeyAcrossSegmentsWithTheNewerCopyUnreachable) {
  testing::TempPath path("check-dup2");
  fill(path.str());
  uint64_t old_word = 0;
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    ASSERT_GE(m.dir()->depth, 1u) << "needs more than one table segment";
    old_word = m.slot_of("k4")->load();
  }
  set_key(path.str(), "k4", "new-4");
  {
    // The newer word moves to an empty slot of another segment; the old one
    // returns to the key's home slot. Lookups find the old value.
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* home_slot = m.slot_of("k4");
    ASSERT_NE(home_slot, nullptr);
    const uint64_t new_word = home_slot->load();
    index::TableSegment* home = m.home("k4");
    index::TableSegment* other = nullptr;
    for (uint64_t j = 0; j < (1ull << m.dir()->depth) && other == nullptr; ++j) {
      auto* s = m.pool().ptr(pmem::POff<index::TableSegment>(m.dir()->seg[j].load()));
      if (s != home) other = s;
    }
    ASSERT_NE(other, nullptr);
    std::atomic<uint64_t>* empty = nullptr;
    for (auto& b : other->buckets) {
      for (auto& w : b.slots) {
        if (empty == nullptr && slot::is_empty(w.load())) empty = &w;
      }
    }
    ASSERT_NE(empty, nullptr);
    m.store(empty, new_word);
    m.store(home_slot, old_word);
  }
  auto ps = expect_found_and_repaired(path.str(), "duplicate_key", 2);
  const Problem* dup = find_problem(ps, "duplicate_key");
  const Problem* stray = find_problem(ps, "wrong_segment");
  ASSERT_NE(dup, nullptr);
  ASSERT_NE(stray, nullptr);
  EXPECT_THAT(stray->what, HasSubstr("key \"k4\""));
  EXPECT_THAT(stray->repair, HasSubstr("moved"));
  expect_keys(path.str(), {}, {{"k4", "new-4"}});
}

TEST(Check, KeyBehindAnEmptySlotIsMovedForward) {
  // What a crash can leave when an insert passed another worker's slot that
  // never became durable: the key sits behind an empty slot.
  testing::TempPath path("check-behind");
  fill(path.str());
  std::string moved_key;
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    for (int i = 0; i < kKeys && moved_key.empty(); i += 10) {
      const std::string key = key_of(i);
      unsigned p = 0;
      auto* sl = m.slot_of(key, &p);
      ASSERT_NE(sl, nullptr) << key;
      const uint64_t h = hash_key(key);
      std::vector<std::atomic<uint64_t>*> empties;
      for (unsigned j = p + 1; j < index::kProbeSlots && empties.size() < 2; ++j) {
        auto* e = index::probe_slot(m.home(key), h, j);
        if (slot::is_empty(e->load()) && (empties.empty() || e != empties[0])) empties.push_back(e);
      }
      if (empties.size() < 2) continue;
      m.store(empties[1], sl->load());
      m.store(sl, slot::kDead);  // occupied: keys behind it stay reachable
      moved_key = key;
    }
  }
  ASSERT_FALSE(moved_key.empty());
  auto ps = expect_found_and_repaired(path.str(), "behind_empty");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("key \"" + moved_key + "\""));
  expect_keys(path.str());
}

TEST(Check, WrongTagIsRewritten) {
  testing::TempPath path("check-tag");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* sl = m.slot_of("k8");
    ASSERT_NE(sl, nullptr);
    m.store(sl, sl->load() ^ (1ull << slot::kTagShift));
  }
  auto ps = expect_found_and_repaired(path.str(), "tag_mismatch");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("key \"k8\""));
  expect_keys(path.str());
}

TEST(Check, OrphanedTableSegmentIsFreed) {
  testing::TempPath path("check-orphan");
  fill(path.str());
  {
    // A split's successor allocated in a transaction and never linked.
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    Status s = m.pool().transact([&](pmem::Tx& tx) {
      tx.alloc(sizeof(index::TableSegment) + kCacheLine, index::kTypeTableSegment, true);
    });
    ASSERT_TRUE(s.is_ok());
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->orphan_table_segments.count, 1u);
  EXPECT_GE(r->orphan_table_segments.bytes, sizeof(index::TableSegment));
  EXPECT_EQ(run_cli(path.str()).code, 1);
  auto ps = expect_found_and_repaired(path.str(), "orphan_table_segment");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].kind, ProblemKind::kLeak);
  EXPECT_GE(ps[0].bytes, sizeof(index::TableSegment));
  auto after = check_pool(path.str());
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->orphan_table_segments.count, 0u);
  EXPECT_LT(after->pool.allocated_bytes, r->pool.allocated_bytes);
  expect_keys(path.str());
}

TEST(Check, UnknownObjectAndUnownedSegmentAreFreed) {
  testing::TempPath path("check-unknown");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    Status s = m.pool().transact([&](pmem::Tx& tx) { tx.alloc(1000, 0x777, true); });
    ASSERT_TRUE(s.is_ok());
    pmem::SegmentAllocator alloc(m.pool());
    ASSERT_TRUE(alloc.allocate(pmem::SegmentKind::kOther, 0).is_ok());
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->unknown_objects.count, 1u);
  EXPECT_EQ(r->unowned_segments.count, 1u);
  auto ps = expect_found_and_repaired(path.str(), "unknown_object", 2);
  ASSERT_NE(find_problem(ps, "unowned_segment"), nullptr);
  expect_keys(path.str());
}

TEST(Check, FullyDeadLogSegmentIsFreed) {
  testing::TempPath path("check-deadlog");
  fill(path.str());
  uint64_t segments = 0;
  {
    // A log segment holding one valid record that no slot names (a copy of
    // k0's): what the cleaner leaves between its last switch and the free.
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    pmem::SegmentAllocator alloc(m.pool());
    // As after a crash: the index open cleared its clean flag and the log
    // segment list of the last clean close.
    m.iroot()->clean = 0;
    m.iroot()->log_chain = 0;
    m.pool().persister().persist(&m.iroot()->clean, 16);
    auto seg = alloc.allocate(pmem::SegmentKind::kLog, 0);
    ASSERT_TRUE(seg.is_ok());
    const auto* r0 = m.rec(m.slot_of("k0")->load());
    char* dst = m.pool().ptr(*seg)->data();
    std::memcpy(dst, r0, r0->size());
    m.pool().persister().persist(dst, r0->size());
    segments = alloc.count();
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->dead_log_segments.count, 1u) << to_string(*r);
  EXPECT_GE(r->dead_log_segments.bytes, (4u << 20) - 128);
  auto ps = expect_found_and_repaired(path.str(), "dead_log_segment");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("no slot names any"));
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(pmem::SegmentAllocator(m.pool()).count(), segments - 1);
  }
  expect_keys(path.str());
}

TEST(Check, LeftoverDirtyAndMovedBitsAreCountedNotProblems) {
  testing::TempPath path("check-leftover");
  fill(path.str());
  {
    // A crash between W2 and W3 leaves a dirty bit; one inside a split
    // (before its directory switch) leaves moved bits and a segment state.
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    auto* sl = m.slot_of("k9");
    ASSERT_NE(sl, nullptr);
    m.store(sl, sl->load() | slot::kDirty);
    index::TableSegment* s = m.home("k2");
    for (auto& w : s->buckets[7].slots) m.store(&w, w.load() | slot::kMoved);
    s->state.store(index::kSegSplitting);
    m.pool().persister().persist(s, kCacheLine);
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->ok()) << to_string(*r);
  EXPECT_EQ(r->dirty_bits, 1u);
  EXPECT_EQ(r->moved_bits, index::kSlotsPerBucket);
  EXPECT_EQ(r->segment_states, 1u);
  EXPECT_EQ(run_cli(path.str()).code, 0);
  const Cli repair = run_cli("--repair " + path.str());
  EXPECT_EQ(repair.code, 0) << repair.out;
  EXPECT_THAT(repair.out, HasSubstr("leftovers cleared 10"));
  auto after = check_pool(path.str());
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->leftovers(), 0u) << to_string(*after);
  expect_keys(path.str());
}

TEST(Check, BadLogHeadIsCleared) {
  testing::TempPath path("check-head");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    m.iroot()->log_heads[5] = m.off(m.iroot());
    m.pool().persister().persist(&m.iroot()->log_heads[5], 8);
  }
  auto ps = expect_found_and_repaired(path.str(), "bad_log_head");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].where, HasSubstr("log_heads[5]"));
  expect_keys(path.str());
}

TEST(Check, LogSegmentListOfTheCleanCloseIsVerified) {
  testing::TempPath path("check-chain");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m.iroot()->clean, 1u);
    ASSERT_NE(m.iroot()->log_chain & 1, 0u) << "a clean close lists its log segments";
    m.iroot()->log_chain = m.off(m.iroot()) | 1;
    m.pool().persister().persist(&m.iroot()->log_chain, 8);
  }
  auto ps = expect_found_and_repaired(path.str(), "bad_log_chain");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("not a log segment"));
  expect_keys(path.str());
}

TEST(Check, LogSegmentListIsVerifiedAfterACrashTooAndRebuilt) {
  // Every open trusts the list (index/log_chain.h), so it must be exact in
  // every state: here a crashed pool's list that misses its newest segment.
  testing::TempPath path("check-chain-dirty");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    m.iroot()->clean = 0;
    const uint64_t head = m.iroot()->log_chain & ~uint64_t{1};
    ASSERT_NE(head, 0u);
    m.iroot()->log_chain = m.pool().ptr(pmem::POff<pmem::SegmentHeader>(head))->user[2] | 1;
    m.pool().persister().persist(&m.iroot()->clean, 16);
  }
  auto ps = expect_found_and_repaired(path.str(), "bad_log_chain");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_THAT(ps[0].what, HasSubstr("lists"));
  expect_keys(path.str());
}

TEST(Check, DeadLogSegmentOfACleanPoolIsFreedAndTheListCleared) {
  // Overwrites leave a log segment no slot names; the clean close still
  // lists it. Freeing it must also drop the list (the next open would
  // otherwise register a freed segment).
  testing::TempPath path("check-chain2");
  {
    auto pool = pmem::Pool::create(path.str(), 32u << 20);
    ASSERT_TRUE(pool.is_ok());
    auto idx = index::Index::open(**pool, {.workers = 1});
    ASSERT_TRUE(idx.is_ok());
    const std::string big(200000, 'x');
    for (int round = 0; round < 2; ++round) {  // 20 x 200 KB twice: the first segment ends up dead
      for (int i = 0; i < 20; ++i) {
        const std::string key = "big" + std::to_string(i);
        index::Op op = index::Op::set(key, big);
        ASSERT_EQ((*idx)->worker(0).execute_one(op), Result::kOk);
      }
    }
    idx.value().reset();
    (*pool)->mark_clean_on_close();
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  ASSERT_GE(r->dead_log_segments.count, 1u) << to_string(*r);
  EXPECT_EQ(r->problem_count, r->dead_log_segments.count) << to_string(*r);
  EXPECT_EQ(run_cli("--repair " + path.str()).code, 3);
  EXPECT_EQ(run_cli(path.str()).code, 0);
  {
    auto pool = pmem::Pool::open(path.str());
    ASSERT_TRUE(pool.is_ok());
    auto idx = index::Index::open(**pool, {.workers = 1});
    ASSERT_TRUE(idx.is_ok());
    EXPECT_EQ((*idx)->stats().log_segments, r->pool.log_segments - r->dead_log_segments.count);
    for (int i = 0; i < 20; ++i) {
      const std::string key = "big" + std::to_string(i);
      std::string out;
      index::Op op = index::Op::get(key, &out);
      EXPECT_EQ((*idx)->worker(0).execute_one(op), Result::kOk);
      EXPECT_EQ(out.size(), 200000u);
    }
    idx.value().reset();
    (*pool)->mark_clean_on_close();
  }
  EXPECT_EQ(run_cli(path.str()).code, 0);
}

TEST(Check, BrokenDirectoryIsReportedAndLeftAlone) {
  testing::TempPath path("check-dir");
  fill(path.str());
  {
    Media m(path.str());
    ASSERT_TRUE(m.ok());
    ASSERT_GE(m.dir()->depth, 1u);
    auto& e = m.dir()->seg[0];
    m.store(&e, m.off(m.iroot()));  // an entry naming the index root
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_GE(r->problem_classes["bad_dir_entry"], 1u) << to_string(*r);
  EXPECT_GT(r->unrepairable, 0u);
  const auto before = digest(path.str());
  const Cli repair = run_cli("--repair " + path.str());
  EXPECT_EQ(repair.code, 1) << repair.out;
  EXPECT_EQ(digest(path.str()), before) << "--repair must not touch a pool whose directory is broken";
}

// ---- the command's error cases ----

TEST(CheckCli, UsageErrorsExit2AndHelpExits0) {
  EXPECT_EQ(run_cli("").code, 2);
  EXPECT_EQ(run_cli("--no-such-option /dev/shm/x").code, 2);
  EXPECT_EQ(run_cli("--json --quiet /dev/shm/x").code, 2);
  const Cli help = run_cli("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("--repair"));
  EXPECT_THAT(help.out, HasSubstr("Exit codes"));
}

TEST(CheckCli, MissingPoolExits2) {
  const Cli c = run_cli("/dev/shm/ferrite-no-such-pool-for-check");
  EXPECT_EQ(c.code, 2);
  EXPECT_THAT(c.out, HasSubstr("no such file"));
  const Cli j = run_cli("--json /dev/shm/ferrite-no-such-pool-for-check");
  EXPECT_EQ(j.code, 2);
  EXPECT_THAT(j.out, HasSubstr("\"exit_code\":2"));
  EXPECT_EQ(run_cli("--quiet /dev/shm/ferrite-no-such-pool-for-check").out, "");
  EXPECT_FALSE(check_pool("/dev/shm/ferrite-no-such-pool-for-check").is_ok());
}

TEST(CheckCli, PoolInUseExits2) {
  testing::TempPath path("check-busy");
  fill(path.str(), 10);
  int up[2], down[2];
  ASSERT_EQ(::pipe(up), 0);
  ASSERT_EQ(::pipe(down), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto pool = pmem::Pool::open(path.str());
    const char ok = pool.is_ok() ? 'y' : 'n';
    (void)!::write(up[1], &ok, 1);
    char c;
    (void)!::read(down[0], &c, 1);  // hold the pool until the parent is done
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(up[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'y');
  const Cli c = run_cli(path.str());
  EXPECT_EQ(c.code, 2);
  EXPECT_THAT(c.out, HasSubstr("in use by another process"));
  EXPECT_EQ(run_cli("--repair " + path.str()).code, 2);
  (void)!::write(down[1], "x", 1);
  int st = 0;
  ::waitpid(child, &st, 0);
  for (int fd : {up[0], up[1], down[0], down[1]}) ::close(fd);
  EXPECT_EQ(run_cli(path.str()).code, 0) << "usable again once the other process is gone";
}

TEST(CheckCli, WrongLayoutNewerVersionAndTruncatedFilesExit2) {
  testing::TempPath other("check-layout");
  PMEMobjpool* pop = pmemobj_create(other.c_str(), "not-ferrite", 20u << 20, 0600);
  ASSERT_NE(pop, nullptr);
  pmemobj_close(pop);
  const Cli c = run_cli(other.str());
  EXPECT_EQ(c.code, 2);
  EXPECT_THAT(c.out, HasSubstr("wrong layout"));

  testing::TempPath small("check-small");
  { std::ofstream(small.str()) << std::string(1 << 20, '\0'); }
  const Cli t = run_cli(small.str());
  EXPECT_EQ(t.code, 2);
  EXPECT_THAT(t.out, HasSubstr("truncated"));

  testing::TempPath newer("check-newer");
  fill(newer.str(), 10);
  {
    Media m(newer.str());
    ASSERT_TRUE(m.ok());
    m.pool().root()->format_major = pmem::kFormatMajor + 1;
    m.pool().persister().persist(&m.pool().root()->format_major, 4);
  }
  const Cli n = run_cli(newer.str());
  EXPECT_EQ(n.code, 2);
  EXPECT_THAT(n.out, HasSubstr("newer"));

  testing::TempPath cut("check-cut");
  fill(cut.str(), 10);
  ASSERT_EQ(::truncate(cut.c_str(), 40u << 20), 0);
  const Cli c2 = run_cli(cut.str());
  EXPECT_EQ(c2.code, 2);
  EXPECT_THAT(c2.out, HasSubstr("truncated"));

  testing::TempPath zeros("check-zeros");
  { std::ofstream(zeros.str()) << std::string(17 << 20, '\0'); }
  const Cli z = run_cli(zeros.str());
  EXPECT_EQ(z.code, 2);
  EXPECT_THAT(z.out, HasSubstr("not a valid pool"));
}

}  // namespace
}  // namespace ferrite::recovery
