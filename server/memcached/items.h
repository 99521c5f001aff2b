// memcached's item sizes and slab classes, emulated for `me` (meta debug):
// what memcached 1.6.18 would report for an item Ferrite stores, although
// Ferrite has no slab allocator.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::server {

// What memcached 1.6.18 (64-bit, default settings) reports in `me` for an
// item: its size in bytes, and the slab class that size is stored in.
std::size_t memcached_item_size(std::size_t klen, std::size_t vlen, uint32_t flags);
unsigned memcached_slab_class(std::size_t item_size);

}  // namespace ferrite::server
