// Test build only (ferrited-pfsim, issue 5): starts the power-failure
// simulator (recovery/pfsim.h) inside ferrited when FERRITE_PFSIM_SHADOW
// names a shadow file, so a crash campaign (ferrite-crashtest --mode server
// --pf ...) can turn a kill -9 into a simulated power failure. The
// production ferrited never includes this header: server/ferrited.cc calls
// it only under #if FERRITE_PFSIM, which only server/meson.build's
// ferrited-pfsim target defines.
//
// Thread safety: call once from main, after Index::open and before any thread
// that persists (backend workers, housekeeping) starts.
#pragma once

#include <memory>

#include "common/status.h"
#include "index/index.h"
#include "pmem/pool.h"
#include "recovery/pfsim.h"

namespace ferrite::server {

// Null (and OK) when FERRITE_PFSIM_SHADOW is unset. Waits for crash repair
// to finish first: the shadow starts as a copy of the pool as it is then.
StatusOr<std::unique_ptr<recovery::PowerFailSim>> start_pfsim_from_env(pmem::Pool& pool, index::Index& idx);

}  // namespace ferrite::server
