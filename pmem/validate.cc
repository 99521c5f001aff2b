// validate_pool_file (see validate.h). Layout constants below are libpmemobj
// 1.x's, written from its headers' descriptions (src/common/pool_hdr.h,
// src/libpmemobj/{obj,lane,ulog,heap_layout}.h of PMDK 1.12); every value
// read from the file is range-checked before it is used as an offset.
//
// IMPLEMENTATION DETAILS (file offsets, little-endian)
//   [0, 4096)        pool header: char sig[8] "PMEMOBJ"; u32 major;
//                    u32 compat, incompat, ro_compat; ...; u64 checksum at 4088
//   [4096, 6144)     descriptor: char layout[1024]; u64 lanes_offset; u64 nlanes;
//                    u64 heap_offset; ...; u64 checksum at 6136
//   lanes_offset     nlanes x 3072 B: ulog internal (64 B header + 192),
//                    external (64 + 640), undo (64 + 2048)
//   ulog header      u64 checksum, next, capacity, gen_num, flags, unused[3];
//                    a lane's own ulog has its built-in capacity, or a header
//                    all zero but `next` after libpmemobj clobbered it
//   heap_offset      heap header (1024 B, checksum in its last 8), then zones
//                    (their chunk headers are checked after open, when lane
//                    recovery has finished any allocator update a crash cut:
//                    pmem/heap_footers.h)
#include "pmem/validate.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace ferrite::pmem {
namespace {

constexpr std::size_t kHdrSize = 4096;
constexpr std::size_t kHdrChecksumOff = 4088;
constexpr uint32_t kFeatCksum2K = 0x0002;
constexpr std::size_t kHdrCksum2KEnd = 2048;  // the not-checksummed tail starts here
constexpr std::size_t kDescOff = 4096, kDescSize = 2048, kLayoutMax = 1024;
constexpr std::size_t kLaneSize = 3072, kUlogHeader = 64;
constexpr uint64_t kUlogCapacity[3] = {192, 640, 2048};  // internal, external, undo
constexpr uint64_t kUlogUserOwned = 1;
constexpr char kHeapSignature[16] = "MEMORY_HEAP_HDR";
constexpr std::size_t kHeapHeaderSize = 1024;
constexpr uint64_t kChunkSize = 256 * 1024;
constexpr uint64_t kChunksPerZone = 65528;
constexpr std::size_t kZoneMetaSize = 64 + kChunksPerZone * 8;

uint64_t u64_at(const unsigned char* b, std::size_t off) {
  uint64_t v;
  std::memcpy(&v, b + off, 8);
  return v;
}
uint32_t u32_at(const unsigned char* b, std::size_t off) {
  uint32_t v;
  std::memcpy(&v, b + off, 4);
  return v;
}

// libpmemobj's Fletcher64 variant: 32-bit words summed into lo, lo summed
// into hi; the checksum word itself and everything from skip_end on count as
// zero words.
uint64_t fletcher64(const unsigned char* p, std::size_t len, std::size_t csum_off, std::size_t skip_end) {
  uint32_t lo = 0, hi = 0;
  for (std::size_t i = 0; i < len; i += 4) {
    const bool zero = (i >= csum_off && i < csum_off + 8) || i >= skip_end;
    if (!zero) lo += u32_at(p, i);
    hi += lo;
  }
  return (uint64_t{hi} << 32) | lo;
}

Status bad(const std::string& path, std::string what) {
  return Status::corruption(fmt::format("pool {} is corrupt: {}", path, what));
}

Status check_ulogs(const std::string& path, const unsigned char* b, std::size_t size, uint64_t lane, std::size_t off,
                   uint64_t heap_off) {
  static constexpr const char* kNames[3] = {"internal redo", "external redo", "undo"};
  for (int k = 0; k < 3; ++k) {
    const std::size_t first = off;
    off += kUlogHeader + kUlogCapacity[k];
    std::size_t u = first;
    for (std::size_t n = 0;; ++n) {
      const uint64_t next = u64_at(b, u + 8), cap = u64_at(b, u + 16), flags = u64_at(b, u + 32);
      const bool builtin = u == first;
      if ((builtin && cap != kUlogCapacity[k] && cap != 0) || (!builtin && cap > size) ||
          (flags & ~kUlogUserOwned) != 0 || u64_at(b, u + 40) != 0 || u64_at(b, u + 48) != 0 ||
          u64_at(b, u + 56) != 0) {
        return bad(path, fmt::format("lane {} {} log header at offset {:#x} is damaged (capacity {}, flags {:#x})",
                                     lane, kNames[k], u, cap, flags));
      }
      if (u + kUlogHeader + cap > size) {
        return bad(path, fmt::format("lane {} {} log at {:#x} extends past the end of the file", lane, kNames[k], u));
      }
      if (next == 0) break;
      if (next < heap_off || next % 8 != 0 || next + kUlogHeader > size || n + 1 >= kMaxUlogChain) {
        return bad(path, fmt::format("lane {} {} log at {:#x} names a bad extension offset {:#x}", lane, kNames[k],
                                     u, next));
      }
      u = next;
    }
  }
  return Status::ok();
}

Status check_heap(const std::string& path, const unsigned char* b, uint64_t heap_off) {
  const unsigned char* hh = b + heap_off;
  if (std::memcmp(hh, kHeapSignature, sizeof(kHeapSignature)) != 0 || u64_at(hh, 16) != 1 ||
      u64_at(hh, 40) != kChunkSize || u64_at(hh, 48) != kChunksPerZone) {
    return bad(path, fmt::format("heap header at {:#x} is not libpmemobj 1.x's", heap_off));
  }
  if (fletcher64(hh, kHeapHeaderSize, kHeapHeaderSize - 8, kHeapHeaderSize) != u64_at(hh, kHeapHeaderSize - 8)) {
    return bad(path, fmt::format("heap header at {:#x} fails its checksum", heap_off));
  }
  return Status::ok();
}

}  // namespace

Status validate_pool_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM) {
      return Status::io_error(fmt::format("cannot open pool {}: permission denied", path));
    }
    return Status::io_error(fmt::format("cannot open pool {}: {}", path, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::io_error(fmt::format("cannot stat pool {}: {}", path, std::strerror(err)));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < kDescOff + kDescSize) {
    ::close(fd);
    return bad(path, fmt::format("file is {} bytes, too small for a libpmemobj header", size));
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) return Status::io_error(fmt::format("cannot map pool {}: {}", path, std::strerror(err)));
  const auto* b = static_cast<const unsigned char*>(m);
  Status s = [&]() -> Status {
    if (std::memcmp(b, "PMEMOBJ", 8) != 0) {
      return bad(path, "not a valid pool file (no libpmemobj signature in its header)");
    }
    const uint32_t incompat = u32_at(b, 16);
    const std::size_t end = (incompat & kFeatCksum2K) != 0 ? kHdrCksum2KEnd : kHdrChecksumOff;
    if (fletcher64(b, kHdrSize, kHdrChecksumOff, end) != u64_at(b, kHdrChecksumOff)) {
      return bad(path, "the pool header fails its checksum");
    }
    const unsigned char* d = b + kDescOff;
    if (fletcher64(d, kDescSize, kDescSize - 8, kDescSize) != u64_at(d, kDescSize - 8)) {
      return bad(path, "the object pool descriptor fails its checksum");
    }
    if (::strnlen(reinterpret_cast<const char*>(d), kLayoutMax) == kLayoutMax) {
      return bad(path, "the layout name is not terminated");
    }
    const uint64_t lanes_off = u64_at(d, kLayoutMax), nlanes = u64_at(d, kLayoutMax + 8),
                   heap_off = u64_at(d, kLayoutMax + 16);
    if (nlanes == 0 || nlanes > (1u << 20) || lanes_off < kDescOff + kDescSize || heap_off > size ||
        lanes_off + nlanes * kLaneSize > heap_off || heap_off + kHeapHeaderSize + kZoneMetaSize > size) {
      return bad(path, fmt::format("lane area ({} lanes at {:#x}) or heap offset {:#x} outside the file", nlanes,
                                   lanes_off, heap_off));
    }
    for (uint64_t l = 0; l < nlanes; ++l) {
      if (Status u = check_ulogs(path, b, size, l, lanes_off + l * kLaneSize, heap_off); !u.is_ok()) return u;
    }
    return check_heap(path, b, heap_off);
  }();
  ::munmap(m, size);
  return s;
}

}  // namespace ferrite::pmem
