// FERRITE_CHECK's failure path: print and abort (a bug, never bad input).
#include <cstdio>
#include <cstdlib>

#include "common/cacheline.h"

namespace ferrite {

void check_failed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "ferrite: check failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}

}  // namespace ferrite
