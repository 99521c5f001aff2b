// CPU feature detection and the msync fallback for Persister.
#include "pmem/persist.h"

#include <cpuid.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ferrite::pmem {

PersistObserver* g_persist_observer = nullptr;

void set_persist_observer(PersistObserver* obs) noexcept { g_persist_observer = obs; }

FlushInsn cpu_flush_insn() noexcept {
  static const FlushInsn insn = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      if (ebx & (1u << 24)) return FlushInsn::kClwb;        // CPUID.7.0:EBX[24] CLWB
      if (ebx & (1u << 23)) return FlushInsn::kClflushopt;  // CPUID.7.0:EBX[23] CLFLUSHOPT
    }
    return FlushInsn::kClflush;
  }();
  return insn;
}

void Persister::msync_range(const void* p, std::size_t len) noexcept {
  static const std::uintptr_t page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  auto a = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  auto end = reinterpret_cast<std::uintptr_t>(p) + len;
  // msync on a range of our own mapping only fails for a bad range, which
  // would be a bug in the caller; nothing useful to do with it here.
  (void)::msync(reinterpret_cast<void*>(a), end - a, MS_SYNC);
}

}  // namespace ferrite::pmem
