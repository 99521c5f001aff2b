// memcached's item sizes and slab classes (see items.h).
//
// Thread safety: pure functions.
#include "server/memcached/items.h"

namespace ferrite::server {

std::size_t memcached_item_size(std::size_t klen, std::size_t vlen, uint32_t flags) {
  // memcached's ITEM_ntotal on 64-bit with CAS: the 48-byte item header, the
  // 8-byte CAS, the key and its NUL, the value and its "\r\n", and 4 bytes
  // of client flags when they are not 0.
  return 48 + 8 + klen + 1 + vlen + 2 + (flags != 0 ? 4 : 0);
}

unsigned memcached_slab_class(std::size_t item_size) {
  // memcached's default slab classes (-n 48, -f 1.25, 1 MiB pages): 96 bytes,
  // then x1.25 rounded up to 8, while below 512 KiB / 1.25; the last class is
  // 512 KiB and also holds (the headers of) larger, chunked items.
  std::size_t size = 96;
  unsigned cls = 1;
  constexpr std::size_t kChunkMax = 512u << 10;
  for (;;) {
    if (size % 8 != 0) size += 8 - size % 8;
    if (item_size <= size) return cls;
    ++cls;
    size = static_cast<std::size_t>(static_cast<double>(size) * 1.25);
    if (size >= static_cast<std::size_t>(kChunkMax / 1.25)) return cls;  // the 512 KiB class
  }
}

}  // namespace ferrite::server
