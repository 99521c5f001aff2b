#include "pmem/heap_footers.h"

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace ferrite::pmem {
namespace {

// libpmemobj 1.x on-media heap layout (heap major version 1), as far as the
// footer rebuild needs it. Every value is checked against the pool before use.
constexpr std::size_t kHeapOffsetField = 4096 + 1024 + 8 + 8;  // pool_hdr, layout, lanes_offset, nlanes
constexpr char kHeapSignature[16] = "MEMORY_HEAP_HDR";       // 15 chars + NUL
constexpr std::size_t kHeapHeaderSize = 1024;
constexpr uint64_t kHeapMajor = 1;
constexpr uint64_t kChunkSize = 256 * 1024;
constexpr uint64_t kChunksPerZone = 65528;  // UINT16_MAX - 7
constexpr std::size_t kZoneHeaderSize = 64;
constexpr uint32_t kZoneMagic = 0xC3F0A2D2;
constexpr std::size_t kZoneMetaSize = kZoneHeaderSize + kChunksPerZone * 8;
constexpr std::size_t kZoneMaxSize = kZoneMetaSize + kChunksPerZone * kChunkSize;

enum : uint16_t { kFooter = 1, kFree = 2, kUsed = 3, kRun = 4 };

struct HeapHeader {
  char signature[16];
  uint64_t major;
  uint64_t minor;
  uint64_t unused;
  uint64_t chunksize;
  uint64_t chunks_per_zone;
};

uint64_t pack(uint16_t type, uint16_t flags, uint32_t size_idx) {
  return uint64_t{type} | (uint64_t{flags} << 16) | (uint64_t{size_idx} << 32);
}

}  // namespace

FooterRebuild rebuild_heap_footers(PMEMobjpool* pop, std::size_t pool_size) noexcept {
  FooterRebuild r;
  auto* base = reinterpret_cast<unsigned char*>(pop);
  uint64_t heap_off = 0;
  std::memcpy(&heap_off, base + kHeapOffsetField, sizeof(heap_off));
  if (heap_off == 0 || heap_off % 4096 != 0 || heap_off + kHeapHeaderSize + kZoneMetaSize > pool_size) {
    r.why = fmt::format("heap offset {:#x} is outside the pool", heap_off);
    return r;
  }
  HeapHeader hh;
  std::memcpy(&hh, base + heap_off, sizeof(hh));
  if (std::memcmp(hh.signature, kHeapSignature, sizeof(kHeapSignature)) != 0 || hh.major != kHeapMajor ||
      hh.chunksize != kChunkSize || hh.chunks_per_zone != kChunksPerZone) {
    r.why = fmt::format("heap header is not libpmemobj 1.x's (major {}, chunk size {}, chunks per zone {})",
                        hh.major, hh.chunksize, hh.chunks_per_zone);
    return r;
  }
  r.layout_known = true;

  for (std::size_t z = 0;; ++z) {
    const std::size_t zone_off = heap_off + kHeapHeaderSize + z * kZoneMaxSize;
    if (zone_off + kZoneMetaSize > pool_size) break;
    unsigned char* zone = base + zone_off;
    uint32_t magic = 0;
    uint32_t nchunks = 0;
    std::memcpy(&magic, zone, 4);
    std::memcpy(&nchunks, zone + 4, 4);
    if (magic != kZoneMagic) break;  // zones are initialized in order; the rest are untouched
    if (nchunks > kChunksPerZone || zone_off + kZoneMetaSize + nchunks * kChunkSize > pool_size) {
      r.why = fmt::format("zone {} claims {} chunks, more than the pool holds", z, nchunks);
      break;
    }
    ++r.zones;
    auto* hdrs = reinterpret_cast<uint64_t*>(zone + kZoneHeaderSize);
    for (uint32_t i = 0; i < nchunks;) {
      const uint64_t h = hdrs[i];
      const auto type = static_cast<uint16_t>(h & 0xffff);
      const auto size = static_cast<uint32_t>(h >> 32);
      if (size == 0 || size > nchunks - i || (type != kFree && type != kUsed && type != kRun)) {
        // Not a block start: leave the rest of this zone to libpmemobj's own checks.
        r.why = fmt::format("zone {} chunk {}: header type {} size {} does not start a block", z, i, type, size);
        break;
      }
      if ((type == kFree || type == kUsed) && size > 1) {
        ++r.blocks;
        // libpmemobj reads only a footer's type and size; its own footers
        // carry flags 0 or the header's, so flags are not compared.
        const uint64_t footer = pack(kFooter, 0, size);
        uint64_t& slot = hdrs[i + size - 1];
        constexpr uint64_t kTypeAndSize = 0xffffffff0000ffffull;
        if ((slot & kTypeAndSize) != footer) {
          slot = footer;  // a hint, not flushed: the next open rebuilds it again
          ++r.rewritten;
        }
      }
      i += size;
    }
  }
  return r;
}

}  // namespace ferrite::pmem
