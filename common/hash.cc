// XXH3 behind a small interface, so no other header pulls in xxhash.h.
#include "common/hash.h"

#include <xxhash.h>

namespace ferrite {

uint64_t hash_bytes(const void* data, std::size_t len, uint64_t seed) noexcept {
  return XXH3_64bits_withSeed(data, len, seed);
}

}  // namespace ferrite
