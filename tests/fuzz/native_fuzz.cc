// Fuzz body for proto/native (see native_fuzz.h). Besides "no crash, no
// out-of-bounds read" (ASan/libFuzzer), it checks that every view the decoder
// returns lies inside the input and that re-encoding a decoded header gives
// the same bytes.
#include "tests/fuzz/native_fuzz.h"

#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "proto/native.h"

namespace ferrite::fuzz {
namespace {

void check(bool cond) {
  if (!cond) std::abort();
}

bool inside(std::string_view v, const uint8_t* data, std::size_t size) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return v.empty() || (p >= data && p + v.size() <= data + size);
}

}  // namespace

void native_one_input(const uint8_t* data, std::size_t size) {
  std::span<const uint8_t> in(data, size);
  proto::Header h;
  std::span<const uint8_t> payload;
  if (proto::decode_header(in, &h, &payload) == Result::kOk) {
    uint8_t again[proto::kHeaderSize];
    proto::encode_header(h, again);
    check(std::memcmp(again, data, proto::kHeaderSize) == 0);
    check(payload.data() == data + proto::kHeaderSize && payload.size() == size - proto::kHeaderSize);
    proto::Reassembly r;
    (void)r.add(h, payload);
    check(r.received_bytes() <= h.msg_len);
  }
  proto::RequestReader rd(in);
  proto::RequestOp op;
  for (int i = 0; i < 100000; ++i) {
    auto n = rd.next(&op);
    if (n == proto::RequestReader::Next::kEnd || n == proto::RequestReader::Next::kMalformed) break;
    check(inside(op.key, data, size) && inside(op.value, data, size));
    if (n == proto::RequestReader::Next::kOp) check(op.key.size() <= proto::kMaxKey && op.value.size() <= proto::kMaxValue);
  }
  std::vector<proto::ScanEntry> entries;
  if (proto::read_scan_page(std::string_view(reinterpret_cast<const char*>(data), size), &entries)) {
    for (const auto& e : entries) check(inside(e.key, data, size) && inside(e.value, data, size));
  }
  proto::ResponseReader rr(in);
  proto::ResponseOp rop;
  for (int i = 0; i < 100000 && rr.next(&rop) == Result::kOk; ++i) check(inside(rop.value, data, size));
}

}  // namespace ferrite::fuzz
