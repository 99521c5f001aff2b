// The native-protocol decoder fuzz body, shared by the libFuzzer target
// (native_fuzz_main.cc, built with clang by scripts/fuzz) and a deterministic
// random-input test in the normal suite (native_fuzz_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::fuzz {
// Decodes data as a datagram and as a request/response body, and feeds it to
// a reassembler; aborts if an invariant of the decoder does not hold.
void native_one_input(const uint8_t* data, std::size_t size);
}  // namespace ferrite::fuzz
