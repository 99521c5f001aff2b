// On-media layout of Ferrite's root object, versioned with feature flags.
//
// IMPLEMENTATION DETAILS
//   file:  libpmemobj pool, layout name "ferrite" (kLayoutName)
//   root object (pmemobj_root, 4096 bytes, zeroed by libpmemobj on creation):
//
//   struct RootHeader {              // offset  size
//     u64 magic;                     //   0      8   "FERRITE\0" once initialized
//     u32 format_major;              //   8      4   bumped on incompatible change
//     u32 format_minor;              //  12      4   bumped on compatible change
//     u64 incompat_features;         //  16      8   bits an opener must know
//     u64 compat_features;           //  24      8   bits an opener may ignore
//     u64 pool_size;                 //  32      8   file size at creation
//     u64 created_unix_ns;           //  40      8
//     u64 clean_shutdown;            //  48      8   1 = closed cleanly, 0 = open/crashed
//     u64 open_count;                //  56      8   opens since creation
//     u64 segment_size;              //  64      8   bytes per log segment
//     u64 segment_seq;               //  72      8   last segment sequence number
//     u64 index_root;                //  80      8   POff of the index's metadata (0 = none yet)
//     SizeCensus census;             //  88   1048   items per size class, written by index/ at a
//                                    //              clean close (index/census.h says when it is used)
//     u8  reserved[4096 - 1136];     // 1136          zero; later fields come from here
//   };
//   struct SizeCensus {
//     u64 stamp;                     // open_count of the session that wrote it; 0 = none
//     u64 tag;                       // the classing it counts by (index::SizeClasses::tag)
//     u64 classes;                   // entries used (<= 64)
//     u64 items[64];                 // items per class
//     u64 bytes[64];                 // their sizes, summed (by the classing's measure)
//   };
//
// Compatibility rule: an opener refuses a pool whose format_major is newer
// than its own or that sets an incompat feature bit it does not know; it
// accepts and preserves unknown compat bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::pmem {

inline constexpr const char* kLayoutName = "ferrite";
inline constexpr uint64_t kRootMagic = 0x0045544952524546ull;  // "FERRITE\0" little-endian
inline constexpr uint32_t kFormatMajor = 1;
inline constexpr uint32_t kFormatMinor = 0;
// Incompat feature bits. kIncompatStaleRecords: the log may hold records of
// kind index::RecordKind::kStale (set durably before the first one is
// written; builds before it would treat them as foreign and drop them).
inline constexpr uint64_t kIncompatStaleRecords = 1ull << 0;
inline constexpr uint64_t kKnownIncompatFeatures = kIncompatStaleRecords;
inline constexpr std::size_t kRootSize = 4096;
inline constexpr std::size_t kMinPoolSize = 16ull << 20;  // root + allocator metadata + a few segments
inline constexpr std::size_t kDefaultSegmentSize = 4ull << 20;

// libpmemobj type numbers of our objects (pmemobj_type_num).
inline constexpr uint64_t kTypeSegment = 0x5e6;

inline constexpr std::size_t kCensusClasses = 64;
struct SizeCensus {
  uint64_t stamp;
  uint64_t tag;
  uint64_t classes;
  uint64_t items[kCensusClasses];
  uint64_t bytes[kCensusClasses];
};
static_assert(sizeof(SizeCensus) == 1048);

struct RootHeader {
  uint64_t magic;
  uint32_t format_major;
  uint32_t format_minor;
  uint64_t incompat_features;
  uint64_t compat_features;
  uint64_t pool_size;
  uint64_t created_unix_ns;
  uint64_t clean_shutdown;
  uint64_t open_count;
  uint64_t segment_size;
  uint64_t segment_seq;
  uint64_t index_root;
  SizeCensus census;
  uint8_t reserved[kRootSize - 88 - sizeof(SizeCensus)];
};
static_assert(sizeof(RootHeader) == kRootSize, "root object is exactly 4 KiB");
static_assert(offsetof(RootHeader, index_root) == 80);
static_assert(offsetof(RootHeader, census) == 88);

}  // namespace ferrite::pmem
