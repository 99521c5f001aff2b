// The memcached UDP reply decoder fuzz body (ferrite-bench's parser of
// memcached replies), shared by the libFuzzer target built by scripts/fuzz
// and a deterministic random-input test in the normal suite.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferrite::fuzz {
// Decodes data as a reply datagram (frame + text), parses its text, and
// feeds it to a reply assembler; aborts if an invariant does not hold.
void memcache_reply_one_input(const uint8_t* data, std::size_t size);
}  // namespace ferrite::fuzz
