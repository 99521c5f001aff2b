// Persistent table layout: an extendible-hashing directory of table segments,
// each segment 256 one-cache-line buckets of 8 slots (see slot.h).
//
// IMPLEMENTATION DETAILS (all in the pool)
//   struct IndexRoot {            // pmemobj object, linked from RootHeader::index_root
//     u64 magic;                  // kIndexMagic
//     u64 version;                // kIndexVersion
//     atomic<u64> dir;            // POff<Directory>, switched in a transaction
//     u64 key_count;              // live keys, exact only after a clean close
//     u64 clean;                  // 1 = key_count and log tails are exact
//     u64 log_chain;              // every log segment, always exact (log_chain.h, L1): POff of
//                                 // the newest | 1, each segment's SegmentHeader::user[2] the
//                                 // next (0 ends); 1 = no log segment. 0 = no chain (a pool last
//                                 // opened by an older build, which cleared it at open): the
//                                 // opener enumerates objects and rebuilds it
//     u64 pad[2];
//     u64 log_heads[64];          // per worker: POff of its current log segment
//     u64 log_tails[64];          // per worker: tail offset inside it (clean close only)
//   };
//   struct Directory {            // pmemobj object
//     u64 magic; u64 depth;       // global depth G
//     u64 obj_off;                // libpmemobj object holding it (for free)
//     u64 pad[5];
//     atomic<u64> seg[1 << G];    // POff<TableSegment>; entry j serves hashes whose top G bits are j
//   };
//   struct TableSegment {         // pmemobj object, 64-byte aligned inside it
//     u64 magic; u32 local_depth; atomic<u32> state;  // state is volatile in meaning (reset by
//                                 // the segment's crash repair, repair.cc)
//     u64 prefix;                 // top local_depth hash bits this segment serves
//     u64 obj_off;                // libpmemobj object holding it (for free)
//     atomic<u64> repaired;       // volatile in meaning: == this session's repair epoch once
//                                 // crash repair has visited it (repair.cc); any other value
//                                 // (an older session's, or 0) means "not yet repaired"
//     u64 pad[3];
//     Bucket buckets[256];        // 16 KiB
//   };
// A key probes four buckets in a fixed order (probe_slot): its two choices
// b1 (hash bits 0..7) and b2 (bits 8..15; b1 ^ 1 if they are equal), each
// followed by its neighbour, kProbeSlots = 32 slots. Insertion takes the FIRST empty slot of that sequence by CAS, and
// a slot never returns to empty while its segment lives, so:
//   Invariant T1: a key occupies at most one slot of a segment (two inserters
//     of the same key race for the same first empty slot; the loser re-scans
//     and finds the key).
//   Invariant T2: a lookup may stop at the first empty slot of the sequence.
// Deletion sets the tombstone bit in the key's slot; splits drop such slots,
// and the cleaner turns them into dead tombstones (slot.h) when it frees the
// record's log segment.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/cacheline.h"
#include "pmem/offset.h"

namespace ferrite::index {

inline constexpr uint64_t kIndexMagic = 0x5844494554495246ull;  // "FRITEIDX"
// Still 1 with the always-exact log chain (log_chain.h): the field means
// more than before, nothing contradicts the old meaning. An older build uses
// the chain only after a clean close (when it is exact under both meanings)
// and clears it at open; this build rebuilds a cleared chain at open. So
// pools move between the two builds in both directions.
inline constexpr uint64_t kIndexVersion = 1;
inline constexpr uint64_t kDirMagic = 0x5249444554495246ull;
inline constexpr uint64_t kSegMagic = 0x4745534554495246ull;
inline constexpr unsigned kMaxWorkers = 64;
inline constexpr unsigned kSlotsPerBucket = 8;
inline constexpr unsigned kBucketBits = 8;
inline constexpr unsigned kBucketsPerSegment = 1u << kBucketBits;
inline constexpr unsigned kProbeBuckets = 4;
inline constexpr unsigned kProbeSlots = kProbeBuckets * kSlotsPerBucket;
inline constexpr unsigned kMaxGlobalDepth = 32;

// libpmemobj type numbers.
inline constexpr uint64_t kTypeIndexRoot = 0x1d0;
inline constexpr uint64_t kTypeDirectory = 0x1d1;
inline constexpr uint64_t kTypeTableSegment = 0x1d2;

struct alignas(kCacheLine) Bucket {
  std::atomic<uint64_t> slots[kSlotsPerBucket];
};
static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

enum SegState : uint32_t { kSegNormal = 0, kSegSplitting = 1, kSegRetired = 2 };

struct alignas(kCacheLine) TableSegment {
  uint64_t magic;
  uint32_t local_depth;
  std::atomic<uint32_t> state;  // written and read by splitters (S1, S3-S5); volatile in meaning
  uint64_t prefix;
  uint64_t obj_off;
  // Crash repair epoch (repair.cc): claimed by CAS, released when the
  // segment's slots are repaired (R6, pairs with A6 in ensure_repaired_slow).
  std::atomic<uint64_t> repaired;
  uint64_t pad[3];
  Bucket buckets[kBucketsPerSegment];
};
static_assert(sizeof(TableSegment) == 64 + 64 * kBucketsPerSegment);

struct Directory {
  uint64_t magic;
  uint64_t depth;
  uint64_t obj_off;
  uint64_t pad[5];
  std::atomic<uint64_t> seg[1];  // really 1 << depth entries

  static std::size_t bytes_for(unsigned depth) noexcept { return 64 + (sizeof(uint64_t) << depth); }
};

struct IndexRoot {
  uint64_t magic;
  uint64_t version;
  std::atomic<uint64_t> dir;
  uint64_t key_count;
  uint64_t clean;
  uint64_t log_chain;
  uint64_t pad[2];
  uint64_t log_heads[kMaxWorkers];
  uint64_t log_tails[kMaxWorkers];
};

inline unsigned bucket1(uint64_t h) noexcept { return static_cast<unsigned>(h & (kBucketsPerSegment - 1)); }
inline unsigned bucket2(uint64_t h) noexcept {
  unsigned b1 = bucket1(h), b2 = static_cast<unsigned>((h >> 8) & (kBucketsPerSegment - 1));
  return b2 == b1 ? (b1 ^ 1u) : b2;
}
// Probe order: b1, b1+1, b2, b2+1 (mod 256): two independent choices, each
// with its neighbouring line (which the adjacent-line prefetcher brings).
inline std::atomic<uint64_t>* probe_slot(TableSegment* s, uint64_t h, unsigned i) noexcept {
  const unsigned j = i / kSlotsPerBucket;
  const unsigned b = ((j < 2 ? bucket1(h) : bucket2(h)) + (j & 1)) & (kBucketsPerSegment - 1);
  return &s->buckets[b].slots[i % kSlotsPerBucket];
}
inline uint64_t dir_index(uint64_t h, unsigned depth) noexcept { return depth == 0 ? 0 : h >> (64 - depth); }

}  // namespace ferrite::index
