// ferrite-check: offline consistency check of a Ferrite pool file.
//   ferrite-check /dev/shm/ferrite.pool
// Exit codes: 0 consistent; 1 problems found (listed); 2 the pool cannot be
// opened (in use, wrong layout, newer version, truncated, ...).
#include <cstdio>

#include "recovery/check.h"

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: ferrite-check POOL_FILE\n");
    return 2;
  }
  auto r = ferrite::recovery::check_pool(argv[1]);
  if (!r) {
    std::fprintf(stderr, "ferrite-check: %s\n", r.status().to_string().c_str());
    return 2;
  }
  std::fputs(ferrite::recovery::to_string(*r).c_str(), stdout);
  return r->ok() ? 0 : 1;
}
