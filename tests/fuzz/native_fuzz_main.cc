// libFuzzer entry point for the native protocol decoder (scripts/fuzz).
#include "tests/fuzz/native_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferrite::fuzz::native_one_input(data, size);
  return 0;
}
