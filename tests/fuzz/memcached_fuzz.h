// The memcached text-protocol parser fuzz body, shared by the libFuzzer
// target (memcached_fuzz_main.cc, built with clang by scripts/fuzz) and a
// deterministic random-input test in the normal suite (memcached_fuzz_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::fuzz {
// Parses data as a stream of memcached requests (as a TCP connection would
// feed it, also cut at every split point given by the first byte) and as a
// UDP datagram; aborts if an invariant of the parser does not hold.
void memcached_one_input(const uint8_t* data, std::size_t size);
}  // namespace ferrite::fuzz
