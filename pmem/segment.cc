// Segment allocation in libpmemobj transactions (see segment.h).
#include "pmem/segment.h"

#include <fmt/format.h>

#include <cerrno>

#include "common/crash_point.h"

namespace ferrite::pmem {

StatusOr<POff<SegmentHeader>> SegmentAllocator::allocate(SegmentKind kind, uint32_t owner,
                                                         const std::function<void(Tx&, SegmentHeader*)>& in_tx,
                                                         bool zero) {
  std::lock_guard<std::mutex> lock(mu_);
  RootHeader* root = pool_.root();
  const std::size_t size = root->segment_size;
  POff<SegmentHeader> result;
  Status s = pool_.transact([&](Tx& tx) {
    // libpmemobj serves large objects in whole 256 KiB chunks and puts a
    // 16-byte header in front: asking for exactly size - 16 bytes makes the
    // object fill its chunks with no slack (asking for size + 64 cost a whole
    // extra chunk, 6% of a 4 MiB segment). The segment starts at the first
    // 64-byte boundary of the object.
    // libpmemobj writes back every object allocated in a transaction at
    // commit (4 MiB = 65536 lines, ~1.6 ms here), which also makes the
    // header durable (the power-failure tests pass without S1 below).
    // POBJ_XALLOC_NO_FLUSH would skip that for log segments (their data is
    // overwritten and checksummed), but a campaign run with it once left a
    // libpmemobj heap that would not open after a simulated power failure,
    // so it stays off until that is understood (see docs/durability.md).
    PMEMoid oid = tx.alloc(size - kObjHeader, kTypeSegment, zero);
    auto* hdr = pool_.ptr(POff<SegmentHeader>(round_up(oid.off, kCacheLine)));
    const uint64_t usable = oid.off + (size - kObjHeader) - round_up(oid.off, kCacheLine);
    tx.set(&root->segment_seq, root->segment_seq + 1);
    hdr->kind = static_cast<uint32_t>(kind);
    hdr->owner = owner;
    hdr->seq = root->segment_seq;
    hdr->size = usable;
    hdr->obj_off = oid.off;
    for (auto& u : hdr->user) u = 0;
    hdr->magic = kSegmentMagic;
    // S1: header durable before the commit makes the allocation durable.
    pool_.persister().persist(hdr, sizeof(*hdr));
    if (in_tx) in_tx(tx, hdr);
    result = pool_.off(hdr);
    FERRITE_CRASH_POINT(crash::kSegAllocInTx);
  });
  if (!s.is_ok()) {
    if (s.code() == Status::Code::kNoSpace) {
      return Status::no_space(fmt::format("no room for another {} MiB segment in pool {}", size >> 20, pool_.path()));
    }
    return s;
  }
  FERRITE_CRASH_POINT(crash::kSegAllocAfterCommit);
  return result;
}

Status SegmentAllocator::release(POff<SegmentHeader> seg, const std::function<void(Tx&)>& in_tx) {
  SegmentHeader* hdr = pool_.ptr(seg);
  if (hdr == nullptr || !pool_.contains(hdr, sizeof(*hdr)) || hdr->magic != kSegmentMagic ||
      round_up(hdr->obj_off, kCacheLine) != seg.raw()) {
    return Status::invalid_argument(fmt::format("release of {:#x}: not a segment", seg.raw()));
  }
  return pool_.transact([&](Tx& tx) {
    if (in_tx) in_tx(tx);
    PMEMoid oid{};
    oid.pool_uuid_lo = pmemobj_oid(pool_.root()).pool_uuid_lo;
    oid.off = hdr->obj_off;
    tx.free(oid);
    FERRITE_CRASH_POINT(crash::kSegReleaseInTx);
  });
}

void SegmentAllocator::for_each_segment(const std::function<void(POff<SegmentHeader>, SegmentHeader*)>& fn) const {
  PMEMoid oid = pmemobj_first(pool_.handle());
  while (!OID_IS_NULL(oid)) {
    PMEMoid next = pmemobj_next(oid);  // fn may not free, but fetch first anyway
    if (pmemobj_type_num(oid) == kTypeSegment) {
      POff<SegmentHeader> seg(round_up(oid.off, kCacheLine));
      fn(seg, pool_.ptr(seg));
    }
    oid = next;
  }
}

std::size_t SegmentAllocator::count() const {
  std::size_t n = 0;
  for_each_segment([&](POff<SegmentHeader>, SegmentHeader*) { ++n; });
  return n;
}

}  // namespace ferrite::pmem
