// Runs the memcached parser fuzz body on deterministic inputs in every test
// run: random bytes, and mutations of valid request streams (every command,
// then flipped bytes and cut lengths), so the common paths and the edges are
// both hit.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/fuzz/memcached_fuzz.h"

namespace ferrite {
namespace {

const char* const kSeeds[] = {
    "get a b c\r\n", "gets a\r\n", "gat 10 a b\r\n", "gats -1 a\r\n", "set a 1 0 3\r\nabc\r\n",
    "add a 1 0 3 noreply\r\nabc\r\n", "cas a 0 0 1 99\r\nx\r\n", "append a 0 0 1\r\nx\r\n", "delete a 0 noreply\r\n",
    "incr a 5\r\n", "decr a 18446744073709551615\r\n", "touch a 10\r\n", "flush_all 10 noreply\r\n", "version\r\n",
    "verbosity 1\r\n", "stats settings\r\n", "quit\r\n", "mg a v c f t k s O12 q T30\r\n", "ms YTI= 2 b T0 F5 MA C3 I\r\nxx\r\n",
    "md a q C5 k\r\n", "ma a N0 J10 D3 MD v t c\r\n", "mn\r\n", "me a\r\n", "set a 0 0 2000000\r\n",
    "ms a 1 C0 ME c k O1\r\nx\r\n", "ms a 1 C7 MP q\r\nx\r\n", "md a C0\r\n", "ma a C9 N0 J1 v\r\n",
    // Malformed numbers and hostile lines (issue 17).
    "set a 0 0 -1\r\nabcd\r\n", "set a 0 0 4294967300\r\nabcd\r\n", "set a 0 0 2147483645\r\n",
    "set a 18446744073709551615 -1 \t4\t\r\nabcd\r\n", "set a +5 -0 04\r\nabcd\r\n", "cas a 0 0 1 -1\r\nx\r\n",
    "incr a -1\r\n", "touch a 9223372036854775808\r\n", "gat 10\r\n", "flush_all 5 x\r\n", "verbosity 4294967296\r\n",
    "ms a 2000000 T1\r\n", "ms a -1\r\n", "GET / HTTP/1.0\r\n", "PUT /a HTTP/1.1\r\n", "DELETE HTTP/1.1\r\n",
};

TEST(MemcachedFuzz, RandomAndMutatedInputs) {
  std::mt19937_64 rng(20261125);
  for (int iter = 0; iter < 200000; ++iter) {
    std::string d;
    if (iter % 3 == 0) {
      d.resize(rng() % 120);
      for (char& c : d) c = static_cast<char>(rng());
    } else {
      const int n = 1 + static_cast<int>(rng() % 4);
      if (iter % 3 == 2) d = std::string("\x00\x01\x00\x00\x00\x01\x01\x00", 8);  // a UDP frame header
      if (iter % 7 == 1) {
        // A binary-protocol set: header, 8 bytes of extras, key, value.
        d = std::string("\x80\x01\x00\x02\x08\x00\x00\x00\x00\x00\x00\x0d\x00\x00\x00\x01", 16) + std::string(8, '\0') +
            std::string(8, '\0') + "kvalue";
      }
      if (iter % 11 == 3) {
        // A binary set whose body announces 2 MiB: too large, framed, the value to swallow.
        d = std::string("\x80\x01\x00\x01\x08\x00\x00\x00\x00\x20\x00\x09\x00\x00\x00\x02", 16) +
            std::string(8, '\0') + std::string(8, '\0') + "k" + "partial value";
      }
      for (int i = 0; i < n; ++i) d += kSeeds[rng() % (sizeof(kSeeds) / sizeof(kSeeds[0]))];
      const int flips = static_cast<int>(rng() % 4);
      for (int i = 0; i < flips && !d.empty(); ++i) d[rng() % d.size()] = static_cast<char>(rng());
      if (rng() % 3 == 0) d.resize(rng() % (d.size() + 1));
    }
    fuzz::memcached_one_input(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  }
}

}  // namespace
}  // namespace ferrite
