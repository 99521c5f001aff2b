// memcached's item sizes and slab classes (see items.h).
//
// Thread safety: pure functions; the table is a function-local static.
#include "server/memcached/items.h"

#include <algorithm>
#include <vector>

namespace ferrite::server {
namespace {

// memcached's ITEM_ntotal on 64-bit with CAS: the 48-byte item header, the
// 8-byte CAS, the key and its NUL, the value and its "\r\n", and 4 bytes of
// client flags when they are not 0.
constexpr std::size_t kItemOverhead = 48 + 8 + 1 + 2;
constexpr std::size_t kFlagsBytes = 4;

const std::vector<uint32_t>& chunk_sizes() {
  // memcached's default slab classes (-n 48, -f 1.25, 1 MiB pages): 96 bytes,
  // then x1.25 rounded up to 8, while below 512 KiB / 1.25; the last class is
  // 512 KiB and also holds (the headers of) larger, chunked items.
  static const std::vector<uint32_t> sizes = [] {
    std::vector<uint32_t> v;
    constexpr std::size_t kChunkMax = 512u << 10;
    std::size_t size = 96;
    for (;;) {
      if (size % 8 != 0) size += 8 - size % 8;
      v.push_back(static_cast<uint32_t>(size));
      size = static_cast<std::size_t>(static_cast<double>(size) * 1.25);
      if (size >= static_cast<std::size_t>(kChunkMax / 1.25)) break;
    }
    v.push_back(static_cast<uint32_t>(kChunkMax));
    return v;
  }();
  return sizes;
}

}  // namespace

std::size_t memcached_item_size(std::size_t klen, std::size_t vlen, uint32_t flags) {
  return kItemOverhead + klen + vlen + (flags != 0 ? kFlagsBytes : 0);
}

unsigned memcached_slab_class(std::size_t item_size) {
  const std::vector<uint32_t>& s = chunk_sizes();
  const auto it = std::lower_bound(s.begin(), s.end(), item_size);
  return it == s.end() ? static_cast<unsigned>(s.size()) : static_cast<unsigned>(it - s.begin()) + 1;
}

std::span<const uint32_t> memcached_chunk_sizes() { return chunk_sizes(); }

index::SizeClasses memcached_size_classes() {
  index::SizeClasses c;
  c.overhead = static_cast<uint32_t>(kItemOverhead);
  c.flags_bytes = static_cast<uint32_t>(kFlagsBytes);
  c.bounds = chunk_sizes();
  c.tag = 0x6d632d312e362e31ull;  // "mc-1.6.1": memcached 1.6's default classes and item size
  return c;
}

}  // namespace ferrite::server
