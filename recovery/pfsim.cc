// Power-failure simulator (see pfsim.h), and the interposers that let it see
// libpmemobj's own persists.
//
// IMPLEMENTATION DETAILS: the side file (SHADOW.pending), MAP_SHARED
//   struct Side {                         // 64 bytes
//     u64 magic; u64 pool_size; u64 nlines;
//     atomic<u64> seq;                    // last flush sequence number handed out
//     atomic<u64> finished;               // 1: the power failure was applied in-process
//     u64 pad[3];
//   };
//   u64 line_seq[nlines];                 // seq of the content each shadow line holds
//   struct Area {                         // one per flushing thread, kMaxThreads
//     atomic<u64> count; u64 pad[7];      // entries [0, count) are pending (unfenced)
//     Entry e[kLinesPerThread];           // { u64 off; u64 seq; u8 line[64]; }
//   };
// A pending entry is written before count is raised (release), so whoever
// reads count (acquire) -- this process at a power failure, or another one
// after a SIGKILL -- sees complete entries only.
#include "recovery/pfsim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <libpmem.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "common/cacheline.h"

namespace ferrite::recovery {
namespace {

constexpr uint64_t kSideMagic = 0x4d49534650495246ull;  // "FRIPFSIM"

struct Entry {
  uint64_t off;
  uint64_t seq;
  char line[kCacheLine];
};

struct Area {
  std::atomic<uint64_t> count;
  uint64_t pad[7];
  Entry e[PowerFailSim::kLinesPerThread];
};

std::atomic<uint64_t> g_next_sim_id{1};

struct ThreadSlot {
  uint64_t sim_id = 0;
  int slot = -1;
};
thread_local ThreadSlot t_slot;

std::string side_path(const std::string& shadow) { return shadow + ".pending"; }

Status errno_status(const std::string& what) {
  return Status::io_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// Maps path (MAP_SHARED, read-write) with its current size.
StatusOr<std::pair<char*, std::size_t>> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) return errno_status("pfsim: open " + path);
  off_t len = ::lseek(fd, 0, SEEK_END);
  void* p = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return errno_status("pfsim: mmap " + path);
  return std::make_pair(static_cast<char*>(p), static_cast<std::size_t>(len));
}

}  // namespace

struct PowerFailSim::Side {
  uint64_t magic;
  uint64_t pool_size;
  uint64_t nlines;
  std::atomic<uint64_t> seq;
  std::atomic<uint64_t> finished;
  uint64_t pad[3];

  uint64_t* line_seq() noexcept { return reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(this) + 64); }
  Area* area(unsigned t) noexcept {
    const std::size_t first = round_up(64 + nlines * sizeof(uint64_t), 4096);
    return reinterpret_cast<Area*>(reinterpret_cast<char*>(this) + first + t * sizeof(Area));
  }
  static std::size_t bytes_for(uint64_t nlines) noexcept {
    return round_up(64 + nlines * sizeof(uint64_t), 4096) + kMaxThreads * sizeof(Area);
  }
  // Applies one pending entry to the shadow unless the shadow already holds
  // a later flush of that line.
  bool apply(char* shadow, const Entry& en) noexcept {
    const uint64_t idx = en.off / kCacheLine;
    if (en.seq <= line_seq()[idx]) return false;
    const std::size_t n = std::min<std::size_t>(kCacheLine, pool_size - en.off);
    std::memcpy(shadow + en.off, en.line, n);
    line_seq()[idx] = en.seq;
    return true;
  }
};
static_assert(sizeof(PowerFailSim::kMaxThreads) > 0);

const char* to_string(PfMode m) noexcept { return m == PfMode::kFencedOnly ? "fenced-only" : "random-unfenced"; }

StatusOr<std::unique_ptr<PowerFailSim>> PowerFailSim::start(pmem::Pool& pool, const std::string& shadow_path) {
  if (!pool.is_pmem()) {
    return Status::invalid_argument(
        "pfsim: the pool is in msync mode; power-failure simulation needs PMEM_IS_PMEM_FORCE=1 (flush+fence mode)");
  }
  std::unique_ptr<PowerFailSim> sim(new PowerFailSim());
  sim->shadow_path_ = shadow_path;
  sim->base_ = pool.base();
  sim->size_ = pool.size();
  sim->id_ = g_next_sim_id.fetch_add(1);

  // The shadow starts as the pool's image now (everything in it is durable:
  // nothing persists concurrently, by the caller's promise).
  {
    int fd = ::open(shadow_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return errno_status("pfsim: create " + shadow_path);
    std::size_t done = 0;
    while (done < sim->size_) {
      ssize_t w = ::write(fd, sim->base_ + done, std::min<std::size_t>(sim->size_ - done, 1u << 24));
      if (w <= 0) {
        ::close(fd);
        return errno_status("pfsim: write " + shadow_path);
      }
      done += static_cast<std::size_t>(w);
    }
    ::close(fd);
  }
  auto shadow = map_file(shadow_path);
  if (!shadow) return shadow.status();
  sim->shadow_ = shadow->first;

  const uint64_t nlines = (sim->size_ + kCacheLine - 1) / kCacheLine;
  const std::size_t bytes = Side::bytes_for(nlines);
  {
    const std::string sp = side_path(shadow_path);
    int fd = ::open(sp.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return errno_status("pfsim: create " + sp);
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      ::close(fd);
      return errno_status("pfsim: size " + sp);
    }
    ::close(fd);
    auto side = map_file(sp);
    if (!side) return side.status();
    sim->side_ = reinterpret_cast<Side*>(side->first);
    sim->side_bytes_ = side->second;
  }
  sim->side_->magic = kSideMagic;
  sim->side_->pool_size = sim->size_;
  sim->side_->nlines = nlines;
  pmem::set_persist_observer(sim.get());
  return sim;
}

PowerFailSim::~PowerFailSim() {
  if (pmem::g_persist_observer == this) pmem::set_persist_observer(nullptr);
  if (shadow_ != nullptr) ::munmap(shadow_, size_);
  if (side_ != nullptr) ::munmap(side_, side_bytes_);
}

void PowerFailSim::remove_files(const std::string& shadow_path) {
  ::unlink(shadow_path.c_str());
  ::unlink(side_path(shadow_path).c_str());
}

int PowerFailSim::thread_slot() noexcept {
  if (t_slot.sim_id != id_) {
    const unsigned s = threads_.fetch_add(1, std::memory_order_relaxed);
    if (s >= kMaxThreads) {
      std::fprintf(stderr, "pfsim: more than %u threads flush; raise PowerFailSim::kMaxThreads\n", kMaxThreads);
      std::abort();
    }
    t_slot = {id_, static_cast<int>(s)};
  }
  return t_slot.slot;
}

void PowerFailSim::on_flush(const void* addr, std::size_t len) noexcept {
  if (len == 0 || failed()) return;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  const auto lo = reinterpret_cast<std::uintptr_t>(base_);
  if (a + len <= lo || a >= lo + size_) return;  // not the pool (e.g. DRAM)
  Area* area = side_->area(static_cast<unsigned>(thread_slot()));
  uint64_t n = area->count.load(std::memory_order_relaxed);  // only this thread writes it
  const std::uintptr_t first = line_floor(std::max(a, lo));
  const std::uintptr_t end = std::min(a + len, lo + size_);
  for (std::uintptr_t l = first; l < end; l += kCacheLine) {
    if (n == kLinesPerThread) {
      std::fprintf(stderr, "pfsim: more than %llu lines flushed without a fence by one thread\n",
                   static_cast<unsigned long long>(kLinesPerThread));
      std::abort();
    }
    Entry& en = area->e[n];
    en.off = l - lo;
    en.seq = side_->seq.fetch_add(1, std::memory_order_relaxed) + 1;
    std::memcpy(en.line, reinterpret_cast<const void*>(l), std::min<std::size_t>(kCacheLine, lo + size_ - l));
    ++n;
    area->count.store(n, std::memory_order_release);  // entry complete before it counts
    flushed_.fetch_add(1, std::memory_order_relaxed);
  }
}

void PowerFailSim::on_fence() noexcept {
  if (failed()) return;
  Area* area = side_->area(static_cast<unsigned>(thread_slot()));
  const uint64_t n = area->count.load(std::memory_order_relaxed);
  if (n == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (failed()) return;  // the power failed before this fence completed
  uint64_t applied = 0;
  for (uint64_t i = 0; i < n; ++i) applied += side_->apply(shadow_, area->e[i]) ? 1 : 0;
  area->count.store(0, std::memory_order_release);
  fences_.fetch_add(1, std::memory_order_relaxed);
  applied_.fetch_add(applied, std::memory_order_relaxed);
}

void PowerFailSim::power_fail(PfMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed()) return;
  failed_.store(true, std::memory_order_release);
  std::mt19937_64 rng(seed);
  const unsigned threads = std::min(threads_.load(std::memory_order_acquire), kMaxThreads);
  for (unsigned t = 0; t < threads; ++t) {
    Area* area = side_->area(t);
    const uint64_t n = area->count.load(std::memory_order_acquire);
    for (uint64_t i = 0; i < n; ++i) {
      if (mode == PfMode::kRandomUnfenced && (rng() & 1) != 0) {
        if (side_->apply(shadow_, area->e[i])) applied_.fetch_add(1, std::memory_order_relaxed);
      } else {
        dropped_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  side_->finished.store(1, std::memory_order_release);
  ::msync(shadow_, size_, MS_SYNC);
}

PfStats PowerFailSim::stats() const {
  PfStats s;
  s.flushed_lines = flushed_.load(std::memory_order_relaxed);
  s.fences = fences_.load(std::memory_order_relaxed);
  s.applied_lines = applied_.load(std::memory_order_relaxed);
  s.dropped_lines = dropped_.load(std::memory_order_relaxed);
  return s;
}

Status PowerFailSim::finish_after_kill(const std::string& shadow_path, PfMode mode, uint64_t seed) {
  auto side_m = map_file(side_path(shadow_path));
  if (!side_m) return side_m.status();
  auto* side = reinterpret_cast<Side*>(side_m->first);
  Status st = Status::ok();
  if (side->magic != kSideMagic) {
    st = Status::corruption("pfsim: " + side_path(shadow_path) + " is not a simulator side file");
  } else if (side->finished.load() == 0 && mode == PfMode::kRandomUnfenced) {
    auto shadow_m = map_file(shadow_path);
    if (!shadow_m) {
      st = shadow_m.status();
    } else {
      std::mt19937_64 rng(seed);
      for (unsigned t = 0; t < kMaxThreads; ++t) {
        Area* area = side->area(t);
        const uint64_t n = std::min<uint64_t>(area->count.load(), kLinesPerThread);
        for (uint64_t i = 0; i < n; ++i) {
          if ((rng() & 1) != 0) side->apply(shadow_m->first, area->e[i]);
        }
      }
      ::msync(shadow_m->first, shadow_m->second, MS_SYNC);
      ::munmap(shadow_m->first, shadow_m->second);
    }
  }
  ::munmap(side_m->first, side_m->second);
  ::unlink(side_path(shadow_path).c_str());
  return st;
}

}  // namespace ferrite::recovery

// ---- libpmem interposers ----------------------------------------------------
// libpmemobj persists through these exported libpmem functions (its pmemops
// point at them when the pool is pmem). Defining them in the executable puts
// ours first in the dynamic symbol lookup; each calls the real one (found with
// RTLD_NEXT) and then reports to the persist observer, if one is installed.
// Without an observer they cost one extra indirect call (test builds only).
namespace {

template <typename Fn>
Fn real(const char* name) {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (p == nullptr) {
    std::fprintf(stderr, "pfsim: cannot find libpmem's %s\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn>(p);
}

void observe(const void* addr, std::size_t len, bool flush, bool fence) noexcept {
  ferrite::pmem::PersistObserver* o = ferrite::pmem::g_persist_observer;
  if (o == nullptr) return;
  if (flush) o->on_flush(addr, len);
  if (fence) o->on_fence();
}

}  // namespace

extern "C" {

void pmem_flush(const void* addr, size_t len) {
  static auto fn = real<void (*)(const void*, size_t)>("pmem_flush");
  fn(addr, len);
  observe(addr, len, true, false);
}

void pmem_drain(void) {
  static auto fn = real<void (*)()>("pmem_drain");
  fn();
  observe(nullptr, 0, false, true);
}

void pmem_persist(const void* addr, size_t len) {
  static auto fn = real<void (*)(const void*, size_t)>("pmem_persist");
  fn(addr, len);
  observe(addr, len, true, true);
}

int pmem_msync(const void* addr, size_t len) {
  static auto fn = real<int (*)(const void*, size_t)>("pmem_msync");
  int r = fn(addr, len);
  observe(addr, len, true, true);
  return r;
}

void pmem_deep_flush(const void* addr, size_t len) {
  static auto fn = real<void (*)(const void*, size_t)>("pmem_deep_flush");
  fn(addr, len);
  observe(addr, len, true, true);
}

void* pmem_memcpy(void* dest, const void* src, size_t len, unsigned flags) {
  static auto fn = real<void* (*)(void*, const void*, size_t, unsigned)>("pmem_memcpy");
  void* r = fn(dest, src, len, flags);
  observe(dest, len, (flags & PMEM_F_MEM_NOFLUSH) == 0, (flags & (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NOFLUSH)) == 0);
  return r;
}

void* pmem_memmove(void* dest, const void* src, size_t len, unsigned flags) {
  static auto fn = real<void* (*)(void*, const void*, size_t, unsigned)>("pmem_memmove");
  void* r = fn(dest, src, len, flags);
  observe(dest, len, (flags & PMEM_F_MEM_NOFLUSH) == 0, (flags & (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NOFLUSH)) == 0);
  return r;
}

void* pmem_memset(void* dest, int c, size_t len, unsigned flags) {
  static auto fn = real<void* (*)(void*, int, size_t, unsigned)>("pmem_memset");
  void* r = fn(dest, c, len, flags);
  observe(dest, len, (flags & PMEM_F_MEM_NOFLUSH) == 0, (flags & (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NOFLUSH)) == 0);
  return r;
}

}  // extern "C"
