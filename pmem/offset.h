// POff<T>: a typed, 8-byte, pool-relative persistent offset.
//
// Media format: one little-endian u64, the byte offset of the object from the
// pool's base address (the same value as PMEMoid.off). 0 means null: offset 0
// is libpmemobj's pool header, never an object. Pool-relative offsets stay
// valid across restarts even though the mapping address changes.
//
// Conversion to a pointer needs the mapping base: Pool::ptr(off) or
// off.get(base). Thread safety: a value type; sharing one between threads is
// the caller's business (index slots wrap offsets in std::atomic<uint64_t>).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ferrite::pmem {

template <typename T>
class POff {
 public:
  constexpr POff() noexcept = default;
  constexpr explicit POff(uint64_t off) noexcept : off_(off) {}

  constexpr uint64_t raw() const noexcept { return off_; }
  constexpr bool is_null() const noexcept { return off_ == 0; }
  constexpr explicit operator bool() const noexcept { return off_ != 0; }

  T* get(char* base) const noexcept {
    return off_ == 0 ? nullptr : reinterpret_cast<T*>(base + off_);
  }
  static POff from(const char* base, const T* p) noexcept {
    return p == nullptr ? POff() : POff(static_cast<uint64_t>(reinterpret_cast<const char*>(p) - base));
  }
  // Reinterprets the offset as one of another type (e.g. header -> payload).
  template <typename U>
  constexpr POff<U> cast() const noexcept { return POff<U>(off_); }
  constexpr POff operator+(uint64_t bytes) const noexcept { return POff(off_ + bytes); }

  friend constexpr bool operator==(POff a, POff b) noexcept { return a.off_ == b.off_; }

 private:
  uint64_t off_ = 0;
};

static_assert(sizeof(POff<int>) == 8, "POff is one 8-byte word on media");
static_assert(std::is_trivially_copyable_v<POff<int>>, "POff is stored by memcpy on media");
static_assert(std::is_standard_layout_v<POff<int>>);

}  // namespace ferrite::pmem
