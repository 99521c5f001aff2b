// Persist primitives: write back cache lines without a fence (flush), order
// them (fence), and a per-worker PersistBatch that flushes as it goes and
// fences once per burst.
//
// Two modes, chosen per pool at open (Persister::mode()):
//  - kFlush: the mapping is persistent memory, or PMEM_IS_PMEM_FORCE=1 says to
//    treat it so (emulated PMEM on /dev/shm). flush() issues clwb (or
//    clflushopt/clflush on CPUs without it) per 64-byte line; fence() is sfence.
//    Cost here: ~25 ns a line with one fence per 16 lines, ~230 ns with a fence
//    per line -- hence one fence per burst.
//  - kMsync: anything else (a plain file, tmpfs without the env var). flush()
//    msyncs the pages at once (durable on return, slow); fence() does nothing.
//    The pool logs a warning at open when it lands in this mode.
//
// Naming: *_nodrain = stores written back but not yet ordered; the caller
// fences. *_persist = durable on return.
//
// Thread safety: Persister is immutable after construction and shared by all
// workers. A PersistBatch belongs to one worker (_st: owning thread only).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/cacheline.h"

namespace ferrite::pmem {

enum class FlushInsn : uint8_t { kClwb, kClflushopt, kClflush };

// Best write-back instruction this CPU offers (CPUID, read once).
FlushInsn cpu_flush_insn() noexcept;

// Test-build hook for the power-failure simulator (issue: crash consistency):
// when set, every flush and fence is reported to it before it takes effect.
struct PersistObserver {
  virtual ~PersistObserver() = default;
  virtual void on_flush(const void* addr, std::size_t len) noexcept = 0;
  virtual void on_fence() noexcept = 0;
};
void set_persist_observer(PersistObserver* obs) noexcept;  // nullptr to clear
extern PersistObserver* g_persist_observer;                 // read on every flush; null in production

namespace detail {
inline void writeback_line(const void* p, FlushInsn insn) noexcept {
  // The assembler knows these mnemonics regardless of -march; the CPU check
  // happened once in cpu_flush_insn().
  switch (insn) {
    case FlushInsn::kClwb:
      asm volatile("clwb %0" : "+m"(*static_cast<volatile char*>(const_cast<void*>(p))));
      break;
    case FlushInsn::kClflushopt:
      asm volatile("clflushopt %0" : "+m"(*static_cast<volatile char*>(const_cast<void*>(p))));
      break;
    case FlushInsn::kClflush:
      asm volatile("clflush %0" : "+m"(*static_cast<volatile char*>(const_cast<void*>(p))));
      break;
  }
}
}  // namespace detail

class Persister {
 public:
  enum class Mode : uint8_t { kFlush, kMsync };

  Persister() noexcept = default;
  Persister(Mode mode, FlushInsn insn) noexcept : mode_(mode), insn_(insn) {}

  Mode mode() const noexcept { return mode_; }
  FlushInsn insn() const noexcept { return insn_; }

  // Writes back every cache line overlapping [p, p+len); no fence.
  // In kMsync mode the range is msync'ed now (durable on return).
  // Returns the number of lines written back (0 in kMsync mode).
  std::size_t flush_nodrain(const void* p, std::size_t len) const noexcept {
    if (len == 0) return 0;
    if (FERRITE_UNLIKELY(g_persist_observer != nullptr)) g_persist_observer->on_flush(p, len);
    if (FERRITE_UNLIKELY(mode_ == Mode::kMsync)) {
      msync_range(p, len);
      return 0;
    }
    auto a = line_floor(reinterpret_cast<std::uintptr_t>(p));
    const auto end = reinterpret_cast<std::uintptr_t>(p) + len;
    std::size_t n = 0;
    for (; a < end; a += kCacheLine, ++n) detail::writeback_line(reinterpret_cast<const void*>(a), insn_);
    return n;
  }

  // Orders every earlier write-back before any later store (sfence). clwb and
  // clflushopt are weakly ordered; this is what makes them durable.
  void fence() const noexcept {
    if (FERRITE_UNLIKELY(g_persist_observer != nullptr)) g_persist_observer->on_fence();
    if (FERRITE_LIKELY(mode_ == Mode::kFlush)) asm volatile("sfence" ::: "memory");
  }

  // flush + fence: durable on return. For the control path and tests.
  void persist(const void* p, std::size_t len) const noexcept {
    flush_nodrain(p, len);
    fence();
  }

 private:
  static void msync_range(const void* p, std::size_t len) noexcept;

  Mode mode_ = Mode::kFlush;
  FlushInsn insn_ = FlushInsn::kClwb;
};

// One worker's persist batch: add() writes lines back as the burst goes,
// commit() fences once. Usage per burst:
//   batch.add(rec, rec_len);  ...  batch.commit();   // records durable (P1)
//   batch.add(slot, 8);       ...  batch.commit();   // slots durable (P2)
class PersistBatch {
 public:
  explicit PersistBatch(const Persister& p) noexcept : persister_(&p) {}

  void add(const void* p, std::size_t len) noexcept {
    lines_ += persister_->flush_nodrain(p, len);
    ++ranges_;
  }
  // Fences if anything was added since the last commit. Returns lines covered.
  std::size_t commit() noexcept {
    if (ranges_ == 0) return 0;
    persister_->fence();
    std::size_t n = lines_;
    total_lines_ += lines_;
    ++total_fences_;
    lines_ = 0;
    ranges_ = 0;
    return n;
  }
  bool pending() const noexcept { return ranges_ != 0; }
  std::uint64_t total_lines() const noexcept { return total_lines_; }
  std::uint64_t total_fences() const noexcept { return total_fences_; }

 private:
  const Persister* persister_;
  std::size_t lines_ = 0;
  std::size_t ranges_ = 0;
  std::uint64_t total_lines_ = 0;
  std::uint64_t total_fences_ = 0;
};

}  // namespace ferrite::pmem
