// XXH3 behind a small interface, so no other header pulls in xxhash.h.
#include "common/hash.h"

// Inline XXH3 (header-only mode) instead of calling into libxxhash.so: the
// hash of a 16-byte key is a few nanoseconds, less than a PLT call chain.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace ferrite {

uint64_t hash_bytes(const void* data, std::size_t len, uint64_t seed) noexcept {
  return XXH3_64bits_withSeed(data, len, seed);
}

}  // namespace ferrite
