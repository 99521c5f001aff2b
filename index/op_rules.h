// Rules of an op that both halves of the burst engine apply: plan.cc when it
// decides an op, worker.cc (publish_all) when it decides one again after a
// lost publishing CAS. Internal to index/ (include from its .cc files only).
//
// Pure functions of an op and a record the caller holds under QSBR.
#pragma once

#include "index/index.h"
#include "index/record.h"

namespace ferrite::index {

// now: the burst's clock, read only for a record that has an expiry.
template <typename Now>
inline bool expired(const RecordHeader* r, Now&& now) noexcept {
  return r->expiry != 0 && r->expiry <= now();
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
// lookup.cc), which does not change the record it names: every write names a
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
inline Result check_expected(const Op& op, const RecordHeader* cur, bool* as_stale) noexcept {
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

}  // namespace ferrite::index
