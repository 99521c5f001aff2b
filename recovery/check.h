// Offline consistency check of a pool file (the start of ferrite-check,
// issue 5): layout and version (through Pool::open), every record an index
// slot points at lies inside a log segment and passes its checksum, every
// key sits in the table segment its hash maps to, no key twice, and how much
// log space no slot references (reclaimable by the cleaner).
//
// Thread safety: a pure function of the file; nothing else may have the pool
// open. The pool's clean flag is left as it was found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "recovery/inspect.h"

namespace ferrite::recovery {

struct CheckReport {
  PoolReport pool;
  uint64_t table_segments = 0;
  uint64_t keys = 0;             // slots naming a live (or expired) value
  uint64_t tombstones = 0;       // deleted keys still holding a slot
  uint64_t log_bytes = 0;        // bytes appended to log segments (upper bound after a crash)
  uint64_t referenced_bytes = 0; // bytes of records slots point at
  std::vector<std::string> problems;  // empty: consistent
  bool ok() const noexcept { return problems.empty(); }
};

StatusOr<CheckReport> check_pool(const std::string& path);
std::string to_string(const CheckReport& r);

}  // namespace ferrite::recovery
