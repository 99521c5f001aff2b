// IndexImpl: the shared state behind Index, and Worker::State, the per-thread
// burst engine. Private to index/.
//
// Thread safety: IndexImpl's fields are read by every worker; the directory
// and segment words are atomics in PMEM (labels A*/R* in lookup.cc and
// split.cc). dir_mu_ serializes directory *changes* (split publication,
// doubling) on the growth path only; no lookup or ordinary write takes it.
// Lock order: dir_mu_ -> objects_mu_ -> chain_mu_ -> unlinked_mu_ (see the
// fields); none of them is taken on the hot path (a worker takes the middle
// two once per new log segment).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/cacheline.h"
#include "index/census.h"
#include "index/index.h"
#include "index/log.h"
#include "index/qsbr.h"
#include "index/segtab.h"
#include "index/space.h"
#include "index/record.h"
#include "index/slot.h"
#include "index/table.h"
#include "pmem/persist.h"
#include "pmem/segment.h"

namespace ferrite::index {

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// Where a key is in its segment, or where it would be inserted.
struct Lookup {
  TableSegment* seg = nullptr;
  std::atomic<uint64_t>* slot = nullptr;  // key's slot, or the first empty slot; null: no room
  uint64_t value = 0;                     // slot word as observed (with transient bits)
  const RecordHeader* rec = nullptr;      // the record the slot points at, when found
  bool found = false;                     // the key holds this slot (value or tombstone)
  // Probe positions (bit i = probe_slot(seg, h, i)) up to and including
  // `slot` whose word was dirty when passed: published by another writer
  // but maybe not yet fenced. This op's result depends on them being
  // non-empty (T2: a lookup stops at the first empty slot), so the op
  // writes them back into its own fence before it answers (invariant 2
  // for the slots an op passes, not only the one it uses).
  uint32_t dirty_passed = 0;
};

inline constexpr unsigned kMaxRepairThreads = 8;
// High bit of TableSegment::repaired: a thread is repairing the segment.
inline constexpr uint64_t kRepairingBit = 1ull << 63;

struct alignas(kCacheLine) WorkerCounters {
  std::atomic<int64_t> keys{0};  // inserts - deletes by this worker since open; written by it only
};

class IndexImpl {
 public:
  IndexImpl(pmem::Pool& pool, const IndexOptions& opts);
  ~IndexImpl();

  Status open_or_create();
  // Sets pmem::kIncompatStaleRecords in the pool root and makes it durable,
  // once per pool; returns after it is durable. Called before the append of
  // every kStale record (one atomic load once the bit is set).
  void ensure_stale_feature() noexcept;
  void close_clean();

  // Lock-free lookup; never blocks (spins only while a split it raced with
  // publishes its result).
  Lookup find(std::string_view key, uint64_t h) const noexcept;
  // Lookup for a writer: the returned slot is not frozen; if the key's
  // segment has no room, grows it first. kNoSpace if growth needs memory the
  // pool does not have.
  Result find_for_write(std::string_view key, uint64_t h, Lookup* out) noexcept;

  const RecordHeader* record(uint64_t slot_word) const noexcept {
    return reinterpret_cast<const RecordHeader*>(base_ + slot::rec_off(slot_word));
  }
  uint64_t now() const noexcept;

  Directory* dir() const noexcept {
    // A3: pairs with R3 (directory switch) in double_directory().
    return pool_.ptr(pmem::POff<Directory>(root_->dir.load(std::memory_order_acquire)));
  }
  TableSegment* seg(uint64_t off) const noexcept { return pool_.ptr(pmem::POff<TableSegment>(off)); }

  // Growth (split.cc).
  Result split(TableSegment* s) noexcept;

  // Crash repair (repair.cc). Every path that reads or writes a segment's
  // slots calls ensure_repaired(s) first, while QSBR-online (so s cannot be
  // freed). After a clean open, or once the repair has finished, this is one
  // predictable branch on a flag that never changes again.
  void ensure_repaired(TableSegment* s) const noexcept {
    // A5: pairs with R5 (repair finished) in finish_repair(): whoever sees
    // false also sees every segment's repaired slots.
    if (FERRITE_UNLIKELY(repair_pending_.load(std::memory_order_acquire))) ensure_repaired_slow(s);
  }
  bool repair_pending() const noexcept { return repair_pending_.load(std::memory_order_acquire); }
  void start_background_repair();
  // Waits for the background pass; finishes the repair in this thread if
  // none runs (background_repair = false).
  void wait_repaired();
  // Stops the background pass between two chunks (abandon / destruction).
  void stop_repair() noexcept;
  uint64_t eager_recount() const;

  // Log cleaning (cleaner.cc).
  CleanStats clean(const CleanOptions& opts);
  uint64_t sweep_expired(uint64_t max_slots, bool wait);
  // Live-byte accounting for the cleaner (relaxed; statistics only).
  void account_live(const void* rec, int64_t bytes) noexcept {
    if (LogSegInfo* e = segs_.find(static_cast<uint64_t>(static_cast<const char*>(rec) - base_))) {
      e->live.fetch_add(bytes, std::memory_order_relaxed);
    }
  }

  // Log segments (log_chain.h): allocated with the chain link and the log
  // head of `owner` in one transaction; released with the chain unlink (and
  // any log head naming it cleared) in one transaction.
  // as_head = false: a standby segment (the cleaner's, log.h), on the chain
  // but nobody's head yet.
  StatusOr<pmem::POff<pmem::SegmentHeader>> allocate_log_segment(unsigned owner, bool as_head = true);
  Status release_log_segment(uint64_t off);

  uint64_t count() const noexcept;
  // Verify-on-read (issue 15): true if the record r lies inside the pool
  // and passes its checksum. A false answer is
  // counted (IndexStats::read_bad_records) and logged at most once a second;
  // the caller treats the key as absent. Any worker, lock-free.
  bool read_intact(const RecordHeader* r) noexcept;
  Status scan(const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn);
  std::optional<uint64_t> scan_page(
      uint64_t cursor, std::size_t max_bytes,
      const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn);
  IndexStats stats() const;

  pmem::Pool& pool_;
  char* base_;
  IndexOptions opts_;
  IndexRoot* root_ = nullptr;
  pmem::SegmentAllocator alloc_;
  LogSegTable segs_;
  Qsbr qsbr_;
  unsigned control_slot_;            // QSBR slot used by scan() (under scan_mu_); + 1: expiry sweep
                                     // and the cleaner (both under clean_mu_)
  unsigned repair_qsbr_slot_;        // first of kMaxRepairThreads QSBR slots of the repair pass
  std::mutex scan_mu_;
  std::mutex dir_mu_;                // growth path only
  // Shared: every allocation and free of a table segment, directory or log
  // segment (a transaction each). Exclusive: the orphan scan, whose
  // pmemobj_first/next walk is not safe against a concurrent alloc/free.
  std::shared_mutex objects_mu_;
  // Serializes changes of the log chain (allocate_log_segment: workers and
  // the cleaner; release_log_segment: the cleaner) and walks of it.
  std::mutex chain_mu_;
  // Table segments and directories (obj_off) this session allocated or
  // retired that the directory does not name: split successors from their
  // allocation until published or freed, retired segments and directories
  // until their QSBR free ran. The orphan scan must not free them. Changed
  // under objects_mu_ (shared) or dir_mu_; read by the scan holding both.
  std::mutex unlinked_mu_;
  std::unordered_set<uint64_t> unlinked_;  // GUARDED_BY(unlinked_mu_)
  uint64_t base_count_ = 0;          // keys at open (clean open: from the root)
  uint64_t session_ = 0;             // high bits of versions written this session
  // pmem::kIncompatStaleRecords is durable in the pool root (ensure_stale_feature).
  std::atomic<bool> stale_feature_{false};
  std::mutex feature_mu_;
  std::vector<WorkerCounters> counters_;
  // Items per size class (census.h): slot w for worker w, slot workers for
  // the cleaner and the expiry sweep (as counters_).
  std::unique_ptr<Census> census_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // Table segments allocated and not freed (space accounting, space.h):
  // counted at open from the directory, + 1 per allocation (also one a
  // transaction then rolls back: an overcount errs on the safe side), - 1
  // per free of a table segment. Orphans a crash left are not counted.
  std::atomic<int64_t> table_segments_{0};
  // The directory's global depth (space accounting reads it without being
  // QSBR-online, so not from the directory itself): set at open and by
  // each doubling (under dir_mu_).
  std::atomic<unsigned> dir_depth_{0};
  std::atomic<uint64_t> splits_{0};
  std::atomic<uint64_t> doublings_{0};
  std::unique_ptr<Space> space_;             // free space, the background cleaner (space.h)
  std::unique_ptr<class Cleaner> cleaner_;   // created on first clean()
  std::mutex clean_mu_;                      // one cleaning pass at a time
  uint64_t sweep_cursor_ = 0;                // GUARDED_BY(clean_mu_)
  bool abandoned_ = false;           // TEST_abandon(): close like a crash

  // Crash repair state (repair.cc).
  // Set at open after a dirty shutdown, cleared once (R5) when every segment
  // is repaired; read by every op (A5).
  std::atomic<bool> repair_pending_{false};
  uint64_t repair_epoch_ = 0;        // this session's "repaired" word (pool open count); set at open
  std::atomic<int64_t> repaired_keys_{0};       // live keys counted by segment repairs (relaxed)
  std::atomic<uint64_t> repair_left_{0};        // segments still to repair (statistics)
  std::atomic<uint64_t> repaired_lazy_{0};      // statistics, relaxed
  std::atomic<uint64_t> repaired_bg_{0};
  std::atomic<uint64_t> bad_records_{0};
  // Records that failed verification when an op read them (read_intact):
  // counted by any worker (relaxed RMW, taken only on the bad path); the log
  // line is rate-limited through bad_read_log_ns_ (CAS; stale reads fine).
  std::atomic<uint64_t> bad_reads_{0};
  std::atomic<int64_t> bad_read_log_ns_{0};
  std::atomic<bool> repair_stop_{false};        // abandon: background threads stop between chunks
  std::atomic<uint64_t> repair_cursor_{0};      // next chunk of the background pass
  uint64_t repair_chunks_ = 0;                  // chunks of the pass (set before threads start)
  unsigned repair_depth_ = 0;                   // directory depth the chunks are cut at
  std::atomic<unsigned> repair_running_{0};     // background threads not yet done
  std::vector<std::thread> repair_threads_;     // started and joined by the control path only
  std::mutex repair_mu_;                        // wait_repaired()/stop_repair()
  std::chrono::steady_clock::time_point open_start_{};
  double open_ms_ = 0;                          // written by open, read after
  std::atomic<uint64_t> repair_us_{0};          // open start to repair finished (0: not finished)
  // Set at a dirty open; cleared when the orphan scan (after the slot
  // repair, in the background) has run.
  std::atomic<bool> orphan_scan_pending_{false};
  std::atomic<uint64_t> orphans_freed_{0};      // statistics
  uint64_t open_enumerations_ = 0;              // object enumerations by open (0 unless no usable chain)

 private:
  void ensure_repaired_slow(TableSegment* s) const noexcept;
  // Returns once s is repaired: repairs it (C6..R6) or waits for its repairer.
  void claim_and_repair(TableSegment* s, bool lazy) noexcept;
  // Repairs the slots of s, which the caller has claimed (C6).
  void repair_segment(TableSegment* s, bool lazy) noexcept;
  // The record slot word w names, if it is sound for a slot of s; its log segment in *info.
  const RecordHeader* checked_record(const TableSegment* s, uint64_t w, LogSegInfo** info) noexcept;
  void prepare_repair_pass() noexcept;  // under repair_mu_, no pass running
  // One background thread: claims chunks of the directory until none is left.
  void repair_pass(unsigned qsbr_slot) noexcept;
  void finish_repair() noexcept;
  // Frees table segments and directories a crash left unreachable (repair.cc).
  void free_orphans() noexcept;

  Status create_empty();
  void register_table_class();
  uint64_t table_alloc_flags_ = 0;   // POBJ_CLASS_ID of table segments' class
  StatusOr<TableSegment*> alloc_table_segment(pmem::Tx& tx, unsigned local_depth, uint64_t prefix);
  Result double_directory(unsigned min_depth) noexcept;  // under dir_mu_
  // One transaction; logs on failure; drops obj_off from unlinked_.
  void free_object(uint64_t obj_off, const char* what) noexcept;
  void note_unlinked(uint64_t obj_off, bool unlinked);  // caller holds objects_mu_ or dir_mu_
  void repair_after_open(bool clean);
  // The log segments the chain lists; false (nothing registered): no usable chain.
  bool register_log_chain(bool clean);
  void save_segment_stats_nodrain();
};

// Per-worker burst state (Worker's pimpl).
class Worker::State {
 public:
  State(IndexImpl& idx, unsigned id);

  void execute(std::span<Op> ops);

  IndexImpl& idx_;
  unsigned id_;
  RecordLog log_;
  pmem::PersistBatch batch_;
  uint64_t next_version_ = 1;
  // Unix seconds, read at most once per burst, on first use (burst_now()):
  // only an op that meets a record with an expiry needs it, so a burst of
  // gets of keys without TTL reads no clock. 0: not read yet in this burst.
  uint64_t now_ = 0;
  uint64_t burst_now() noexcept {
    if (now_ == 0) now_ = idx_.now();
    return now_;
  }
  // The write that found no room, when a burst must wait for space
  // (execute); kNoSpace/kLiveFull: the refusal of the last wait, applied to
  // writes that still find no room.
  bool may_wait_ = false;
  std::size_t deferred_at_ = 0;
  Result refusal_ = Result::kNoSpace;

 private:
  struct Staged {
    Op* op;
    uint64_t h;
    const RecordHeader* rec;   // the new record (durable after the next P1), or
                               // for a delete the key's current record
    bool tombstone;            // install rec with the tombstone bit (delete)
    Lookup lk;                 // the slot it replaces or fills, as observed
  };
  enum class Plan : uint8_t { kDone, kWrite };

  // One pass over ops (QSBR-online inside): returns ops.size(), or with
  // may_wait_ the index of the first op that found no room (it and the ops
  // after it did not run; the ones before are done and durable).
  std::size_t run(std::span<Op> ops);
  // A lone read (execute() of one kGet): run()'s steps for one read, without
  // its chunking and write staging.
  void get_one(Op& op) noexcept;
  // Decides op against the observed state; for kWrite, appends its record.
  Plan plan(Op& op, uint64_t h, const Lookup& lk, const RecordHeader** rec_out, bool* tomb_out) noexcept;
  // The value is v1 + v2 + `spaces` space characters (write_record).
  const RecordHeader* append(RecordKind kind, std::string_view key, std::string_view v1, std::string_view v2,
                             uint32_t flags, uint32_t exptime, std::size_t spaces = 0) noexcept;
  void publish_all() noexcept;
  void prefetch(std::span<Op> ops, uint64_t* hashes) const noexcept;
  bool try_publish(Staged& st) noexcept;
  const RecordHeader* current(const Op& op, uint64_t h, const Lookup& lk) noexcept;
  void serve_get(Op& op, uint64_t h, const Lookup& lk) noexcept;
  // Link-and-persist, reader side: the test inline (most reads pass no dirty
  // slot), the write-backs out of line (note_dirty_read, worker.cc).
  void note_read(const Lookup& lk, uint64_t h) noexcept {
    if (FERRITE_UNLIKELY((lk.slot != nullptr && slot::is_dirty(lk.value)) || lk.dirty_passed != 0)) {
      note_dirty_read(lk, h);
    }
  }
  void note_dirty_read(const Lookup& lk, uint64_t h) noexcept;
  bool staged_has(uint64_t h, std::string_view key) const noexcept;

  std::vector<Staged> staged_;
  std::vector<Staged> retry_;
  std::vector<std::atomic<uint64_t>*> published_;
  std::vector<uint64_t> published_words_;
  uint64_t staged_mask_ = 0;       // bloom of staged hashes (bit h & 63)
  bool read_needs_fence_ = false;  // a result came from a dirty slot
};

}  // namespace ferrite::index
