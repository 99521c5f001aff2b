// Quiescent-state-based reclamation for the index: memory that readers may
// still be looking at (a split's old table segment, an old directory, a
// cleaned log segment) is freed only after every thread that was online when
// it was retired has since gone offline or reported a quiescent state. The
// index's threads are online only while they hold references (a worker for
// one burst: Worker::State::run(); the cleaner, scans, the repair pass for
// one step) and offline otherwise, so an idle worker never delays a free.
// Our own small scheme: rte_rcu_qsbr would tie index/ to DPDK, and we need
// only this much.
//
// Invariants (checked in debug builds):
//  Q1  epoch_ only grows; a slot's seen value, while online, only grows and
//      is never above epoch_.
//  Q2  online() only from offline: a second online() would move the slot's
//      epoch past objects retired after the first one while the thread may
//      still hold them.
//  Q3  an offline (or quiesced) thread holds no reference taken before
//      (callers check their own state, e.g. Worker::State::run()).
//  Q4  a retired function runs only once every slot's seen value is past its
//      retire epoch (reclaim()), or when every slot is offline (drain_all()).
//
// Thread safety: quiesce()/online()/offline() are called by the owning thread
// (_st on its slot). retire() and reclaim() may be called from any thread;
// the pending list is guarded by a mutex (control path: a few times a second
// at most).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "common/cacheline.h"

namespace ferrite::index {

class Qsbr {
 public:
  explicit Qsbr(unsigned threads);

  // R1: publishes "this thread holds no references taken before now".
  // Pairs with A1 in reclaim().
  // The thread must be online: a quiesce of an offline slot would bring it
  // online by a release store, without F1 (online()).
  void quiesce(unsigned t) noexcept {
    const uint64_t seen = slots_[t].seen.load(std::memory_order_relaxed);
    FERRITE_DCHECK(seen != kOffline);
    const uint64_t e = epoch_.load(std::memory_order_acquire);
    FERRITE_DCHECK(e >= seen);  // Q1
    slots_[t].seen.store(e, std::memory_order_release);
  }
  // An offline thread never holds references and does not delay reclamation.
  void offline(unsigned t) noexcept { slots_[t].seen.store(kOffline, std::memory_order_release); }
  // The owning thread's view of its slot (debug checks, e.g. Q3).
  bool is_offline(unsigned t) const noexcept {
    return slots_[t].seen.load(std::memory_order_relaxed) == kOffline;
  }
  // R1 as quiesce(), but as a seq_cst exchange (F1): a full barrier, so the
  // thread's loads that follow (the burst's lookups) cannot be performed
  // before its "online" store is visible. A plain release store would let
  // them (store buffer; the C++ model allows it too): reclaim() could then
  // read this slot as offline (A1) after the burst already loaded a pointer
  // to something retired just before, and free it under the burst. Pairs
  // with retire()'s seq_cst epoch increment and reclaim()'s seq_cst loads
  // (A1): either reclaim sees this slot online, or this thread's loads see
  // the unlinking that preceded the retire. rte_rcu_qsbr_thread_online has
  // a fence at the same place; an exchange because GCC's TSan refuses
  // atomic_thread_fence, and xchg is the barrier on x86 anyway.
  void online(unsigned t) noexcept {
    const uint64_t was =
        slots_[t].seen.exchange(epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);  // F1
    FERRITE_DCHECK(was == kOffline);  // Q2
  }

  // The release store online() was before F1, kept only for the litmus test
  // (qsbr_test.cc) that shows why F1 is needed: never call it elsewhere.
  void TEST_online_without_fence(unsigned t) noexcept {
    slots_[t].seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_release);
  }

  // Schedules fn to run once every online thread has quiesced after now.
  void retire(std::function<void()> fn);
  // Runs what is safe to run now; returns how many ran.
  std::size_t reclaim();
  // Runs everything pending (only when no thread can hold references:
  // every slot offline, Q4).
  void drain_all();
  std::size_t pending() const;

 private:
  static constexpr uint64_t kOffline = ~0ull;
  struct alignas(kCacheLine) Slot {
    std::atomic<uint64_t> seen{kOffline};  // written by its thread, read by reclaim()
  };
  std::atomic<uint64_t> epoch_{1};  // bumped by retire(); read by quiesce()
  std::vector<Slot> slots_;
  mutable std::mutex mu_;
  std::vector<std::pair<uint64_t, std::function<void()>>> pending_;  // GUARDED_BY(mu_)
};

}  // namespace ferrite::index
