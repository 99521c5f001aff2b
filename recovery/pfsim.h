// Power-failure simulator (test builds only): a shadow image of the pool
// that receives a cache line only when real hardware would guarantee it to be
// durable, so a simulated power failure drops every store that could be lost.
// This is what pmemcheck/pmreorder do for PMDK, done our way: no
// instrumentation of stores, only of write-backs and fences.
//
// Model (x86 with clwb/clflushopt + sfence, ADR):
//  - flush(line): the line's content AT THAT MOMENT is captured in the
//    flushing thread's pending list (a later store to the line is not
//    covered by this flush, as on hardware).
//  - fence by thread T: T's pending lines reach the shadow, in flush order;
//    a line never goes back to older content (per-line sequence numbers:
//    another thread may have flushed the same line later and fenced first).
//  - power failure: from that moment nothing reaches the shadow. In
//    kFencedOnly mode the shadow holds exactly the fenced state; in
//    kRandomUnfenced mode every flushed-but-unfenced line (of every thread)
//    reaches it with probability 1/2 first, as a write-back in flight may or
//    may not have completed.
//  Stores that were never flushed never reach the shadow. (Real hardware
//  may also evict a dirty line on its own; a design may not rely on that not
//  happening, but the pessimistic model is what finds a missing flush.)
//
// Both our own persists (pmem::Persister, through pmem::PersistObserver) and
// libpmemobj's (its transactions and allocator call libpmem's pmem_flush,
// pmem_drain, pmem_persist, pmem_memcpy/memmove/memset: pfsim.cc interposes
// them in the executable) are observed. Start the simulator after Pool::open
// (and after Index::open if you like): the shadow starts as a copy of the
// pool file's current contents.
//
// Files: the shadow (SHADOW) and its side file (SHADOW.pending: per-line
// sequence numbers, per-thread pending lines) are MAP_SHARED, so a process
// killed with SIGKILL leaves them behind and another process can finish the
// crash image with finish_after_kill(). After a power failure the shadow is a
// pool file: rename it over the pool (or open it directly) and recover.
//
//   auto sim = PowerFailSim::start(pool, pool.path() + ".shadow");
//   ... workload ...
//   sim->power_fail(PfMode::kRandomUnfenced, seed);   // or from a crash point hook
//   ... close the real pool, then open SHADOW and check ...
//
// Thread safety: any number of threads may flush and fence concurrently
// (a mutex orders the shadow updates: test builds only). At most kMaxThreads
// distinct threads may flush while one simulator runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "pmem/persist.h"
#include "pmem/pool.h"

namespace ferrite::recovery {

enum class PfMode : uint8_t {
  kFencedOnly,      // the shadow holds exactly what was flushed and fenced
  kRandomUnfenced,  // plus a random subset of flushed-but-unfenced lines
};
const char* to_string(PfMode m) noexcept;

struct PfStats {
  uint64_t flushed_lines = 0;   // lines captured by flushes
  uint64_t fences = 0;          // fences that applied something
  uint64_t applied_lines = 0;   // lines that reached the shadow
  uint64_t dropped_lines = 0;   // flushed lines a power failure dropped
};

class PowerFailSim final : public pmem::PersistObserver {
 public:
  static constexpr unsigned kMaxThreads = 8;
  static constexpr uint64_t kLinesPerThread = 1u << 17;  // pending capacity (8 MiB of lines)

  // Copies pool's current image to shadow_path (replacing it), creates the
  // side file, and installs the simulator as the global persist observer.
  // The caller guarantees nothing persists concurrently during start().
  static StatusOr<std::unique_ptr<PowerFailSim>> start(pmem::Pool& pool, const std::string& shadow_path);
  ~PowerFailSim() override;  // uninstalls; leaves the files (see remove_files)

  // A power failure now (idempotent; later calls do nothing).
  void power_fail(PfMode mode, uint64_t seed);
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  PfStats stats() const;
  const std::string& shadow_path() const noexcept { return shadow_path_; }

  // For a process killed while simulating: applies the power failure's
  // random part (kRandomUnfenced) from the side file that process left,
  // then removes the side file. The shadow is then the crash image.
  static Status finish_after_kill(const std::string& shadow_path, PfMode mode, uint64_t seed);
  static void remove_files(const std::string& shadow_path);

  // PersistObserver.
  void on_flush(const void* addr, std::size_t len) noexcept override;
  void on_fence() noexcept override;

 private:
  struct Side;  // layout of the side file (pfsim.cc)
  PowerFailSim() = default;
  int thread_slot() noexcept;

  std::string shadow_path_;
  const char* base_ = nullptr;  // the pool mapping
  std::size_t size_ = 0;
  char* shadow_ = nullptr;      // MAP_SHARED mapping of the shadow file
  Side* side_ = nullptr;        // MAP_SHARED mapping of the side file
  std::size_t side_bytes_ = 0;
  std::atomic<bool> failed_{false};
  std::atomic<unsigned> threads_{0};
  uint64_t id_ = 0;             // distinguishes simulators for thread-local slots
  mutable std::mutex mu_;       // orders shadow updates
  std::atomic<uint64_t> flushed_{0}, fences_{0}, applied_{0}, dropped_{0};
};

}  // namespace ferrite::recovery
