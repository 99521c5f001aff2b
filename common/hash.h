// Key hashing: hash a key once (XXH3-64) and pass the 64-bit value down;
// partition, bucket, tag and prefetch all reuse it. Also the record checksum.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ferrite {

uint64_t hash_bytes(const void* data, std::size_t len, uint64_t seed = 0) noexcept;

inline uint64_t hash_key(std::string_view key) noexcept {
  return hash_bytes(key.data(), key.size());
}

}  // namespace ferrite
