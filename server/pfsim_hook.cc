// ferrited-pfsim's simulator start (see pfsim_hook.h).
#include "server/pfsim_hook.h"

#include <cstdlib>

#include "common/log.h"

namespace ferrite::server {

StatusOr<std::unique_ptr<recovery::PowerFailSim>> start_pfsim_from_env(pmem::Pool& pool, index::Index& idx) {
  const char* shadow = std::getenv("FERRITE_PFSIM_SHADOW");
  if (shadow == nullptr || *shadow == '\0') return std::unique_ptr<recovery::PowerFailSim>();
  idx.wait_repaired();  // nothing may persist while the simulator copies the image
  auto sim = recovery::PowerFailSim::start(pool, shadow);
  if (!sim) return sim.status();
  log_info("power-failure simulator on: shadow image {} (test build; only flushed+fenced lines reach it)", shadow);
  return sim;
}

}  // namespace ferrite::server
