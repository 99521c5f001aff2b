// libFuzzer entry point for the memcached text-protocol parser (scripts/fuzz).
#include "tests/fuzz/memcached_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferrite::fuzz::memcached_one_input(data, size);
  return 0;
}
