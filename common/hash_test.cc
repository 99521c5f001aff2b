// common/hash.h: hash_bytes is XXH3-64 (the record checksum on media depends
// on it never changing), hash_key hashes the key's bytes, and the seed and
// every byte of the input change the hash.
//
// Thread safety: single-threaded test.
#include "common/hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ferrite {
namespace {

TEST(Hash, IsXxh3SixtyFour) {
  // XXH3_64bits of the empty input and of "a" with seed 0: the published
  // values (xxHash's sanity tests; `xxhsum -H3` prints the same).
  EXPECT_EQ(hash_bytes("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(hash_key("a"), hash_bytes("a", 1));
  EXPECT_EQ(hash_key(""), 0x2D06800538D394C2ull);
}

// hash_key (seedless XXH3_64bits) and hash_bytes at seed 0 (withSeed) agree
// at every length XXH3 treats differently (0-16, 17-128, 129-240, longer):
// the index's slots and the checksums on media depend on both.
TEST(Hash, KeyHashIsSeedZeroAtEveryLength) {
  std::string s;
  for (std::size_t n = 0; n <= 300; ++n) {
    EXPECT_EQ(hash_key(s), hash_bytes(s.data(), s.size(), 0)) << n;
    s.push_back(static_cast<char>('A' + n % 53));
  }
}

TEST(Hash, SeedAndEveryByteMatter) {
  std::string key(64, 'k');
  const uint64_t base = hash_key(key);
  EXPECT_EQ(hash_key(key), base) << "deterministic";
  EXPECT_NE(hash_bytes(key.data(), key.size(), 1), base);
  std::set<uint64_t> seen{base};
  for (std::size_t i = 0; i < key.size(); ++i) {
    std::string k = key;
    k[i] = static_cast<char>(k[i] ^ 1);
    EXPECT_TRUE(seen.insert(hash_key(k)).second) << "flipping byte " << i << " collides";
  }
  // Length is part of the input: a prefix hashes differently.
  EXPECT_NE(hash_bytes(key.data(), key.size() - 1), base);
}

TEST(Hash, LowBitsSpreadOverBuckets) {
  // The index takes partition and bucket bits from one hash: sequential keys
  // must spread over 64 buckets (each within 3x of the mean of 10000/64).
  std::size_t count[64] = {};
  for (int i = 0; i < 10000; ++i) ++count[hash_key("key:" + std::to_string(i)) & 63];
  for (std::size_t c : count) {
    EXPECT_GT(c, 156u / 3);
    EXPECT_LT(c, 156u * 3);
  }
}

}  // namespace
}  // namespace ferrite
