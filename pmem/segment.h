// Segments: fixed-size (RootHeader::segment_size, 4 MiB by default) blocks of
// the pool that the record logs are carved from (the index's table segments
// and directory are libpmemobj objects of their own, index/table.h).
// Allocated and freed in libpmemobj transactions: rare (once per 4 MiB of
// writes), so the ~1 us transaction cost never lands on a request.
//
// IMPLEMENTATION DETAILS
//   libpmemobj object of type kTypeSegment and size segment_size - 16 (so that
//   with libpmemobj's 16-byte header it fills whole 256 KiB chunks), zeroed on
//   allocation unless the caller opts out. The segment starts at the object's
//   first 64-byte boundary (every line we flush is then the segment's own), so
//   its size is segment_size - 64 to segment_size - 16 (libpmemobj's objects
//   are 16-byte aligned):
//   struct SegmentHeader {   // first 64 bytes of the segment
//     u64 magic;             // kSegmentMagic
//     u32 kind;              // SegmentKind: who owns the bytes after the header
//     u32 owner;             // e.g. worker id for a log segment
//     u64 seq;               // pool-wide allocation sequence (RootHeader::segment_seq)
//     u64 size;              // usable bytes from the header on (>= segment_size - 64)
//     u64 obj_off;           // offset of the libpmemobj object holding it
//     u64 user[3];           // owner's fields; a log segment's: live bytes and tail
//                            // (exact after a clean close), the log chain's next
//                            // link (index/log_chain.h)
//   };
//   u8 data[size - 64];      // owner's payload, zero at allocation
//
// Crash table for allocate():
//  - crash before commit: libpmemobj rolls back the allocation and the
//    segment_seq bump; nothing leaked.
//  - after commit: the segment exists with a complete header (persisted
//    before commit) and is found again by for_each_segment().
// Ownership is therefore never lost: an owner links its segments in the
// same transaction (in_tx; the index's log chain, index/log_chain.h), and
// for_each_segment() finds them all by type when no such list is usable.
//
// Thread safety: allocate()/release() may run from any thread (each is one
// transaction; segment_seq is bumped under the allocator's mutex, control path).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "common/status.h"
#include "pmem/offset.h"
#include "pmem/pool.h"

namespace ferrite::pmem {

inline constexpr uint64_t kSegmentMagic = 0x544e454d47455346ull;  // "FSEGMENT"
inline constexpr std::size_t kObjHeader = 16;  // libpmemobj's header before each object

enum class SegmentKind : uint32_t { kFree = 0, kLog = 1, kIndex = 2, kOther = 3 };

struct SegmentHeader {
  uint64_t magic;
  uint32_t kind;
  uint32_t owner;
  uint64_t seq;
  uint64_t size;
  uint64_t obj_off;
  uint64_t user[3];

  // The payload follows the header in the same pmem object (computed through an
  // integer so the compiler does not see an access past the struct).
  char* data() noexcept { return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(this) + sizeof(SegmentHeader)); }
  uint64_t data_size() const noexcept { return size - sizeof(SegmentHeader); }
};
static_assert(sizeof(SegmentHeader) == 64, "segment header is one cache line");

class SegmentAllocator {
 public:
  explicit SegmentAllocator(Pool& pool) noexcept : pool_(pool) {}

  std::size_t segment_size() const noexcept { return pool_.root()->segment_size; }

  // Allocates one segment of segment_size() bytes; kNoSpace when the pool
  // cannot fit another one. Its data is zeroed unless zero is false (record
  // logs need no zeroing: records carry checksums, and ~1.6 ms per 4 MiB of
  // zeroing would land on the worker that fills its segment). `in_tx`, if
  // set, runs inside the same transaction (e.g. to link the segment into an
  // owner's list atomically).
  StatusOr<POff<SegmentHeader>> allocate(SegmentKind kind, uint32_t owner,
                                         const std::function<void(Tx&, SegmentHeader*)>& in_tx = {},
                                         bool zero = true);
  // Returns a segment to the pool, atomically with `in_tx` if set.
  Status release(POff<SegmentHeader> seg, const std::function<void(Tx&)>& in_tx = {});
  // Visits every segment in the pool (allocation order is not guaranteed).
  void for_each_segment(const std::function<void(POff<SegmentHeader>, SegmentHeader*)>& fn) const;
  std::size_t count() const;

 private:
  Pool& pool_;
  std::mutex mu_;  // serializes segment_seq updates between allocating threads
};

}  // namespace ferrite::pmem
