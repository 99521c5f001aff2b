// Checks of a pool file made before libpmemobj sees it (issue 15).
//
// libpmemobj 1.12 trusts much of its own on-media metadata: a flipped bit in a
// lane's undo/redo log header (its capacity or the offset of its extension)
// or in a zone's chunk headers can make pmemobj_open or the first heap walk
// dereference a wild pointer (SIGSEGV) or loop. validate_pool_file() reads the
// file (never writes it) and checks the parts whose layout PMDK documents in
// its sources and that are invariant in a healthy pool:
//   - pool header (first 4 KiB): signature "PMEMOBJ", Fletcher64-style
//     checksum over the range libpmemobj checksums (2 KiB or 4 KiB, by the
//     CKSUM_2K incompat feature);
//   - object pool descriptor (next 2 KiB): checksum, layout name, lane and
//     heap offsets inside the file, nlanes * 3 KiB of lanes before the heap;
//   - every lane's three ulog headers: built-in capacity (192 / 640 / 2048
//     bytes, or 0 once cleared), flags, reserved words zero, each extension chain inside the
//     file and at most kMaxUlogChain long;
//   - heap header: signature, version, chunk size, checksum.
// Zone chunk headers may legally be mid-update before lane recovery (a crash
// during an allocator redo log), so they are checked right after
// pmemobj_open instead (rebuild_heap_footers, Pool::open).
// What it cannot check (run bitmaps, ulog entries past the checksum, object
// headers inside runs) is left to the child-process probe (pmem/open_probe.h).
//
// Thread safety: a pure function of the file; safe from any thread. The
// result is a snapshot: nothing stops another process writing the file after.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace ferrite::pmem {

inline constexpr std::size_t kMaxUlogChain = 4096;

// ok, or Status::corruption naming what failed and where (file offsets).
// Errors opening or mapping the file come back as from open(2)/mmap(2)
// (permission_denied for EACCES/EROFS/EPERM).
Status validate_pool_file(const std::string& path);

}  // namespace ferrite::pmem
