// The log chain: a persistent list of every log segment in the pool, kept
// exact at all times so that no open (clean or after a crash) has to
// enumerate libpmemobj objects to find the log segments.
//
// IMPLEMENTATION DETAILS (on media; see table.h for IndexRoot)
//   IndexRoot::log_chain      POff of the newest log segment | 1 (a chain is present; 1 alone: the
//                             pool has no log segment), or 0: no chain (a pool last opened by a
//                             build older than the always-exact chain, after a crash, or one that
//                             ferrite-check could not fix): the opener enumerates and rebuilds it.
//   SegmentHeader::user[2]    of a log segment: POff of the next (older) log segment; 0 ends.
//   Invariant L1: while log_chain != 0, the segments reachable from it are exactly the allocated
//   log segments, each once.
// Kept by:
//  - allocation (IndexImpl::allocate_log_segment): the new segment's user[2] = the old head,
//    written and persisted inside the allocating transaction (the object is new: a rollback
//    frees it, so no undo is needed), and log_chain = new | 1 by tx.set in that transaction.
//  - release (IndexImpl::release_log_segment, ferrite-check --repair): the predecessor's user[2]
//    (or log_chain, for the head) = the freed segment's user[2] by tx.set, in the transaction
//    that frees it.
//  - rebuild (an opener that found no usable chain, ferrite-check --repair of a bad chain):
//    log_chain = 0 (persisted), every link written back and fenced, then log_chain = head | 1.
// Crash table: allocation and release are one libpmemobj transaction each, so a crash leaves
// the chain before or after the change; a crash during a rebuild leaves log_chain == 0 (absent,
// rebuilt again by the next opener).
//
// Thread safety: the caller serializes every change and every walk of a chain that can change
// (IndexImpl::chain_mu_); read_log_chain on an open index only at open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "index/table.h"
#include "pmem/pool.h"
#include "pmem/segment.h"
#include "pmem/tx.h"

namespace ferrite::index {

// Reads and validates the chain: every entry a 64-byte-aligned log segment
// header inside the pool (good magic, kind kLog, its own object), at most
// max_entries of them (a loop exceeds it). Fills segs (newest first) and
// returns true; false with *why when there is no chain (why empty) or the
// chain fails a check.
bool read_log_chain(const pmem::Pool& pool, const IndexRoot* root, std::size_t max_entries,
                    std::vector<uint64_t>* segs, std::string* why);

// In the transaction that allocates h: links h at the head (L1). Requires a
// chain present (log_chain != 0).
void link_log_segment_in_tx(const pmem::Pool& pool, pmem::Tx& tx, IndexRoot* root, pmem::SegmentHeader* h);

// In the transaction that frees the log segment at off: unlinks it. Returns
// false (and changes nothing) if the chain does not name it within
// max_entries steps; freeing it then leaves the chain as it is.
bool unlink_log_segment_in_tx(const pmem::Pool& pool, pmem::Tx& tx, IndexRoot* root, uint64_t off,
                              std::size_t max_entries);

// Writes a chain of exactly segs (no transaction; see the crash table above).
void rebuild_log_chain(const pmem::Pool& pool, IndexRoot* root, const std::vector<uint64_t>& segs);

}  // namespace ferrite::index
