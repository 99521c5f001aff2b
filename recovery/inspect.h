// Pool inspection: what a pool file holds, read without changing anything
// the index relies on (the first building block of ferrite-check, issue 5).
//
// Thread safety: a pure function of the file; the pool must not be open
// elsewhere (libpmemobj's lock refuses it with kBusy).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ferrite::pmem {
class Pool;
}  // namespace ferrite::pmem

namespace ferrite::recovery {

struct PoolReport {
  uint32_t format_major = 0, format_minor = 0;
  uint64_t pool_size = 0;
  uint64_t segment_size = 0;
  bool clean_shutdown = false;   // as found, before this inspection opened it
  uint64_t open_count = 0;       // as found
  uint64_t log_segments = 0;
  uint64_t other_segments = 0;
  bool has_index = false;
  uint64_t allocated_bytes = 0;
};

// Opens the pool at path (all of Pool::open's checks apply), reports, closes
// it again marked as it was found (a clean pool stays clean).
StatusOr<PoolReport> inspect_pool(const std::string& path);

// The root header's part of the report (segment counts left at 0), for a
// pool the caller has just opened.
PoolReport pool_summary(const pmem::Pool& p);

std::string to_string(const PoolReport& r);

}  // namespace ferrite::recovery
