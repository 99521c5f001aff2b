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

namespace ferrite::index {
namespace {

// now: the burst's clock, read only for a record that has an expiry.
template <typename Now>
bool expired(const RecordHeader* r, Now&& now) noexcept {
  return r->expiry != 0 && r->expiry <= now();
}

// memcached's rule for incr/decr (its safe_strtoull over the value, which
// strtoull reads up to the first non-digit): optional leading white space,
// an optional sign, at least one digit, then the end of the value or a white
// space (whatever follows it is ignored: " 5 6" is 5). More than 2^64 - 1 is
// not a number; a '-' is accepted only when the wrapped result is below
// 2^63, as memcached does ("-0" is 0, "-5" is not a number).
constexpr bool is_c_space(char c) noexcept { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool parse_counter_value(std::string_view v, uint64_t* out) noexcept {
  std::size_t i = 0;
  while (i < v.size() && is_c_space(v[i])) ++i;
  bool neg = false;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) neg = v[i++] == '-';
  const std::size_t digits = i;
  uint64_t n = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    const auto d = static_cast<uint64_t>(v[i] - '0');
    if (n > (UINT64_MAX - d) / 10) return false;  // ERANGE
    n = n * 10 + d;
  }
  if (i == digits) return false;                        // no digits
  if (i < v.size() && !is_c_space(v[i])) return false;  // "5x"
  if (neg) n = 0 - n;
  if (neg && static_cast<int64_t>(n) < 0) return false;
  *out = n;
  return true;
}

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

// Expected-version compare of a conditional write (Op::cas != 0; index.h).
// cur: the live record the op would replace (null if the key is absent).
// Returns kOk if the op may go on, else its result.
//
// Atomicity invariant: the compare is decided against the record named by
// the slot word lk.value that plan() read, and the write becomes visible
// only by the W2 CAS of that slot from exactly lk.value to the new word
// (try_publish). Records are immutable, and a slot comes back to an earlier
// word only by losing a transient bit (dirty, or a moved bit a crash left,
// index.cc), which does not change the record it names: every write names a
// new record or sets the tombstone bit, and a log offset is reused only
// after a QSBR grace period, which cannot end while this worker is inside
// execute(). So a CAS that succeeds proves that the compared record was
// still the key's current one at the instant the write was published: no
// write by another worker can fall between compare and write. If the CAS fails, the op is decided again against the new slot
// word (publish_all), which re-runs this compare. A relocation by the
// cleaner keeps the version, so it only costs a retry. Durability is that of
// any write: the new record is fenced (P1) before the CAS, the slot after
// (P2), before the caller can reply.
//
// *as_stale: a kCas with stale_if_older whose cas is lower than the current
// version goes on as a stale write (index.h); decided by the same compare.
Result check_expected(const Op& op, const RecordHeader* cur, bool* as_stale) noexcept {
  *as_stale = false;
  if (op.code == OpCode::kGet || op.code == OpCode::kAdd) return Result::kOk;
  if (op.cas == 0 && op.code != OpCode::kCas) return Result::kOk;  // kCas always compares
  if (cur == nullptr) return Result::kNotFound;
  if (cur->version != op.cas) {
    if (op.code == OpCode::kCas && op.stale_if_older && op.cas < cur->version) {
      *as_stale = true;
      return Result::kOk;
    }
    return Result::kCasMismatch;
  }
  return Result::kOk;
}

// The record kind a write keeps from the record it replaces: touch (and an
// incr/decr whose number fits the old length, which memcached does in place)
// leave a stale value stale; every other write stores a fresh value.
// Ops whose result carries the current value (or a copy of it).
constexpr bool reads_value(OpCode c) noexcept {
  switch (c) {
    case OpCode::kGet:
    case OpCode::kAppend:
    case OpCode::kPrepend:
    case OpCode::kIncr:
    case OpCode::kDecr:
    case OpCode::kTouch:
    case OpCode::kInvalidate: return true;
    default: return false;
  }
}

RecordKind kept_kind(const RecordHeader* cur) noexcept {
  return cur->kind() == RecordKind::kStale ? RecordKind::kStale : RecordKind::kValue;
}

}  // namespace

Worker::State::State(IndexImpl& idx, unsigned id)
    : idx_(idx), id_(id), log_(idx, id), batch_(idx.pool_.persister()) {
  staged_.reserve(64);
  retry_.reserve(64);
  published_.reserve(64);
  published_words_.reserve(64);
}

const RecordHeader* Worker::State::append(RecordKind kind, std::string_view key, std::string_view v1,
                                          std::string_view v2, uint32_t flags, uint32_t exptime,
                                          std::size_t spaces) noexcept {
  const std::size_t size = record_size(key.size(), v1.size() + v2.size() + spaces);
  char* dst = log_.reserve_st(size);
  if (dst == nullptr) return nullptr;
  if (kind == RecordKind::kStale) idx_.ensure_stale_feature();  // before the record exists (index.cc)
  // Version: session (16 bits) | worker (6 bits) | counter (42 bits); unique
  // per write across workers and restarts (session = pool open count).
  const uint64_t version = idx_.session_ | (static_cast<uint64_t>(id_) << 42) | (next_version_++ & ((1ull << 42) - 1));
  const RecordHeader* r = write_record(dst, kind, key, v1, v2, flags, exptime, version, spaces);
  log_.writeback_full_lines_nodrain(batch_);  // W1 (the last partial line: before P1)
  return r;
}

void Worker::State::note_dirty_read(const Lookup& lk, uint64_t h) noexcept {
  // Link-and-persist, reader side: a result derived from a dirty slot is
  // returned only after that slot is durable.
  if (lk.slot != nullptr && slot::is_dirty(lk.value)) {
    batch_.add(lk.slot, sizeof(uint64_t));
    read_needs_fence_ = true;
  }
  // The dirty slots this op's probe passed must be durable too, or a crash
  // could empty one of them and hide the slot this op used or filled behind
  // it (tests/crash/dirty_prefix_test.cc). For a write they are written back
  // before P1, so they are durable before the op's own slot can be.
  for (uint32_t m = lk.dirty_passed; m != 0; m &= m - 1) {
    batch_.add(probe_slot(lk.seg, h, static_cast<unsigned>(__builtin_ctz(m))), sizeof(uint64_t));
    read_needs_fence_ = true;
  }
}

// The key's live record as op sees it (null: absent, deleted, expired, or
// failed verification), with the reader side of link-and-persist noted.
// Every op's first step (plan(), serve_get()).
const RecordHeader* Worker::State::current(const Op& op, uint64_t h, const Lookup& lk) noexcept {
  const RecordHeader* cur = (lk.found && !slot::is_tombstone(lk.value)) ? lk.rec : nullptr;
  if (cur != nullptr && expired(cur, [this] { return burst_now(); })) cur = nullptr;
  // Verify-on-read: ops that hand the value to a client or copy it into a
  // new record check the record first, so a flipped bit is never served or
  // laundered into a record with a fresh checksum. A failing record is
  // counted and logged by read_intact; the key then counts as absent (what
  // crash repair makes of the same record).
  if (cur != nullptr && reads_value(op.code) && FERRITE_UNLIKELY(!idx_.read_intact(cur))) cur = nullptr;
  note_read(lk, h);
  return cur;
}

// A kGet: plan()'s case for it, and all of get_one()'s decision. It writes
// nothing, so it has no expected version to compare (check_expected).
void Worker::State::serve_get(Op& op, uint64_t h, const Lookup& lk) noexcept {
  const RecordHeader* cur = current(op, h, lk);
  if (cur == nullptr) {
    op.result = Result::kNotFound;
    return;
  }
  if (op.out_value != nullptr) op.out_value->assign(cur->value_ptr(), cur->value_len());
  idx_.space_->note_read(static_cast<uint64_t>(reinterpret_cast<const char*>(cur) - idx_.base_));
  op.out_flags = cur->client_flags;
  op.out_exptime = cur->expiry;
  op.out_version = cur->version;
  op.out_stale = cur->kind() == RecordKind::kStale;
  op.result = Result::kOk;
}

Worker::State::Plan Worker::State::plan(Op& op, uint64_t h, const Lookup& lk, const RecordHeader** rec_out,
                                        bool* tomb_out) noexcept {
  *tomb_out = false;
  if (op.code == OpCode::kGet) {
    serve_get(op, h, lk);
    return Plan::kDone;
  }
  const RecordHeader* cur = current(op, h, lk);
  bool as_stale = false;
  if (Result c = check_expected(op, cur, &as_stale); c != Result::kOk) {  // kCas included
    op.result = c;
    if (c == Result::kCasMismatch) op.out_version = cur->version;
    return Plan::kDone;
  }
  auto write = [&](RecordKind kind, std::string_view v1, std::string_view v2, uint32_t flags, uint32_t exp,
                   std::size_t spaces = 0) {
    const RecordHeader* r = append(kind, op.key, v1, v2, flags, exp, spaces);
    if (r == nullptr) {
      op.result = Result::kNoSpace;
      return Plan::kDone;
    }
    *rec_out = r;
    return Plan::kWrite;
  };
  switch (op.code) {
    case OpCode::kGet:  // served above
      return Plan::kDone;
    case OpCode::kSet:
      return write(RecordKind::kValue, op.value, {}, op.flags, op.exptime);
    case OpCode::kAdd:
      if (cur != nullptr) {
        op.result = Result::kExists;
        op.out_version = cur->version;
        return Plan::kDone;
      }
      return write(RecordKind::kValue, op.value, {}, op.flags, op.exptime);
    case OpCode::kReplace:
      if (cur == nullptr) {
        op.result = Result::kNotStored;
        return Plan::kDone;
      }
      return write(RecordKind::kValue, op.value, {}, op.flags, op.exptime);
    case OpCode::kAppend:
    case OpCode::kPrepend: {
      if (cur == nullptr) {
        op.result = Result::kNotStored;
        return Plan::kDone;
      }
      if (cur->value_len() + op.value.size() > kMaxValueLen) {
        op.result = Result::kTooLarge;
        return Plan::kDone;
      }
      if (op.code == OpCode::kAppend) return write(RecordKind::kValue, cur->value(), op.value, cur->client_flags, cur->expiry);
      return write(RecordKind::kValue, op.value, cur->value(), cur->client_flags, cur->expiry);
    }
    case OpCode::kCas:  // compared by check_expected above
      // ms I with an older cas: the new value, stale, keeping the current
      // expiry (as memcached 1.6.18 does).
      if (as_stale) return write(RecordKind::kStale, op.value, {}, op.flags, cur->expiry);
      return write(RecordKind::kValue, op.value, {}, op.flags, op.exptime);
    case OpCode::kIncr:
    case OpCode::kDecr: {
      if (cur == nullptr) {
        op.result = Result::kNotFound;
        return Plan::kDone;
      }
      uint64_t n = 0;
      if (!parse_counter_value(cur->value(), &n)) {
        op.result = Result::kNotNumeric;
        return Plan::kDone;
      }
      if (op.code == OpCode::kIncr) {
        n += op.delta;  // wraps at 2^64, as memcached does
      } else {
        n = op.delta > n ? 0 : n - op.delta;
      }
      char buf[24];
      auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), n);
      (void)ec;
      op.out_number = n;
      // As memcached: a number no longer than the old value keeps the old
      // length, padded with spaces ("100" decr 1 stores "99 "); a longer one
      // takes its own length. The reply (out_number) has no padding.
      const auto len = static_cast<std::size_t>(p - buf);
      const std::string_view num(buf, len);
      const std::size_t pad = len < cur->value_len() ? cur->value_len() - len : 0;
      const RecordKind kind = len <= cur->value_len() ? kept_kind(cur) : RecordKind::kValue;
      return write(kind, num, {}, cur->client_flags, cur->expiry, pad);
    }
    case OpCode::kTouch:
      if (cur == nullptr) {
        op.result = Result::kNotFound;
        return Plan::kDone;
      }
      return write(kept_kind(cur), cur->value(), {}, cur->client_flags, op.exptime);
    case OpCode::kInvalidate:
      if (cur == nullptr) {
        op.result = Result::kNotFound;
        return Plan::kDone;
      }
      return write(RecordKind::kStale, cur->value(), {}, cur->client_flags, op.set_exptime ? op.exptime : cur->expiry);
    case OpCode::kDel:
      if (cur == nullptr) {
        op.result = Result::kNotFound;
        return Plan::kDone;
      }
      // A delete writes no record: the slot keeps pointing at the key's
      // record (which still names the key for lookups) with the tombstone
      // bit set. So deletes need no log space and work in a full pool.
      *rec_out = lk.rec;
      *tomb_out = true;
      return Plan::kWrite;
  }
  op.result = Result::kMalformed;
  return Plan::kDone;
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
