// What each op decides against the state it observes (Worker::State::plan
// and its read path serve_get, with current(): the key's live record), and
// the record a write appends. The burst engine that runs these decisions,
// stages the writes and publishes them is worker.cc; its persist points
// (W1-W3, P1-P2) and crash table are stated there.
//
// Thread safety: a Worker::State belongs to one thread; the records it reads
// are immutable and held under QSBR (the caller is online).
#include <algorithm>
#include <charconv>
#include <cstring>

#include "index/index_impl.h"
#include "index/op_rules.h"

namespace ferrite::index {
namespace {

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

// The record kind a write keeps from the record it replaces: touch (and an
// incr/decr whose number fits the old length, which memcached does in place)
// leave a stale value stale; every other write stores a fresh value.
RecordKind kept_kind(const RecordHeader* cur) noexcept {
  return cur->kind() == RecordKind::kStale ? RecordKind::kStale : RecordKind::kValue;
}
}  // namespace

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

}  // namespace ferrite::index
