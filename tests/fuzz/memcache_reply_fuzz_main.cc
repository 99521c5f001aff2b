// libFuzzer entry point for the memcached reply decoder (scripts/fuzz).
#include "tests/fuzz/memcache_reply_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferrite::fuzz::memcache_reply_one_input(data, size);
  return 0;
}
