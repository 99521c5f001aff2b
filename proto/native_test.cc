// Unit tests of the native protocol codec (proto/native.h): header, request
// op, response op and scan page round trips; malformed and truncated input
// refused; the key, value, message and fragment limits; fragmentation and
// reassembly of a message in any order. Pure functions: no sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "proto/native.h"

namespace ferrite::proto {
namespace {

std::vector<uint8_t> header_bytes(const Header& h, std::size_t payload = 0) {
  std::vector<uint8_t> d(kHeaderSize + payload, 0xab);
  encode_header(h, d.data());
  return d;
}

TEST(NativeHeader, RoundTripsEveryField) {
  Header h;
  h.type = MsgType::kResponse;
  h.frag_index = 3;
  h.frag_count = 9;
  h.msg_len = 5000;
  h.frag_offset = 1200;
  h.request_id = 0x0102030405060708ull;
  h.cookie = 0xfedcba9876543210ull;
  const auto d = header_bytes(h, 100);
  EXPECT_EQ(d[0], 0x46);  // magic "FE", little-endian
  EXPECT_EQ(d[1], 0x45);
  EXPECT_EQ(d[2], kVersion);
  Header out;
  std::span<const uint8_t> payload;
  ASSERT_EQ(decode_header(d, &out, &payload), Result::kOk);
  EXPECT_EQ(out.type, h.type);
  EXPECT_EQ(out.frag_index, h.frag_index);
  EXPECT_EQ(out.frag_count, h.frag_count);
  EXPECT_EQ(out.msg_len, h.msg_len);
  EXPECT_EQ(out.frag_offset, h.frag_offset);
  EXPECT_EQ(out.request_id, h.request_id);
  EXPECT_EQ(out.cookie, h.cookie);
  EXPECT_EQ(payload.size(), 100u);
  EXPECT_EQ(payload.data(), d.data() + kHeaderSize);
}

TEST(NativeHeader, RefusesMalformedHeaders) {
  Header ok;
  ok.msg_len = 4;
  std::span<const uint8_t> payload;
  Header out;
  const auto good = header_bytes(ok, 4);
  ASSERT_EQ(decode_header(good, &out, &payload), Result::kOk);
  // Too short, too long.
  EXPECT_EQ(decode_header(std::span(good).first(kHeaderSize - 1), &out, &payload), Result::kMalformed);
  std::vector<uint8_t> huge(kMaxDatagram + 1, 0);
  encode_header(ok, huge.data());
  EXPECT_EQ(decode_header(huge, &out, &payload), Result::kMalformed);
  // Bad magic, version, type (0 and 6).
  const std::pair<std::size_t, uint8_t> bad_bytes[] = {{0, 0x00}, {1, 0x00}, {2, kVersion + 1}, {3, 0}, {3, 6}};
  for (auto [at, v] : bad_bytes) {
    auto d = good;
    d[at] = v;
    EXPECT_EQ(decode_header(d, &out, &payload), Result::kMalformed) << "byte " << at << " = " << int{v};
  }
  // Fragment fields inconsistent with each other or with the datagram.
  auto frag = [&](uint16_t index, uint16_t count, uint32_t msg_len, uint32_t offset, std::size_t plen) {
    Header h;
    h.frag_index = index;
    h.frag_count = count;
    h.msg_len = msg_len;
    h.frag_offset = offset;
    return decode_header(header_bytes(h, plen), &out, &payload);
  };
  EXPECT_EQ(frag(0, 2, 100, 0, 50), Result::kOk);
  EXPECT_EQ(frag(0, 0, 0, 0, 0), Result::kMalformed) << "no fragments";
  EXPECT_EQ(frag(2, 2, 100, 0, 50), Result::kMalformed) << "index beyond count";
  EXPECT_EQ(frag(0, kMaxFragments + 1, 100, 0, 50), Result::kMalformed) << "too many fragments";
  EXPECT_EQ(frag(0, 2, kMaxMessage + 1, 0, 50), Result::kMalformed) << "message beyond the limit";
  EXPECT_EQ(frag(1, 2, 100, 60, 50), Result::kMalformed) << "payload past the message end";
  EXPECT_EQ(frag(0, 1, 100, 0, 50), Result::kMalformed) << "one fragment must carry the whole message";
  EXPECT_EQ(frag(0, 1, 50, 1, 49), Result::kMalformed) << "one fragment starts at 0";
}

RequestOp make_op(Opcode c, std::string_view key, std::string_view value, uint64_t arg = 0) {
  RequestOp o;
  o.opcode = c;
  o.key = key;
  o.value = value;
  o.arg = arg;
  return o;
}

TEST(NativeRequest, OpsRoundTripInOrder) {
  std::vector<RequestOp> ops = {make_op(Opcode::kSet, "key", "value", 0), make_op(Opcode::kIncr, "n", "", 41),
                                make_op(Opcode::kNoop, "", ""), make_op(Opcode::kScan, "", "", 99)};
  ops[0].op_flags = kOpQuiet;
  ops[0].client_flags = 0xdeadbeef;
  ops[0].exptime = 3600;
  std::vector<uint8_t> body;
  for (const auto& o : ops) append_request_op(&body, o);
  EXPECT_EQ(body.size(), 4 * kOpHeaderSize + 3 + 5 + 1);
  RequestReader r(body);
  for (const auto& want : ops) {
    RequestOp got;
    ASSERT_EQ(r.next(&got), RequestReader::Next::kOp);
    EXPECT_EQ(got.opcode, want.opcode);
    EXPECT_EQ(got.op_flags, want.op_flags);
    EXPECT_EQ(got.key, want.key);
    EXPECT_EQ(got.value, want.value);
    EXPECT_EQ(got.client_flags, want.client_flags);
    EXPECT_EQ(got.exptime, want.exptime);
    EXPECT_EQ(got.arg, want.arg);
  }
  RequestOp end;
  EXPECT_EQ(r.next(&end), RequestReader::Next::kEnd);
  EXPECT_EQ(r.index(), ops.size());
}

TEST(NativeRequest, TruncatedBodiesAreMalformed) {
  std::vector<uint8_t> body;
  append_request_op(&body, make_op(Opcode::kSet, "key", "value"));
  for (std::size_t cut = 1; cut < body.size(); ++cut) {
    RequestReader r(std::span<const uint8_t>(body).first(cut));
    RequestOp op;
    EXPECT_EQ(r.next(&op), RequestReader::Next::kMalformed) << "cut at " << cut;
  }
  // A value length that does not fit, even when the sum would wrap in 32 bits.
  store_le32(body.data() + 4, 0xffffffffu);
  RequestReader r(body);
  RequestOp op;
  EXPECT_EQ(r.next(&op), RequestReader::Next::kMalformed);
}

TEST(NativeRequest, UnknownOpcodeIsSkippedByLength) {
  std::vector<uint8_t> body;
  append_request_op(&body, make_op(Opcode::kGet, "a", ""));
  body[0] = kMaxOpcode + 1;
  append_request_op(&body, make_op(Opcode::kGet, "b", ""));
  RequestReader r(body);
  RequestOp op;
  EXPECT_EQ(r.next(&op), RequestReader::Next::kUnknownOpcode);
  ASSERT_EQ(r.next(&op), RequestReader::Next::kOp);
  EXPECT_EQ(op.key, "b");
  body[0] = 0;
  RequestReader zero(body);
  EXPECT_EQ(zero.next(&op), RequestReader::Next::kUnknownOpcode);
}

TEST(NativeRequest, KeyAndValueLimits) {
  const std::string key_max(kMaxKey, 'k'), key_over(kMaxKey + 1, 'k');
  const std::string value_max(kMaxValue, 'v'), value_over(kMaxValue + 1, 'v');
  struct Case {
    const std::string* key;
    const std::string* value;
    RequestReader::Next want;
  };
  for (const Case& c : {Case{&key_max, &value_max, RequestReader::Next::kOp},
                        Case{&key_over, &value_max, RequestReader::Next::kTooLarge},
                        Case{&key_max, &value_over, RequestReader::Next::kTooLarge}}) {
    std::vector<uint8_t> body;
    append_request_op(&body, make_op(Opcode::kSet, *c.key, *c.value));
    append_request_op(&body, make_op(Opcode::kNoop, "", ""));
    RequestReader r(body);
    RequestOp op;
    EXPECT_EQ(r.next(&op), c.want) << c.key->size() << "/" << c.value->size();
    EXPECT_EQ(op.key.size(), c.key->size());
    EXPECT_EQ(op.value.size(), c.value->size());
    EXPECT_EQ(r.next(&op), RequestReader::Next::kOp) << "the reader moves past a too-large op";
    EXPECT_EQ(op.opcode, Opcode::kNoop);
  }
  // The encoder's key length is one byte: a longer key is cut at 255.
  std::vector<uint8_t> body;
  append_request_op(&body, make_op(Opcode::kGet, std::string(300, 'x'), ""));
  EXPECT_EQ(body.size(), kOpHeaderSize + 255);
}

TEST(NativeResponse, OpsRoundTripAndTruncationIsMalformed) {
  std::vector<uint8_t> out;
  ResponseOp a{Opcode::kGet, OpStatus::kOk, 0, 7, 12345, "hello"};
  ResponseOp b{Opcode::kDel, OpStatus::kNotFound, 1, 0, 0, ""};
  append_response_op(&out, a);
  append_response_op(&out, b);
  EXPECT_EQ(out.size(), response_op_size(5) + response_op_size(0));
  ResponseReader r(out);
  ResponseOp got;
  ASSERT_EQ(r.next(&got), Result::kOk);
  EXPECT_EQ(got.opcode, a.opcode);
  EXPECT_EQ(got.status, a.status);
  EXPECT_EQ(got.index, a.index);
  EXPECT_EQ(got.client_flags, a.client_flags);
  EXPECT_EQ(got.version, a.version);
  EXPECT_EQ(got.value, a.value);
  ASSERT_EQ(r.next(&got), Result::kOk);
  EXPECT_EQ(got.status, OpStatus::kNotFound);
  EXPECT_EQ(got.index, 1u);
  EXPECT_EQ(r.next(&got), Result::kNotFound) << "end of the body";
  for (std::size_t cut = 1; cut < response_op_size(5); ++cut) {
    ResponseReader t(std::span<const uint8_t>(out).first(cut));
    EXPECT_EQ(t.next(&got), Result::kMalformed) << "cut at " << cut;
  }
}

TEST(NativeScan, PageRoundTripsAndRefusesTruncation) {
  std::string page;
  const ScanEntry a{"alpha", "one", 3, 100, 77};
  const ScanEntry b{"b", "", 0, 0, 1};
  append_scan_entry(&page, a);
  append_scan_entry(&page, b);
  EXPECT_EQ(page.size(), 2 * kScanEntryHeader + 5 + 3 + 1);
  std::vector<ScanEntry> got;
  ASSERT_TRUE(read_scan_page(page, &got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, a.key);
  EXPECT_EQ(got[0].value, a.value);
  EXPECT_EQ(got[0].flags, a.flags);
  EXPECT_EQ(got[0].exptime, a.exptime);
  EXPECT_EQ(got[0].version, a.version);
  EXPECT_EQ(got[1].key, b.key);
  EXPECT_EQ(got[1].version, b.version);
  ASSERT_TRUE(read_scan_page("", &got));
  EXPECT_TRUE(got.empty());
  for (std::size_t cut = 1; cut < page.size(); ++cut) {
    if (cut == kScanEntryHeader + 5 + 3) continue;  // a whole first entry: a valid page
    EXPECT_FALSE(read_scan_page(std::string_view(page).substr(0, cut), &got)) << "cut at " << cut;
  }
}

// Fragments a message, shuffles the datagrams, decodes each header and
// reassembles: the body comes back whole.
TEST(NativeFragments, FragmentAndReassembleInAnyOrder) {
  std::vector<uint8_t> body(10000);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31 + 7);
  Header h;
  h.request_id = 42;
  h.cookie = 9;
  std::vector<uint8_t> scratch;
  std::vector<std::vector<uint8_t>> dgrams;
  const std::size_t n =
      fragment(h, body, kDefaultDatagram, &scratch,
               [&](std::span<const uint8_t> d) { dgrams.emplace_back(d.begin(), d.end()); });
  const std::size_t per = kDefaultDatagram - kHeaderSize;
  ASSERT_EQ(n, (body.size() + per - 1) / per);
  ASSERT_EQ(dgrams.size(), n);
  std::mt19937 rng(16);
  std::shuffle(dgrams.begin(), dgrams.end(), rng);
  Reassembly re;
  for (std::size_t i = 0; i < dgrams.size(); ++i) {
    EXPECT_LE(dgrams[i].size(), kDefaultDatagram);
    Header got;
    std::span<const uint8_t> payload;
    ASSERT_EQ(decode_header(dgrams[i], &got, &payload), Result::kOk);
    EXPECT_EQ(got.request_id, 42u);
    EXPECT_EQ(got.frag_count, n);
    const Result r = re.add(got, payload);
    EXPECT_EQ(r, i + 1 == dgrams.size() ? Result::kOk : Result::kRetry) << "fragment " << i;
    if (i == 0) {
      EXPECT_EQ(re.add(got, payload), Result::kRetry) << "a duplicate changes nothing";
    }
  }
  ASSERT_EQ(re.body().size(), body.size());
  EXPECT_TRUE(std::equal(body.begin(), body.end(), re.body().begin()));
  EXPECT_EQ(re.request_id(), 42u);
}

TEST(NativeFragments, EmptyBodyIsOneDatagramAndLimitsHold) {
  std::vector<uint8_t> scratch;
  std::size_t emitted = 0;
  auto count = [&](std::span<const uint8_t>) { ++emitted; };
  EXPECT_EQ(fragment(Header{}, {}, kDefaultDatagram, &scratch, count), 1u);
  EXPECT_EQ(scratch.size(), kHeaderSize);
  std::vector<uint8_t> big(kMaxMessage + 1);
  EXPECT_EQ(fragment(Header{}, big, kMaxDatagram, &scratch, count), 0u) << "beyond kMaxMessage";
  std::vector<uint8_t> many(kMaxFragments * 10 + 1);
  EXPECT_EQ(fragment(Header{}, many, kHeaderSize + 10, &scratch, count), 0u) << "beyond kMaxFragments";
  EXPECT_EQ(fragment(Header{}, many, kHeaderSize, &scratch, count), 0u) << "no room for payload";
  EXPECT_EQ(fragment(Header{}, many, kMaxDatagram + 1, &scratch, count), 0u) << "beyond kMaxDatagram";
  EXPECT_EQ(emitted, 1u);
}

TEST(NativeFragments, InconsistentFragmentsAreMalformed) {
  Header h;
  h.request_id = 1;
  h.frag_count = 2;
  h.msg_len = 20;
  const std::vector<uint8_t> ten(10, 1);
  Reassembly re;
  ASSERT_EQ(re.add(h, ten), Result::kRetry);
  Header other = h;
  other.frag_index = 1;
  other.frag_offset = 10;
  other.msg_len = 30;
  EXPECT_EQ(re.add(other, ten), Result::kMalformed) << "another message length";
  other.msg_len = 20;
  other.request_id = 2;
  EXPECT_EQ(re.add(other, ten), Result::kMalformed) << "another request id";
  other.request_id = 1;
  other.frag_offset = 15;
  EXPECT_EQ(re.add(other, ten), Result::kMalformed) << "payload past the end";
  other.frag_offset = 10;
  EXPECT_EQ(re.add(other, ten), Result::kOk);
  // Fragments that all arrive but leave a hole (overlapping offsets).
  Reassembly hole;
  ASSERT_EQ(hole.add(h, ten), Result::kRetry);
  Header overlap = h;
  overlap.frag_index = 1;
  overlap.frag_offset = 5;
  const std::vector<uint8_t> five(5, 2);
  EXPECT_EQ(hole.add(overlap, five), Result::kMalformed);
}

}  // namespace
}  // namespace ferrite::proto
