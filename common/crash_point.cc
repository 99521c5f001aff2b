// Crash point hook (see crash_point.h). Always compiled (a few bytes); only
// the *_crash library variants contain calls to hit().
#include "common/crash_point.h"

#include <atomic>

namespace ferrite::crash {
namespace {
std::atomic<Hook> g_hook{nullptr};
}  // namespace

void set_hook(Hook hook) noexcept { g_hook.store(hook, std::memory_order_release); }

void hit(const char* name) noexcept {
  if (Hook h = g_hook.load(std::memory_order_acquire)) h(name);
}

}  // namespace ferrite::crash
