// The DPDK frame parser fuzz body (net/frame.h), shared by the libFuzzer
// target (frame_fuzz_main.cc, built with clang by scripts/fuzz) and the
// deterministic mutation test in the normal suite (net/frame_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::fuzz {
// Parses a copy of data as a received frame (with each checksum-offload
// verdict); aborts if a result points outside the frame or a rewritten reply
// is not a valid frame.
void frame_one_input(const uint8_t* data, std::size_t size);
}  // namespace ferrite::fuzz
