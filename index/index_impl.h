// IndexImpl: the shared state behind Index, and Worker::State, the per-thread
// burst engine. Private to index/.
//
// Thread safety: IndexImpl's fields are read by every worker; the directory
// and segment words are atomics in PMEM (labels A*/R* in index.cc and
// split.cc). dir_mu_ serializes directory *changes* (split publication,
// doubling) on the growth path only; no lookup or ordinary write takes it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "common/cacheline.h"
#include "index/index.h"
#include "index/log.h"
#include "index/qsbr.h"
#include "index/segtab.h"
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
};

struct alignas(kCacheLine) WorkerCounters {
  std::atomic<int64_t> keys{0};  // inserts - deletes by this worker since open; written by it only
};

class IndexImpl {
 public:
  IndexImpl(pmem::Pool& pool, const IndexOptions& opts);
  ~IndexImpl();

  Status open_or_create();
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

  // Log cleaning (cleaner.cc).
  CleanStats clean(const CleanOptions& opts);
  uint64_t sweep_expired(uint64_t max_slots);
  // Live-byte accounting for the cleaner (relaxed; statistics only).
  void account_live(const void* rec, int64_t bytes) noexcept {
    if (LogSegInfo* e = segs_.find(static_cast<uint64_t>(static_cast<const char*>(rec) - base_))) {
      e->live.fetch_add(bytes, std::memory_order_relaxed);
    }
  }

  uint64_t count() const noexcept;
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
  unsigned control_slot_;            // QSBR slot used by scan() (under scan_mu_)
  std::mutex scan_mu_;
  std::mutex dir_mu_;                // growth path only
  uint64_t base_count_ = 0;          // keys at open
  uint64_t session_ = 0;             // high bits of versions written this session
  std::vector<WorkerCounters> counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<uint64_t> splits_{0};
  std::atomic<uint64_t> doublings_{0};
  std::unique_ptr<class Cleaner> cleaner_;   // created on first clean()
  std::mutex clean_mu_;                      // one cleaning pass at a time
  uint64_t sweep_cursor_ = 0;                // GUARDED_BY(clean_mu_)
  bool abandoned_ = false;           // TEST_abandon(): close like a crash

 private:
  Status create_empty();
  void register_table_class();
  uint64_t table_alloc_flags_ = 0;   // POBJ_CLASS_ID of table segments' class
  StatusOr<TableSegment*> alloc_table_segment(pmem::Tx& tx, unsigned local_depth, uint64_t prefix);
  Result double_directory(unsigned min_depth) noexcept;  // under dir_mu_
  void free_object(uint64_t obj_off, const char* what) noexcept;  // one transaction; logs on failure
  void repair_after_open(bool clean);
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
  uint64_t now_ = 0;  // unix seconds, read once per burst

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

  // Decides op against the observed state; for kWrite, appends its record.
  Plan plan(Op& op, uint64_t h, const Lookup& lk, const RecordHeader** rec_out, bool* tomb_out) noexcept;
  const RecordHeader* append(RecordKind kind, std::string_view key, std::string_view v1, std::string_view v2,
                             uint32_t flags, uint32_t exptime) noexcept;
  void publish_all() noexcept;
  void prefetch(std::span<Op> ops, uint64_t* hashes) const noexcept;
  bool try_publish(Staged& st) noexcept;
  void note_read(const Lookup& lk) noexcept;
  bool staged_has(uint64_t h, std::string_view key) const noexcept;

  std::vector<Staged> staged_;
  std::vector<Staged> retry_;
  std::vector<std::atomic<uint64_t>*> published_;
  std::vector<uint64_t> published_words_;
  uint64_t staged_mask_ = 0;       // bloom of staged hashes (bit h & 63)
  bool read_needs_fence_ = false;  // a result came from a dirty slot
};

}  // namespace ferrite::index
