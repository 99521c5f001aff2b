// Runs the decoder fuzz body on deterministic inputs in every test run:
// random bytes, and mutations of valid datagrams (valid header, then flipped
// bytes and cut lengths), so the common paths and the edges are both hit.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "proto/native.h"
#include "tests/fuzz/native_fuzz.h"

namespace ferrite {
namespace {

std::vector<uint8_t> valid_request(std::mt19937_64& rng) {
  std::vector<uint8_t> body;
  const int n = static_cast<int>(rng() % 6);
  std::string key(1 + rng() % 20, 'k'), val(rng() % 64, 'v');
  for (int i = 0; i < n; ++i) {
    proto::RequestOp op;
    op.opcode = static_cast<proto::Opcode>(1 + rng() % 13);
    op.key = key;
    op.value = val;
    proto::append_request_op(&body, op);
  }
  std::vector<uint8_t> dg(proto::kHeaderSize + body.size());
  proto::Header h;
  h.msg_len = static_cast<uint32_t>(body.size());
  h.request_id = rng();
  proto::encode_header(h, dg.data());
  std::copy(body.begin(), body.end(), dg.begin() + proto::kHeaderSize);
  return dg;
}

TEST(NativeFuzz, RandomAndMutatedInputs) {
  std::mt19937_64 rng(20261124);
  for (int iter = 0; iter < 200000; ++iter) {
    std::vector<uint8_t> d;
    if (iter % 2 == 0) {
      d.resize(rng() % 200);
      for (auto& b : d) b = static_cast<uint8_t>(rng());
    } else {
      d = valid_request(rng);
      const int flips = static_cast<int>(rng() % 4);
      for (int f = 0; f < flips && !d.empty(); ++f) d[rng() % d.size()] = static_cast<uint8_t>(rng());
      if (rng() % 3 == 0 && !d.empty()) d.resize(rng() % d.size());
    }
    ferrite::fuzz::native_one_input(d.data(), d.size());
  }
  SUCCEED() << "200000 inputs decoded without an invariant failure";
}

}  // namespace
}  // namespace ferrite
