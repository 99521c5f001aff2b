// find()'s two fast paths. RecordHeader::key_is (record.h) answers as
// key() == k for every length, with the bytes differing anywhere.
// index/bucket_scan.h: the SSE4.1 bucket scan gives the masks slot.h's
// predicates define (scan_bucket_ref), for every class of slot word a bucket
// can hold: empty (with and without the transient dirty/moved bits), live
// entries with the wanted tag and others, tombstones, dead tombstones, and
// words with every bit pattern in between.
#include "index/bucket_scan.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "index/record.h"

namespace ferrite::index {
namespace {

constexpr uint16_t kTag = 0xbeef;

// One slot word of class c for a key of tag t (some classes random within
// their class). Tag 0 is the wanted tag in half the runs: only for it does a
// dead tombstone (tag bits 0) differ from a live slot of the tag.
uint64_t word_of(unsigned c, std::mt19937_64 &rng, uint16_t t) {
  const uint64_t off = (rng() & slot::kOffMask) | 1;  // a record offset, never 0
  const uint64_t transient = rng() & (slot::kDirty | slot::kMoved);
  const auto other_tag = static_cast<uint16_t>(t ^ (1u + rng() % 0xfffe));
  switch (c) {
    case 0:
      return 0;  // empty
    case 1:
      return transient;  // empty, dirty and/or moved
    case 2:
      return slot::make(off << 3, t, false) | transient;  // live, the tag
    case 3:
      return slot::make(off << 3, other_tag, false) | transient;  // live, another tag
    case 4:
      return slot::make(off << 3, t, true) | transient;  // tombstone, the tag
    case 5:
      return slot::kDead | transient;  // dead tombstone
    case 6:
      return slot::make(0, t, false) | transient;  // the tag, offset 0
    case 7:
      return slot::make(0, t, true) | transient;  // tombstone, the tag, offset 0 (dead when t is 0)
    default:
      return rng();  // anything
  }
}

void expect_same(const uint64_t (&w)[kSlotsPerBucket], uint16_t tag) {
  const BucketMasks ref = scan_bucket_ref(w, tag);
  const BucketMasks got = scan_bucket(w, tag);
  EXPECT_EQ(got.match, ref.match);
  EXPECT_EQ(got.empty, ref.empty);
  EXPECT_EQ(got.dirty, ref.dirty);
}

TEST(BucketScan, EachClassInEachPosition) {
  std::mt19937_64 rng(7);
  for (const uint16_t t : {kTag, uint16_t{0}}) {
    for (unsigned c = 0; c < 9; ++c) {
      for (unsigned pos = 0; pos < kSlotsPerBucket; ++pos) {
        for (int rep = 0; rep < 64; ++rep) {
          uint64_t w[kSlotsPerBucket];
          for (auto &x : w) x = word_of(3, rng, t);  // other keys around it
          w[pos] = word_of(c, rng, t);
          expect_same(w, t);
        }
      }
    }
  }
}

TEST(BucketScan, RandomMixesOfClasses) {
  std::mt19937_64 rng(11);
  for (int rep = 0; rep < 200000; ++rep) {
    const uint16_t t = rep % 2 == 0 ? kTag : 0;
    uint64_t w[kSlotsPerBucket];
    for (auto &x : w) x = word_of(static_cast<unsigned>(rng() % 9), rng, t);
    expect_same(w, t);
    if (HasFailure()) return;
  }
}

// The reference is the definition; check it against a hand-built bucket so a
// change to slot.h's predicates that both scans would follow is still seen.
TEST(BucketScan, KnownBucket) {
  const uint64_t w[kSlotsPerBucket] = {
      slot::make(64, kTag, false),                      // 0: match
      slot::make(128, kTag ^ 1, false) | slot::kDirty,  // 1: dirty, no match
      slot::kDead,                                      // 2: dead: no match, not empty
      slot::make(192, kTag,
                 true),                             // 3: a tombstone of the tag: match (it names the key)
      slot::kMoved,                                 // 4: empty (moved)
      slot::kDirty,                                 // 5: empty, dirty
      0,                                            // 6: empty
      slot::make(256, kTag, false) | slot::kMoved,  // 7: match
  };
  for (const BucketMasks m : {scan_bucket_ref(w, kTag), scan_bucket(w, kTag)}) {
    EXPECT_EQ(m.match, 0b10001001u);
    EXPECT_EQ(m.empty, 0b01110000u);
    EXPECT_EQ(m.dirty, 0b00100010u);
  }
  // For tag 0, slot 2 (dead) has the tag's bits but is no candidate; the
  // empty slots (tag bits 0 too) are, which find() ignores (T2: it looks only
  // before the first empty slot).
  for (const BucketMasks m : {scan_bucket_ref(w, 0), scan_bucket(w, 0)}) EXPECT_EQ(m.match, 0b01110000u);
}

TEST(KeyIs, EveryLengthAndEveryDifferingByte) {
  std::vector<char> buf(sizeof(RecordHeader) + 64 + 64, 'v');  // room past the key, as a record's value has
  for (std::size_t n = 1; n <= 40; ++n) {
    std::string key(n, 'a');
    for (std::size_t i = 0; i < n; ++i) key[i] = static_cast<char>('a' + (i * 7) % 26);
    RecordHeader h{};
    h.meta = static_cast<uint32_t>(n);  // key_len, no value
    std::memcpy(buf.data(), &h, sizeof h);
    std::memcpy(buf.data() + sizeof h, key.data(), n);
    const auto *r = reinterpret_cast<const RecordHeader *>(buf.data());
    ASSERT_EQ(r->key(), key);
    EXPECT_TRUE(r->key_is(key)) << n;
    for (std::size_t i = 0; i < n; ++i) {
      std::string other = key;
      other[i] ^= 0x20;
      EXPECT_FALSE(r->key_is(other)) << "length " << n << ", byte " << i;
    }
    EXPECT_FALSE(r->key_is(key + "x")) << n;
    EXPECT_FALSE(r->key_is(std::string_view(key).substr(0, n - 1))) << n;
  }
}

}  // namespace
}  // namespace ferrite::index
