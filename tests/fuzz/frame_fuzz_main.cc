// libFuzzer entry point for the DPDK frame parser (scripts/fuzz).
#include "tests/fuzz/frame_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferrite::fuzz::frame_one_input(data, size);
  return 0;
}
