// Cache-line constants and branch hints shared by every module.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite {

inline constexpr std::size_t kCacheLine = 64;

constexpr std::uintptr_t line_floor(std::uintptr_t p) noexcept { return p & ~(kCacheLine - 1); }
constexpr std::size_t round_up(std::size_t n, std::size_t align) noexcept {
  return (n + align - 1) & ~(align - 1);
}

}  // namespace ferrite

#define FERRITE_LIKELY(x) __builtin_expect(!!(x), 1)
#define FERRITE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define FERRITE_CACHE_ALIGNED alignas(::ferrite::kCacheLine)

// A check that stays on in release builds (assert() is for debug builds).
#define FERRITE_CHECK(cond)                                                  \
  do {                                                                       \
    if (FERRITE_UNLIKELY(!(cond))) ::ferrite::check_failed(#cond, __FILE__, __LINE__); \
  } while (0)

// A check of a documented invariant that debug builds make (the default
// debugoptimized build included) and release builds (NDEBUG) compile out:
// for checks on hot paths. Same failure path as FERRITE_CHECK. Release
// builds do not evaluate cond (sizeof), but still see the names it uses, so
// a variable kept only for a check is not "unused" there.
#ifdef NDEBUG
#define FERRITE_DCHECK(cond)   \
  do {                         \
    (void)sizeof(!(cond));     \
  } while (0)
#else
#define FERRITE_DCHECK(cond) FERRITE_CHECK(cond)
#endif

namespace ferrite {
[[noreturn]] void check_failed(const char* cond, const char* file, int line);
}
