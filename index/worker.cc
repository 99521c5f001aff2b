// The burst engine: Worker::execute().
//
// Persist points of one burst (invariants 1-3 of ARCHITECTURE.md):
//  W1  per write: append the record to this worker's log, write its lines back
//      (no fence)                                   -- record bytes in flight
//  P1  fence                                        -- every record durable
//  W2  per write: CAS the slot to record|dirty (R2, release; pairs with A3 in
//      find()), write the slot's line back          -- visible, not yet durable
//  P2  fence                                        -- every slot durable
//  W3  per write: CAS dirty off (best effort; a leftover dirty bit only costs
//      a reader one extra write-back)
//  return: results are durable; the caller may reply.
// Crash table:
//  before P1   records torn or intact but unreferenced: nothing to undo.
//  P1..P2      each slot holds the old or the new word; both point at durable
//              records. The write was not acknowledged, so either is correct.
//              A reader that saw the new word wrote it back and fenced before
//              answering (W2's dirty bit), so anything a client saw is durable.
//  after P2    acknowledged state durable.
// Conditional ops decide at W1 against the state they observe; if a slot
// changed by W2 (another worker's write), the op is decided again against the
// new state, and ops whose record depends on the old value (append, prepend,
// incr, decr, touch) write a new record and go through another P1 round.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "common/crash_point.h"
#include "common/hash.h"
#include "index/index_impl.h"
#include "index/op_rules.h"

namespace ferrite::index {
namespace {

bool is_write(OpCode c) noexcept { return c != OpCode::kGet; }

// Resets op's outputs; false (with op.result set) for a key or value no
// write or lookup may take. The first step of every op, lone or in a burst.
bool admit(Op& op) noexcept {
  op.result = Result::kOk;
  op.out_stale = false;
  op.out_prev_version = 0;
  if (FERRITE_UNLIKELY(op.key.empty())) {
    op.result = Result::kBadKey;
    return false;
  }
  if (FERRITE_UNLIKELY(op.key.size() > kMaxKeyLen || op.value.size() > kMaxValueLen)) {
    op.result = Result::kTooLarge;
    return false;
  }
  return true;
}

}  // namespace

Worker::State::State(IndexImpl& idx, unsigned id)
    : idx_(idx), id_(id), log_(idx, id), batch_(idx.pool_.persister()) {
  staged_.reserve(64);
  retry_.reserve(64);
  published_.reserve(64);
  published_words_.reserve(64);
}

bool Worker::State::try_publish(Staged& st) noexcept {
  const bool tomb = st.tombstone;
  const uint64_t word = slot::make(static_cast<uint64_t>(reinterpret_cast<const char*>(st.rec) - idx_.base_),
                                   slot::tag_of(st.h), tomb);
  uint64_t expected = st.lk.value;
  // Writers never CAS a frozen slot (slot.h, moved bit): find_for_write()
  // returned a slot of a segment no split has frozen, so a CAS of it either
  // fails (frozen since) or lands in the live segment.
  FERRITE_DCHECK(!slot::is_moved(expected));
  // A delete names the record the slot already names (record.h, slot.h): the
  // cleaner relies on no other op publishing a word for a record it did not
  // just write (cleaner.cc).
  FERRITE_DCHECK(!tomb || slot::rec_off(word) == slot::rec_off(expected));
  // W2 / R2: pairs with A3 in find(); the record is durable (P1) already.
  if (!st.lk.slot->compare_exchange_strong(expected, word | slot::kDirty, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
    return false;
  }
  // The slot's line is written back after every CAS of the burst (in
  // publish_all): a locked instruction waits for earlier clwb's to complete,
  // so interleaving them would cost a fence per op.
  published_.push_back(st.lk.slot);
  published_words_.push_back(word | slot::kDirty);
  WorkerCounters& c = idx_.counters_[id_];
  const bool was_live = st.lk.found && !slot::is_tombstone(st.lk.value);
  // keys: written only by this worker, read racily by count(): no RMW needed.
  if (was_live && tomb) c.keys.store(c.keys.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (!was_live && !tomb) c.keys.store(c.keys.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Items per size class (census.h): the replaced record out, the new one in.
  if (was_live) idx_.census_->note_st(id_, st.lk.rec, -1);
  if (!tomb) idx_.census_->note_st(id_, st.rec, +1);
  if (st.lk.found && !slot::is_tombstone(st.lk.value)) {
    idx_.account_live(st.lk.rec, -static_cast<int64_t>(st.lk.rec->size()));
  }
  if (!tomb) {
    idx_.account_live(st.rec, static_cast<int64_t>(st.rec->size()));
  }
  Op& op = *st.op;
  op.result = (op.code == OpCode::kDel && !was_live) ? Result::kNotFound : Result::kOk;
  op.out_version = st.rec->version;
  op.out_prev_version = was_live ? st.lk.rec->version : 0;
  op.out_stale = !tomb && st.rec->kind() == RecordKind::kStale;
  return true;
}

void Worker::State::publish_all() noexcept {
  if (staged_.empty()) return;
  while (!staged_.empty()) {
    log_.writeback_tail_nodrain(batch_);
    FERRITE_CRASH_POINT(crash::kWorkerAfterRecordFlush);
    batch_.commit();  // P1: the records of this round are durable
    retry_.clear();
    for (Staged& st : staged_) {
      for (;;) {
        if (try_publish(st)) break;
        // The slot changed since W1: decide again against what is there now.
        Op& op = *st.op;
        Lookup lk;
        if (Result r = idx_.find_for_write(op.key, st.h, &lk); r != Result::kOk) {
          op.result = r;
          break;
        }
        // Ops whose slot word depends on the old state are planned again.
        const bool depends_on_old = op.code == OpCode::kAppend || op.code == OpCode::kPrepend ||
                                    op.code == OpCode::kIncr || op.code == OpCode::kDecr ||
                                    op.code == OpCode::kTouch || op.code == OpCode::kDel ||
                                    op.code == OpCode::kInvalidate ||
                                    (op.code == OpCode::kCas && op.stale_if_older);
        const RecordHeader* dummy = nullptr;
        if (!depends_on_old) {
          // The record's content does not depend on the old value: recheck
          // the condition only (plan() without appending a new record).
          const RecordHeader* cur = (lk.found && !slot::is_tombstone(lk.value)) ? lk.rec : nullptr;
          if (cur != nullptr && expired(cur, [this] { return burst_now(); })) cur = nullptr;
          bool ok = true;
          switch (op.code) {
            case OpCode::kAdd: ok = cur == nullptr; if (!ok) { op.result = Result::kExists; op.out_version = cur->version; } break;
            case OpCode::kReplace: ok = cur != nullptr; if (!ok) op.result = Result::kNotStored; break;
            default: break;
          }
          // The expected version (kCas, and kSet / kReplace with cas != 0)
          // is compared again against the new record: the CAS below then
          // publishes only if it is still current (check_expected).
          if (ok) {
            bool as_stale = false;  // stale_if_older ops are planned again (above)
            if (Result c = check_expected(op, cur, &as_stale); c != Result::kOk) {
              ok = false;
              op.result = c;
              if (c == Result::kCasMismatch) op.out_version = cur->version;
            }
          }
          note_read(lk, st.h);
          if (!ok) {
            break;
          }
          st.lk = lk;
          continue;  // retry the CAS with the same durable record
        }
        bool tomb = false;
        if (plan(op, st.h, lk, &dummy, &tomb) == Plan::kWrite) {
          retry_.push_back(Staged{&op, st.h, dummy, tomb, lk});  // needs another P1
        }
        break;
      }
    }
    staged_.swap(retry_);
  }
  staged_mask_ = 0;
  for (std::atomic<uint64_t>* sl : published_) batch_.add(sl, sizeof(uint64_t));  // W2's write-backs
  FERRITE_CRASH_POINT(crash::kWorkerAfterSlotCas);
  batch_.commit();  // P2: every published slot durable (and any dirty reads)
  log_.seal_retired_st();  // old heads go to the cleaner only now (log.h)
  FERRITE_CRASH_POINT(crash::kWorkerAfterSlotFence);
  read_needs_fence_ = false;
  // W3: clear dirty bits we set; a failed CAS means someone wrote after us.
  for (std::size_t i = 0; i < published_.size(); ++i) {
    uint64_t w = published_words_[i];
    (void)published_[i]->compare_exchange_strong(w, w & ~slot::kDirty, std::memory_order_release,
                                                 std::memory_order_relaxed);
  }
  published_.clear();
  published_words_.clear();
}

bool Worker::State::staged_has(uint64_t h, std::string_view key) const noexcept {
  if ((staged_mask_ & (1ull << (h & 63))) == 0) return false;
  for (const Staged& st : staged_) {
    if (st.h == h && st.op->key == key) return true;
  }
  return false;
}

void Worker::State::prefetch(std::span<Op> ops, uint64_t* hashes) const noexcept {
  // Two passes of software prefetch give the burst memory-level parallelism:
  // every op's first bucket line, then the record its tag points at, are in
  // flight together instead of one cache miss after another.
  Directory* d = idx_.dir();
  const unsigned depth = static_cast<unsigned>(d->depth);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const uint64_t h = hash_key(ops[i].key);
    hashes[i] = h;
    TableSegment* s = idx_.seg(d->seg[dir_index(h, depth)].load(std::memory_order_acquire));  // A2
    __builtin_prefetch(&s->buckets[bucket1(h)]);
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const uint64_t h = hashes[i];
    TableSegment* s = idx_.seg(d->seg[dir_index(h, depth)].load(std::memory_order_acquire));  // A2
    const uint16_t tag = slot::tag_of(h);
    for (const auto& w : s->buckets[bucket1(h)].slots) {
      const uint64_t v = w.load(std::memory_order_relaxed);
      if (!slot::is_empty(v) && slot::tag(v) == tag && !slot::is_dead(v)) {
        // The record's first two lines: a record past 64 bytes (a 16-byte
        // key and a 32-byte value make 72) or one that straddles a line
        // needs the second for verify-on-read, and its miss would come
        // only after the first returned.
        const char* r = reinterpret_cast<const char*>(idx_.record(v));
        __builtin_prefetch(r);
        __builtin_prefetch(r + kCacheLine);
        break;
      }
    }
  }
}

// Room for writes (space.h). A write that finds no free log segment (or no
// room to split a table segment) while a background cleaner runs does not
// fail at once: run() stops the burst there, the ops before it are
// published and durable as usual, and the worker, offline (so the cleaner's
// grace periods can end), waits for the cleaner; then the rest of the burst
// runs, in its order. A write is refused only when the wait says so: live
// data above the limit (kLiveFull, at once), or no room by the deadline
// (kNoSpace); the rest of the burst then runs without waiting again, so
// reads are still served and a write that finds room still succeeds.
// Invariant: the ops of one execute() take effect in their order, each
// exactly once (an op is stopped only before it has written anything).
void Worker::State::execute(std::span<Op> ops) {
  if (ops.size() == 1 && ops[0].code == OpCode::kGet) {  // a request that came alone
    get_one(ops[0]);
    return;
  }
  may_wait_ = idx_.space_->managed();
  refusal_ = Result::kNoSpace;
  std::chrono::steady_clock::time_point deadline{};
  std::size_t from = 0;
  for (;;) {
    const std::size_t stopped = from + run(ops.subspan(from));
    if (stopped == ops.size()) break;
    FERRITE_CHECK(may_wait_ && ops[stopped].result == Result::kNoSpace);
    // The worker waits offline (QSBR Q3): it holds nothing the cleaner's
    // grace periods must wait for.
    FERRITE_DCHECK(idx_.qsbr_.is_offline(id_));
    if (deadline == std::chrono::steady_clock::time_point{}) {
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(idx_.space_->options().max_wait_ms);
    }
    const Result r = idx_.space_->wait_for_room(deadline);
    if (r != Result::kOk) {
      may_wait_ = false;
      refusal_ = r;
    }
    from = stopped;
  }
  if (!may_wait_) {  // refusals are possible only in a pass that may not wait
    uint64_t refused = 0;
    for (std::size_t i = from; i < ops.size(); ++i) refused += ops[i].result == refusal_ ? 1 : 0;
    idx_.space_->note_refused(refusal_, refused);
  }
}

// The same steps as run() for one kGet, in the same order and under the
// same rules (QSBR online around every reference, serve_get() as plan() has it,
// the dirty-slot fence before the result is returned); a read never waits
// for room, so execute()'s retry loop has nothing to do.
void Worker::State::get_one(Op& op) noexcept {
  if (!admit(op)) return;
  const uint64_t h = hash_key(op.key);
  idx_.qsbr_.online(id_);
  now_ = 0;
  serve_get(op, h, idx_.find(op.key, h));
  if (read_needs_fence_) {  // the result came through a dirty slot (note_read)
    batch_.commit();
    read_needs_fence_ = false;
  }
  FERRITE_DCHECK(staged_.empty() && !batch_.pending());
  idx_.qsbr_.offline(id_);
}

std::size_t Worker::State::run(std::span<Op> ops) {
  idx_.qsbr_.online(id_);
  now_ = 0;  // one clock read per burst at most (burst_now): expiry is decided at burst granularity
  constexpr std::size_t kChunk = 64;
  uint64_t hashes[kChunk];
  std::size_t stop = ops.size();
  for (std::size_t base = 0; base < ops.size() && stop == ops.size(); base += kChunk) {
    std::span<Op> chunk = ops.subspan(base, std::min(kChunk, ops.size() - base));
    // Hints only (the lookups below re-read everything); a lone op has no
    // other lookup to overlap its misses with, so it only hashes.
    if (chunk.size() > 1) {
      prefetch(chunk, hashes);
    } else {
      hashes[0] = hash_key(chunk[0].key);
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      Op& op = chunk[i];
      if (!admit(op)) continue;
      const uint64_t h = hashes[i];
      // An op on a key this burst already wrote sees that write: publish first.
      if (staged_has(h, op.key)) publish_all();
      Lookup lk;
      if (is_write(op.code)) {
        if (Result r = idx_.find_for_write(op.key, h, &lk); r != Result::kOk) {
          op.result = r;
          if (r == Result::kNoSpace && may_wait_) {  // a split found no room
            stop = base + i;
            break;
          }
          if (r == Result::kNoSpace) op.result = refusal_;
          continue;
        }
      } else {
        lk = idx_.find(op.key, h);
      }
      const RecordHeader* rec = nullptr;
      bool tomb = false;
      if (plan(op, h, lk, &rec, &tomb) == Plan::kWrite) {
        staged_.push_back(Staged{&op, h, rec, tomb, lk});
        staged_mask_ |= 1ull << (h & 63);
      } else if (op.result == Result::kNoSpace) {  // its record found no room
        if (may_wait_) {
          stop = base + i;
          break;
        }
        op.result = refusal_;
      }
    }
  }
  publish_all();
  if (read_needs_fence_) {
    batch_.commit();
    read_needs_fence_ = false;
  }
  // Fence before ack ("return" above): every op of the pass is published
  // and every write-back it issued (records, slots, dirty slots it read) is
  // fenced, so the caller may reply. And the worker goes offline holding no
  // reference (QSBR Q3): no staged op keeps a Lookup into a segment to use
  // later (retry_ is scratch of publish_all, cleared before each use).
  FERRITE_DCHECK(staged_.empty() && published_.empty());
  FERRITE_DCHECK(!batch_.pending());
  idx_.qsbr_.offline(id_);
  return stop;
}

}  // namespace ferrite::index
