// memcached's item sizes and slab classes, emulated for `me` (meta debug) and
// for `stats items` / `stats slabs` (the index's item census counts by these
// classes: memcached_size_classes()): what memcached 1.6.18 would report for
// an item Ferrite stores, although Ferrite has no slab allocator.
//
// Thread safety: pure functions (the class table is built once, on first use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "index/index.h"

namespace ferrite::server {

// What memcached 1.6.18 (64-bit, default settings) reports in `me` for an
// item: its size in bytes, and the slab class that size is stored in.
std::size_t memcached_item_size(std::size_t klen, std::size_t vlen, uint32_t flags);
unsigned memcached_slab_class(std::size_t item_size);
// The chunk size of each default class, class 1 first (39 classes: 96 bytes
// up to 512 KiB).
std::span<const uint32_t> memcached_chunk_sizes();
// The same classes and item size as the index's census measures them.
index::SizeClasses memcached_size_classes();

}  // namespace ferrite::server
