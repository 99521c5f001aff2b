// The munmap() interposer behind net/dpdk_guard.h.
//
// Protocol (Dekker-style, both sides sequentially consistent):
//   poller:  slot = kInside ; if pause == 0 -> burst call ; slot = kOutside
//                             else slot = kOutside, wait for pause == 0, retry
//   munmap:  ++pause ; wait until no slot is kInside ; unmap ; --pause
// Either the poller sees pause and stays out, or munmap sees kInside and
// waits for the call to end; a poller never starts a burst call between
// munmap's wait and its unmap. The executable exports munmap
// (-Wl,--export-dynamic-symbol=munmap, net/meson.build), so PMDs loaded as
// plugins bind to this definition; the real one is the next in lookup order
// (libc's, or a sanitizer runtime's interceptor).
#include "net/dpdk_guard.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

#include <atomic>
#include <cstring>

namespace ferrite::net::dpdk_guard {
namespace {

constexpr uint32_t kFree = 0, kOutside = 1, kInside = 2;
constexpr unsigned kSlots = 128;

struct alignas(64) Slot {
  std::atomic<uint32_t> state{kFree};
};

Slot g_slots[kSlots];
std::atomic<bool> g_enabled{false};
std::atomic<uint32_t> g_pause{0};
std::atomic<uint64_t> g_waited{0};
std::atomic<uint64_t> g_unguarded{0};

using MunmapFn = int (*)(void*, size_t);
std::atomic<MunmapFn> g_real{nullptr};

thread_local Slot* tl_slot = nullptr;
thread_local bool tl_tried = false;

// Frees the thread's slot when the thread ends.
struct Releaser {
  ~Releaser() {
    if (tl_slot != nullptr) {
      tl_slot->state.store(kFree, std::memory_order_release);
      tl_slot = nullptr;
    }
  }
};
thread_local Releaser tl_releaser;

Slot* register_thread() noexcept {
  tl_tried = true;
  for (Slot& s : g_slots) {
    uint32_t expect = kFree;
    if (s.state.compare_exchange_strong(expect, kOutside, std::memory_order_acq_rel)) {
      tl_slot = &s;
      (void)&tl_releaser;  // constructs it: its destructor frees the slot
      return &s;
    }
  }
  g_unguarded.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

int real_munmap(void* addr, size_t len) noexcept {
  if (MunmapFn f = g_real.load(std::memory_order_acquire); f != nullptr) return f(addr, len);
  return static_cast<int>(::syscall(SYS_munmap, addr, len));  // before resolve() ran
}

__attribute__((constructor)) void resolve() {
  void* sym = ::dlsym(RTLD_NEXT, "munmap");
  if (sym != nullptr) {
    MunmapFn f;
    std::memcpy(&f, &sym, sizeof f);
    g_real.store(f, std::memory_order_release);
  }
}

}  // namespace

void enable_for_driver(const char* driver) noexcept {
  if (driver != nullptr && std::strcmp(driver, "net_memif") == 0) g_enabled.store(true, std::memory_order_seq_cst);
}

bool enabled() noexcept { return g_enabled.load(std::memory_order_relaxed); }

void enter() noexcept {
  if (!g_enabled.load(std::memory_order_relaxed)) return;
  Slot* s = tl_slot;
  if (s == nullptr) {
    if (tl_tried || (s = register_thread()) == nullptr) return;
  }
  for (;;) {
    s->state.exchange(kInside, std::memory_order_seq_cst);  // a full barrier before reading pause
    if (g_pause.load(std::memory_order_seq_cst) == 0) return;
    s->state.store(kOutside, std::memory_order_release);
    while (g_pause.load(std::memory_order_acquire) != 0) _mm_pause();
  }
}

void leave() noexcept {
  if (Slot* s = tl_slot; s != nullptr) s->state.store(kOutside, std::memory_order_release);
}

uint64_t waited_unmaps() noexcept { return g_waited.load(std::memory_order_relaxed); }
uint64_t unguarded_pollers() noexcept { return g_unguarded.load(std::memory_order_relaxed); }

}  // namespace ferrite::net::dpdk_guard

namespace g = ferrite::net::dpdk_guard;

// Invariant: while the guard is enabled, no poller is inside a burst call
// when this unmaps (a poller's own munmap() passes straight through: it is
// not inside one).
extern "C" int munmap(void* addr, size_t len) noexcept {
  if (!g::g_enabled.load(std::memory_order_acquire) || g::tl_slot != nullptr) return g::real_munmap(addr, len);
  g::g_pause.fetch_add(1, std::memory_order_seq_cst);
  bool waited = false;
  for (g::Slot& s : g::g_slots) {
    while (s.state.load(std::memory_order_seq_cst) == g::kInside) {
      waited = true;
      _mm_pause();
    }
  }
  const int r = g::real_munmap(addr, len);
  g::g_pause.fetch_sub(1, std::memory_order_release);
  if (waited) g::g_waited.fetch_add(1, std::memory_order_relaxed);
  return r;
}
