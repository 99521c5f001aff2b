// Ferrite's persistent hash index: the public interface.
//
//   auto idx = index::Index::open(pool, {.workers = 2});    // creates on first use
//   index::Worker& w = (*idx)->worker(0);                    // one per thread
//   index::Op ops[2];
//   ops[0] = index::Op::set("k", "v");
//   ops[1] = index::Op::get("k", &out);
//   w.execute(ops);                  // a whole burst: results durable on return
//   // ops[0].result == Result::kOk, ops[1].result == kOk, out == "v"
//
// execute() is the burst engine of ARCHITECTURE.md: every write appends its
// record to the worker's PMEM log and writes the lines back without a fence;
// one fence makes the burst's records durable (P1), slots are published by
// CAS with a dirty bit and written back, a second fence makes them durable
// (P2). When execute() returns, every result it reports is durable, so the
// caller may reply. No allocator call, transaction, lock or syscall per op;
// the rare exceptions (a log segment filling, a table segment splitting) are
// amortized over thousands of ops.
//
// Thread safety: Index is shared by all threads. A Worker belongs to exactly
// one thread at a time (_st). Lookups are lock-free; writers use CAS; growth
// (segment split, directory doubling) happens while other workers serve.
// Memory of superseded records and table segments is reclaimed only after
// every worker that was inside execute() when it was superseded has
// returned: a worker holds references only during execute() (QSBR,
// index/qsbr.h), so an idle worker never delays reclamation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/limits.h"
#include "common/result.h"
#include "common/status.h"
#include "pmem/pool.h"

namespace ferrite::index {

using limits::kMaxKeyLen;    // common/limits.h: 250 bytes
using limits::kMaxValueLen;  // 1 MiB

enum class OpCode : uint8_t {
  kGet,      // out_value <- value; out_flags, out_version
  kSet,      // upsert
  kAdd,      // insert if absent, else kExists
  kReplace,  // update if present, else kNotStored
  kAppend,   // value += arg, if present, else kNotStored
  kPrepend,  // value = arg + value, if present, else kNotStored
  kCas,      // set if version == cas, kCasMismatch if not, kNotFound if absent
  kIncr,     // decimal u64 += delta (wraps at 2^64); out_number
  kDecr,     // decimal u64 -= delta (floors at 0);   out_number
  kTouch,    // expiry <- exptime
  kDel,      // remove; kNotFound if absent
  kInvalidate,  // mark stale (memcached md I): same value and flags, a new
                // version, out_stale; expiry <- exptime if set_exptime;
                // kNotFound if absent
};

// One operation of a burst. Inputs are views: they must stay valid until
// execute() returns. Outputs are filled by execute().
struct Op {
  OpCode code = OpCode::kGet;
  std::string_view key;
  std::string_view value;     // set/add/replace/append/prepend/cas
  uint32_t flags = 0;         // client flags stored with the value
  uint32_t exptime = 0;       // absolute unix seconds; 0 = never expires
  // Expected version. kCas: required. Any other write (kSet, kReplace,
  // kAppend, kPrepend, kIncr, kDecr, kTouch, kDel) with cas != 0 happens only
  // if the key's current version equals cas: kCasMismatch (out_version = the
  // current version) if it differs, kNotFound if the key is absent. The
  // compare is atomic with the write: it is decided against the record the
  // publishing slot CAS replaces (see the invariant in worker.cc). kAdd
  // ignores cas (it writes only when there is no version to compare), and so
  // does kGet. 0 means "no compare" (versions are never 0).
  uint64_t cas = 0;
  uint64_t delta = 0;         // kIncr/kDecr
  std::string* out_value = nullptr;  // kGet: where the value is copied (may be null)
  bool set_exptime = false;   // kInvalidate: exptime replaces the key's expiry
  // kCas only (memcached ms I): if the key's version differs from cas and cas
  // is lower, store anyway, as a stale record that keeps the current expiry
  // (out_stale), instead of kCasMismatch. Versions compare as numbers: within
  // one worker of one session they grow with every write.
  bool stale_if_older = false;

  Result result = Result::kOk;
  uint32_t out_flags = 0;     // kGet
  uint32_t out_exptime = 0;   // kGet: the key's expiry (absolute unix seconds, 0 = never)
  uint64_t out_version = 0;   // version after the op (get: current; writes: new)
  uint64_t out_number = 0;    // kIncr/kDecr: the new value
  uint64_t out_prev_version = 0;  // writes: the version the write replaced (0: none)
  bool out_stale = false;     // kGet: the value is marked stale; writes: the new record is

  static Op get(std::string_view k, std::string* out) { Op o; o.code = OpCode::kGet; o.key = k; o.out_value = out; return o; }
  static Op set(std::string_view k, std::string_view v, uint32_t flags = 0, uint32_t exptime = 0) {
    Op o; o.code = OpCode::kSet; o.key = k; o.value = v; o.flags = flags; o.exptime = exptime; return o;
  }
  static Op del(std::string_view k) { Op o; o.code = OpCode::kDel; o.key = k; return o; }
  static Op touch(std::string_view k, uint32_t exptime) {
    Op o; o.code = OpCode::kTouch; o.key = k; o.exptime = exptime; return o;
  }
};

// Log space management (index/space.h): how the background cleaner keeps
// room for writes, and what a write that finds none does.
struct SpaceOptions {
  // The background cleaner thread. Off (the default, for tests that drive
  // clean() by hand): a write that finds no free log segment fails at once.
  bool background_cleaner = false;
  // Start it in Index::open; false: the caller starts it (start_cleaner())
  // once nothing else must come first (ferrited-pfsim: the power-failure
  // simulator's copy of the pool).
  bool start_at_open = true;
  // Free share of the pool's capacity below which the cleaner runs without
  // pause, until the free share is back at high_watermark.
  double low_watermark = 0.10;
  double high_watermark = 0.20;
  // Share of the capacity kept from live data: a write that needs room while
  // live data is above capacity x (1 - reserve) is refused (kLiveFull) or,
  // with evict, makes room by evicting cold keys.
  double reserve = 0.10;
  bool evict = false;             // pool.when_full = "evict"
  // Longest a write waits for the cleaner to free room before it is refused
  // (kNoSpace). Waits are counted (backpressure).
  uint32_t max_wait_ms = 250;
  // Cleaner copy bandwidth while no writer waits (MB/s; 0 = unbounded).
  uint32_t max_copy_mbps = 0;
};

// Item census by size class (census.h): an item's size is overhead + key +
// value, + flags_bytes when its client flags are not 0; its class is the
// first whose bound is >= that size, and sizes above the last bound count in
// the last class. No bounds: no census (nothing counted, nothing saved).
inline constexpr unsigned kMaxSizeClasses = 64;
struct SizeClasses {
  uint32_t overhead = 0;
  uint32_t flags_bytes = 0;
  std::vector<uint32_t> bounds;  // ascending, at most kMaxSizeClasses
  uint64_t tag = 0;              // names the classing: a census saved under another is not used
};
struct ClassCount {
  uint64_t items = 0;
  uint64_t bytes = 0;  // the items' sizes (SizeClasses' measure), summed
};

struct IndexOptions {
  unsigned workers = 1;          // Worker contexts (1..63)
  uint32_t (*clock)() = nullptr; // unix seconds for expiry; null = system clock (tests inject)
  // Crash repair after a dirty shutdown (index/repair.cc): each table segment
  // is repaired on first touch, and a background pass of repair_threads
  // threads (0 = one per hardware thread, at most 8) repairs the rest.
  // background_repair = false leaves it to first touch and close (tests).
  unsigned repair_threads = 0;
  bool background_repair = true;
  // Nice value of the background repair threads: above 0, serving threads
  // (which repair what they touch themselves) win the CPU over the pass.
  int repair_nice = 10;
  SpaceOptions space{};
  SizeClasses size_classes{};
};

struct IndexStats {
  uint64_t keys = 0;             // live keys (approximate under concurrent writes)
  uint64_t table_segments = 0;
  uint64_t global_depth = 0;
  uint64_t log_segments = 0;     // log segments in the pool now
  uint64_t splits = 0;
  uint64_t dir_doublings = 0;
  uint64_t log_bytes_live = 0;   // bytes of records the index points at
  uint64_t log_bytes_dead = 0;   // appended bytes no slot points at (cleaner's work)

  // Open and crash repair (index/repair.cc).
  double open_ms = 0;            // duration of Index::open
  double repair_ms = 0;          // from the start of Index::open until crash repair finished
                                 // (0 after a clean open, or while it runs)
  bool repair_done = true;       // false while table segments still await crash repair:
                                 // keys is then repaired-so-far + changes since open, and
                                 // log_bytes_live is partial; the cleaner and expiry sweep wait.
                                 // Also false while the orphan scan that follows it runs
  uint64_t recovery_pending_segments = 0;     // table segments not yet repaired
  uint64_t recovery_segments_lazy = 0;        // repaired on first touch (op, split, scan)
  uint64_t recovery_segments_background = 0;  // repaired by the background pass
  uint64_t recovery_bad_records = 0;          // slots that named a torn or foreign record,
                                              // turned into dead slots (should stay 0)
  uint64_t read_bad_records = 0;              // records that failed their checksum when an op
                                              // read them; the key was answered as a miss
  uint64_t recovery_orphans_freed = 0;        // table segments and directories a crash left
                                              // unreachable, freed after the repair

  // Space (index/space.h). Capacity: what the pool's heap can hold; free:
  // capacity minus every allocated object (log and table segments).
  uint64_t capacity_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t live_limit_bytes = 0;       // capacity x (1 - reserve)
  uint64_t bytes_appended = 0;         // records written by workers since open
  uint64_t cleaner_bytes_copied = 0;   // live records relocated since open
  uint64_t cleaner_bytes_freed = 0;    // log segment bytes returned to the pool since open
  uint64_t cleaner_segments_freed = 0;
  uint64_t cleaner_segments_freed_empty = 0;  // of which had nothing live (freed without copying)
  double write_amplification = 1.0;    // (bytes_appended + cleaner_bytes_copied) / bytes_appended
  uint64_t evictions = 0;              // live keys removed to make room (evict mode)
  uint64_t expired_reclaimed = 0;      // expired keys dropped by the cleaner
  uint64_t backpressure_waits = 0;     // bursts that waited for the cleaner
  uint64_t backpressure_wait_us = 0;   // total time they waited
  uint64_t refused_live_full = 0;      // writes refused: live data above the limit (kLiveFull)
  uint64_t refused_cleaner_behind = 0; // writes refused: no room within max_wait_ms (kNoSpace)
};

// Log cleaning: relocate the live records of mostly-dead log segments into
// the cleaner's own log, then free the segments (after a QSBR grace period).
struct CleanOptions {
  double max_live_ratio = 0.5;     // clean segments at most this full of live data
  std::size_t max_segments = 16;   // bound on one pass
  // Eviction pass: victims are the oldest sealed segments (a FIFO hand over
  // the log); a live record read since the hand last passed (its read bit)
  // is copied forward with the bit cleared (second chance), any other live
  // record is evicted: its slot becomes a dead tombstone, durable before the
  // segment is freed. max_live_ratio is ignored.
  bool evict = false;
};
struct CleanStats {
  uint64_t segments_cleaned = 0;   // victims emptied and freed (or queued to be)
  uint64_t records_moved = 0;      // live records relocated
  uint64_t bytes_moved = 0;
  uint64_t expired_dropped = 0;    // expired keys turned into tombstones
  uint64_t skipped_no_space = 0;   // victims left alone for lack of room to relocate
  uint64_t evicted = 0;            // live keys evicted (CleanOptions::evict)
};

class Worker;
class IndexImpl;

class Index {
 public:
  // Opens the index stored in pool, creating an empty one on first use.
  static StatusOr<std::unique_ptr<Index>> open(pmem::Pool& pool, const IndexOptions& opts = {});
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  Worker& worker(unsigned id);
  unsigned workers() const;

  // Number of live keys (exact when no writer runs concurrently).
  uint64_t count() const;
  // Visits every live key with its value, flags, expiry and version. Runs
  // while writers go on; each key is visited at most once with a value it
  // held during the scan. Not for the hot path.
  Status scan(const std::function<void(std::string_view key, std::string_view value, uint32_t flags,
                                       uint32_t exptime, uint64_t version)>& fn) const;
  IndexStats stats() const;
  // Live items and bytes per size class (IndexOptions::size_classes), class
  // 1 first; empty when no classes were given. O(classes x workers).
  std::vector<ClassCount> item_census() const;

  // Paged scan for dump/export over the network: visits live keys whose hash
  // is >= cursor, in hash order, until about max_bytes of key+value have been
  // visited (at least one key). Returns the cursor of the next page, or
  // nullopt when the scan is complete. Each key is visited at most once over
  // a whole scan (keys whose 64-bit hashes are equal could be repeated, a
  // case we accept).
  std::optional<uint64_t> scan_page(
      uint64_t cursor, std::size_t max_bytes,
      const std::function<void(std::string_view key, std::string_view value, uint32_t flags, uint32_t exptime,
                               uint64_t version)>& fn) const;

  // One bounded cleaning pass (control path; safe while workers serve). Call
  // it from a background thread or the server's housekeeping loop.
  CleanStats clean(const CleanOptions& opts = {});
  // Bounded expiry sweep: looks at up to max_slots index slots from where the
  // last sweep stopped and turns expired keys into tombstones. Returns how
  // many keys it expired. wait = false: returns 0 at once when another
  // thread holds the cleaner (for a serving worker's idle time, where a
  // small step costs a few microseconds and blocking would stall requests).
  uint64_t sweep_expired(uint64_t max_slots, bool wait = true);

  // Blocks until crash repair has finished (at once after a clean open).
  void wait_repaired();

  const SpaceOptions& space_options() const;
  // Starts the background cleaner (SpaceOptions::start_at_open = false).
  void start_cleaner();
  IndexImpl& impl() { return *impl_; }
  // Bench peer (perf/recovery_bench): the eager recount that open did
  // before lazy repair, a single-threaded pass over every slot (reads only;
  // counts keys and sums live bytes per log segment). Returns the key count.
  uint64_t TEST_eager_recount() const;
  // Test hook: the destructor then skips the clean close, leaving the media
  // exactly as a crash right now would (the pool still closes).
  void TEST_abandon();
  // Test hook: stops the background cleaner (its passes end first), so a
  // test can read a state nothing changes any more.
  void TEST_stop_cleaner();
  // Test hook: how many times this open enumerated the pool's objects (0
  // unless the pool had no usable log chain).
  uint64_t TEST_open_enumerations() const;

 private:
  explicit Index(std::unique_ptr<IndexImpl> impl);
  std::unique_ptr<IndexImpl> impl_;
};

// A worker's context: its log, persist batch and quiescent-state record.
class Worker {
 public:
  // Executes a burst; every result is durable when this returns (_st).
  void execute(std::span<Op> ops);
  // Convenience for tests and tools: a burst of one.
  Result execute_one(Op& op) { execute(std::span<Op>(&op, 1)); return op.result; }
  // Reports a quiescent state without executing. execute() already returns
  // quiescent, so an idle worker need not call this; it is harmless (_st).
  void quiesce();
  unsigned id() const;

 private:
  friend class IndexImpl;
  friend class Space;
  Worker() = default;
  class State;
  State* state_ = nullptr;
};

}  // namespace ferrite::index
