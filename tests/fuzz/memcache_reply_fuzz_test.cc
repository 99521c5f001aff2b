// Runs the memcached reply fuzz body on deterministic inputs in every test
// run: random bytes, and mutations of valid reply datagrams (flipped bytes,
// cut lengths), so the common paths and the edges are both hit.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "perf/bench/memcache_udp.h"
#include "tests/fuzz/memcache_reply_fuzz.h"

namespace ferrite {
namespace {

std::vector<uint8_t> valid_reply(std::mt19937_64& rng) {
  static const char* texts[] = {"VALUE key:000001 0 5\r\nhello\r\nEND\r\n", "VALUE k 3 0 77\r\n\r\nEND\r\n",
                                "END\r\n", "STORED\r\n", "NOT_STORED\r\n", "SERVER_ERROR oom\r\n", "ERROR\r\n"};
  const std::string t = texts[rng() % 7];
  std::vector<uint8_t> d(proto::mc::kUdpHeaderSize);
  const uint16_t count = static_cast<uint16_t>(1 + rng() % 3);
  proto::mc::encode_udp_header({static_cast<uint16_t>(rng()), static_cast<uint16_t>(rng() % count), count, 0}, d.data());
  d.insert(d.end(), t.begin(), t.end());
  return d;
}

TEST(MemcacheReplyFuzz, RandomAndMutatedInputs) {
  std::mt19937_64 rng(20261125);
  for (int iter = 0; iter < 200000; ++iter) {
    std::vector<uint8_t> d;
    if (iter % 2 == 0) {
      d.resize(rng() % 64);
      for (auto& b : d) b = static_cast<uint8_t>("VALUEND\r\n 0123456789STORX"[rng() % 26]);
    } else {
      d = valid_reply(rng);
      const int flips = static_cast<int>(rng() % 4);
      for (int i = 0; i < flips && !d.empty(); ++i) d[rng() % d.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      if (rng() % 3 == 0) d.resize(rng() % (d.size() + 1));
    }
    fuzz::memcache_reply_one_input(d.data(), d.size());
    // The text path on its own, without a frame.
    if (d.size() > proto::mc::kUdpHeaderSize) {
      fuzz::memcache_reply_one_input(d.data() + proto::mc::kUdpHeaderSize, d.size() - proto::mc::kUdpHeaderSize);
    }
  }
}

}  // namespace
}  // namespace ferrite
