// Test helper: the crash image a PowerFailSim (recovery/pfsim.h) left,
// finished and reopened as a pool with an index over it (crash repair runs
// in Index::open). Errors are reported as gtest failures: call it under
// ASSERT_NO_FATAL_FAILURE. The index is declared after the pool, so it is
// closed first.
//
// Thread safety: the result belongs to the calling thread.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "index/index.h"
#include "pmem/pool.h"
#include "recovery/pfsim.h"

namespace ferrite::testing {

struct RecoveredPool {
  std::unique_ptr<pmem::Pool> pool;
  std::unique_ptr<index::Index> idx;
};

// Finishes the power failure of mode/seed on shadow_path and opens it with one worker.
inline void reopen_after_power_failure(const std::string& shadow_path, recovery::PfMode mode, uint64_t seed,
                                       RecoveredPool* out) {
  ASSERT_TRUE(recovery::PowerFailSim::finish_after_kill(shadow_path, mode, seed).is_ok());
  auto pool = pmem::Pool::open(shadow_path);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  out->pool = std::move(pool).value();
  auto idx = index::Index::open(*out->pool, {.workers = 1});
  ASSERT_TRUE(idx.is_ok()) << idx.status().to_string();
  out->idx = std::move(idx).value();
}

}  // namespace ferrite::testing
