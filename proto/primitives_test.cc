// Unit tests of proto/'s shared pieces: the memcached UDP frame header
// (proto/memcached_udp.h), the exptime rule (proto/exptime.h), the limits
// each protocol derives from common/limits.h, and OpStatus's wire values.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "proto/exptime.h"
#include "proto/memcached.h"
#include "proto/memcached_udp.h"
#include "proto/native.h"

namespace ferrite::proto {
namespace {

TEST(MemcachedUdp, HeaderIsFourBigEndianU16) {
  uint8_t b[mc::kUdpHeaderSize];
  mc::encode_udp_header({0x1234, 0x0001, 0x0002, 0x0100}, b);
  const uint8_t want[8] = {0x12, 0x34, 0x00, 0x01, 0x00, 0x02, 0x01, 0x00};
  EXPECT_EQ(0, std::memcmp(b, want, 8));
  mc::UdpHeader h;
  ASSERT_TRUE(mc::decode_udp_header(std::string_view(reinterpret_cast<const char*>(b), 8), &h));
  EXPECT_EQ(h.request_id, 0x1234);
  EXPECT_EQ(h.seq, 1);
  EXPECT_EQ(h.count, 2);
  EXPECT_EQ(h.reserved, 0x0100);
  EXPECT_FALSE(mc::decode_udp_header(std::string_view(reinterpret_cast<const char*>(b), 7), &h));
}

TEST(MemcachedUdp, ServerSideDecodeChecksNoField) {
  // A request with count 0 or seq >= count is still decoded: the server
  // answers it (memcached does too).
  uint8_t b[8];
  mc::encode_udp_header({7, 5, 0, 0}, b);
  mc::UdpHeader h;
  ASSERT_TRUE(mc::decode_udp_header(std::string_view(reinterpret_cast<const char*>(b), 8), &h));
  EXPECT_EQ(h.seq, 5);
  EXPECT_EQ(h.count, 0);
}

TEST(MemcachedUdp, ReplySideDecodeRejectsBadSeqAndCount) {
  uint8_t b[10];
  mc::encode_udp_header({0x1234, 1, 2, 0x0100}, b);
  b[8] = 'o';
  b[9] = 'k';
  mc::UdpHeader h;
  std::span<const uint8_t> payload;
  ASSERT_TRUE(mc::decode_udp_reply(std::span<const uint8_t>(b, 10), &h, &payload));
  EXPECT_EQ(h.reserved, 0x0100);  // reported, not rejected (memaslap sends 0x0100)
  ASSERT_EQ(payload.size(), 2u);
  EXPECT_EQ(payload[0], 'o');
  EXPECT_FALSE(mc::decode_udp_reply(std::span<const uint8_t>(b, 7), &h, &payload));
  b[5] = 0;  // count 0
  EXPECT_FALSE(mc::decode_udp_reply(std::span<const uint8_t>(b, 8), &h, &payload));
  b[5] = 1;  // seq 1 >= count 1
  EXPECT_FALSE(mc::decode_udp_reply(std::span<const uint8_t>(b, 8), &h, &payload));
}

TEST(MemcachedUdp, FragmentsCarrySeqAndCountAndRejoin) {
  std::string reply, scratch, joined;
  for (int i = 0; i < 2801; ++i) reply += static_cast<char>('a' + i % 26);
  std::vector<mc::UdpHeader> hs;
  const std::size_t n = mc::udp_fragment(0xbeef, reply, mc::kUdpMaxPayload, &scratch, [&](std::string_view d) {
    mc::UdpHeader h;
    ASSERT_TRUE(mc::decode_udp_header(d, &h));
    EXPECT_LE(d.size(), mc::kUdpHeaderSize + mc::kUdpMaxPayload);
    hs.push_back(h);
    joined += d.substr(mc::kUdpHeaderSize);
  });
  ASSERT_EQ(n, 3u);
  ASSERT_EQ(hs.size(), 3u);
  for (uint16_t i = 0; i < 3; ++i) {
    EXPECT_EQ(hs[i].request_id, 0xbeef);
    EXPECT_EQ(hs[i].seq, i);
    EXPECT_EQ(hs[i].count, 3);
  }
  EXPECT_EQ(joined, reply);
  EXPECT_EQ(mc::udp_fragment(1, "", mc::kUdpMaxPayload, &scratch, [](std::string_view) { FAIL(); }), 0u);
}

TEST(Exptime, MemcachedRule) {
  EXPECT_EQ(absolute_exptime(0, 1000), 0u);   // never
  EXPECT_EQ(absolute_exptime(-1, 1000), 1u);  // long past
  EXPECT_EQ(absolute_exptime(100, 1000), 1100u);
  EXPECT_EQ(absolute_exptime(kMaxRelativeExptime, 1000), 1000u + kMaxRelativeExptime);  // still relative
  EXPECT_EQ(absolute_exptime(kMaxRelativeExptime + 1, 1000), uint32_t{kMaxRelativeExptime} + 1);  // absolute
  EXPECT_EQ(absolute_exptime(int64_t{1} << 40, 1000), UINT32_MAX);                                // saturates
  EXPECT_EQ(absolute_exptime(100, UINT32_MAX), UINT32_MAX);
  EXPECT_EQ(mc::absolute_exptime(100, 1000), absolute_exptime(100, 1000));  // one function, two names
}

TEST(Limits, ProtocolsAcceptExactlyTheStoreLimits) {
  // The native reader: a key of kMaxKeyLen is an op, one byte more is too large.
  for (std::size_t klen : {limits::kMaxKeyLen, limits::kMaxKeyLen + 1}) {
    std::vector<uint8_t> body;
    RequestOp op;
    op.opcode = Opcode::kGet;
    const std::string key(klen, 'k');
    op.key = key;
    append_request_op(&body, op);
    RequestReader r(body);
    RequestOp got;
    EXPECT_EQ(r.next(&got), klen <= limits::kMaxKeyLen ? RequestReader::Next::kOp : RequestReader::Next::kTooLarge)
        << klen;
  }
  // memcached's text parser: a value of kMaxValueLen is stored, one more is refused.
  for (std::size_t vlen : {limits::kMaxValueLen, limits::kMaxValueLen + 1}) {
    const std::string req = "set k 0 0 " + std::to_string(vlen) + "\r\n" + std::string(vlen, 'v') + "\r\n";
    mc::Request r;
    const mc::ParseResult pr = mc::parse_request(req, &r);
    EXPECT_EQ(pr.status, vlen <= limits::kMaxValueLen ? mc::Parse::kOk : mc::Parse::kError) << vlen;
  }
}

TEST(OpStatus, WireValuesAreStable) {
  // docs/protocol.md's status byte values.
  EXPECT_EQ(static_cast<int>(OpStatus::kOk), 0);
  EXPECT_EQ(static_cast<int>(OpStatus::kNotFound), 1);
  EXPECT_EQ(static_cast<int>(OpStatus::kUnknownOpcode), 10);
  std::vector<uint8_t> out;
  ResponseOp op;
  op.opcode = Opcode::kGet;
  op.status = OpStatus::kNotFound;
  append_response_op(&out, op);
  ResponseReader rr(out);
  ResponseOp got;
  ASSERT_EQ(rr.next(&got), Result::kOk);
  EXPECT_EQ(got.status, OpStatus::kNotFound);
}

}  // namespace
}  // namespace ferrite::proto
