// Byte-order loads and stores: the one place that turns wire bytes into
// integers and back. Big-endian for network headers (IP, UDP, memcached's
// UDP frame and binary protocol), little-endian for Ferrite's native
// protocol and the ketama digest. Each goes through memcpy (no alignment
// needed) and a byte swap only when the host's order differs.
//
// Thread safety: pure functions over the bytes they are given.
#pragma once

#include <cstdint>
#include <cstring>

namespace ferrite {

namespace endian_detail {
inline constexpr bool kHostLittle = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
static_assert(kHostLittle || __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__, "mixed-endian hosts are not supported");

inline uint16_t swap(uint16_t v) noexcept { return __builtin_bswap16(v); }
inline uint32_t swap(uint32_t v) noexcept { return __builtin_bswap32(v); }
inline uint64_t swap(uint64_t v) noexcept { return __builtin_bswap64(v); }

template <typename U>
inline U load(const void* p, bool big) noexcept {
  U v;
  std::memcpy(&v, p, sizeof(v));
  return big == kHostLittle ? swap(v) : v;
}
template <typename U>
inline void store(void* p, U v, bool big) noexcept {
  if (big == kHostLittle) v = swap(v);
  std::memcpy(p, &v, sizeof(v));
}
}  // namespace endian_detail

inline uint16_t load_be16(const void* p) noexcept { return endian_detail::load<uint16_t>(p, true); }
inline uint32_t load_be32(const void* p) noexcept { return endian_detail::load<uint32_t>(p, true); }
inline uint64_t load_be64(const void* p) noexcept { return endian_detail::load<uint64_t>(p, true); }
inline void store_be16(void* p, uint16_t v) noexcept { endian_detail::store(p, v, true); }
inline void store_be32(void* p, uint32_t v) noexcept { endian_detail::store(p, v, true); }
inline void store_be64(void* p, uint64_t v) noexcept { endian_detail::store(p, v, true); }

inline uint16_t load_le16(const void* p) noexcept { return endian_detail::load<uint16_t>(p, false); }
inline uint32_t load_le32(const void* p) noexcept { return endian_detail::load<uint32_t>(p, false); }
inline uint64_t load_le64(const void* p) noexcept { return endian_detail::load<uint64_t>(p, false); }
inline void store_le16(void* p, uint16_t v) noexcept { endian_detail::store(p, v, false); }
inline void store_le32(void* p, uint32_t v) noexcept { endian_detail::store(p, v, false); }
inline void store_le64(void* p, uint64_t v) noexcept { endian_detail::store(p, v, false); }

}  // namespace ferrite
