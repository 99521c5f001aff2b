// Key hashing: hash a key once (XXH3-64) and pass the 64-bit value down;
// partition, bucket, tag and prefetch all reuse it. Also the record checksum.
//
// Inline (xxhash's header-only mode), not a call into common/ or
// libxxhash.so: a get hashes its key and checksums its record, and at a lone
// get's ~600 instructions the calls and the length dispatch of an
// out-of-line XXH3 were a visible share (issue 18). Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace ferrite {

inline uint64_t hash_bytes(const void* data, std::size_t len, uint64_t seed = 0) noexcept {
  return XXH3_64bits_withSeed(data, len, seed);
}

// XXH3_64bits is XXH3_64bits_withSeed at seed 0 (the same value; test
// `common`), without the seed's branch, so a short key's hash inlines.
inline uint64_t hash_key(std::string_view key) noexcept { return XXH3_64bits(key.data(), key.size()); }

}  // namespace ferrite
