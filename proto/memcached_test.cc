// Unit tests of memcached's text protocol decoder (proto/memcached.h):
// every classic and meta command parsed into a Request, incomplete input
// waiting for more bytes, malformed lines and their memcached error strings,
// the key and value limits, base64, numbers, exptime, the UDP frame
// header and reply fragmentation, and the binary protocol's packet header.
// Pure functions: no sockets, no index (tests/memcached/memcached_test.cc
// runs the commands against a real engine).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/memcached.h"

namespace ferrite::proto {
namespace {

TEST(McParse, IncompleteRequestsWaitForMoreBytes) {
  mc::Request r;
  EXPECT_EQ(mc::parse_request("get a", &r).status, mc::Parse::kNeedMore);
  EXPECT_EQ(mc::parse_request("set a 0 0 5\r\nhel", &r).status, mc::Parse::kNeedMore);
  EXPECT_EQ(mc::parse_request("set a 0 0 5\r\nhello\r", &r).status, mc::Parse::kNeedMore);
  auto res = mc::parse_request("set a 3 0 5\r\nhello\r\nget a\r\n", &r);
  ASSERT_EQ(res.status, mc::Parse::kOk);
  EXPECT_EQ(res.consumed, 20u);
  EXPECT_EQ(r.key, "a");
  EXPECT_EQ(r.data, "hello");
  EXPECT_EQ(r.client_flags, 3u);
}

// Lines longer than kMaxLineLen: proto/memcached_get_line_test.cc.

TEST(McParse, TooLargeValueIsSwallowed) {
  mc::Request r;
  auto res = mc::parse_request("set a 0 0 2000000\r\nxx", &r);
  EXPECT_EQ(res.status, mc::Parse::kError);
  EXPECT_EQ(res.error, "SERVER_ERROR object too large for cache");
  EXPECT_EQ(res.consumed, 19u);
  EXPECT_EQ(res.swallow, 2000002u);
}

TEST(McParse, Base64AndNumbers) {
  char buf[16];
  std::size_t n = 0;
  ASSERT_TRUE(mc::base64_decode("YTI=", buf, sizeof(buf), &n));
  EXPECT_EQ(std::string_view(buf, n), "a2");
  EXPECT_FALSE(mc::base64_decode("a2", buf, sizeof(buf), &n));
  EXPECT_FALSE(mc::base64_decode("YT=I", buf, sizeof(buf), &n));
  std::string e;
  mc::base64_encode("\x01\xff hello", &e);
  ASSERT_TRUE(mc::base64_decode(e, buf, sizeof(buf), &n));
  EXPECT_EQ(std::string_view(buf, n), "\x01\xff hello");
  uint64_t v = 0;
  EXPECT_TRUE(mc::parse_argument_u64("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(mc::parse_argument_u64("18446744073709551616", &v));
  EXPECT_FALSE(mc::parse_argument_u64("-1", &v));
  EXPECT_FALSE(mc::parse_argument_u64("", &v));
  EXPECT_EQ(mc::absolute_exptime(0, 1000), 0u);
  EXPECT_EQ(mc::absolute_exptime(-1, 1000), 1u);
  EXPECT_EQ(mc::absolute_exptime(100, 1000), 1100u);
  EXPECT_EQ(mc::absolute_exptime(30 * 24 * 3600 + 1, 1000), 30u * 24 * 3600 + 1);
}

TEST(McParse, UdpHeaderAndFragments) {
  uint8_t b[8];
  mc::encode_udp_header({0x1234, 2, 3, 0x0100}, b);
  mc::UdpHeader h;
  ASSERT_TRUE(mc::decode_udp_header(std::string_view(reinterpret_cast<char*>(b), 8), &h));
  EXPECT_EQ(h.request_id, 0x1234);
  EXPECT_EQ(h.seq, 2);
  EXPECT_EQ(h.count, 3);
  EXPECT_EQ(h.reserved, 0x0100);
  EXPECT_FALSE(mc::decode_udp_header("1234567", &h));
  std::string reply(3001, 'x'), scratch, joined;
  std::vector<mc::UdpHeader> hs;
  EXPECT_EQ(mc::udp_fragment(7, reply, 1400, &scratch, [&](std::string_view d) {
              mc::UdpHeader x;
              ASSERT_TRUE(mc::decode_udp_header(d, &x));
              EXPECT_LE(d.size(), 1408u);
              hs.push_back(x);
              joined += d.substr(8);
            }),
            3u);
  ASSERT_EQ(hs.size(), 3u);
  for (uint16_t i = 0; i < 3; ++i) {
    EXPECT_EQ(hs[i].request_id, 7);
    EXPECT_EQ(hs[i].seq, i);
    EXPECT_EQ(hs[i].count, 3);
    EXPECT_EQ(hs[i].reserved, 0);
  }
  EXPECT_EQ(joined, reply);
}


mc::ParseResult parse(std::string_view in, mc::Request* r) { return mc::parse_request(in, r); }

TEST(McParse, StorageCommandsFillTheRequest) {
  mc::Request r;
  auto res = parse("cas k 4294967301 -1 3 99 noreply\r\nabc\r\n", &r);
  ASSERT_EQ(res.status, mc::Parse::kOk);
  EXPECT_EQ(res.consumed, 39u);
  EXPECT_EQ(r.cmd, mc::Cmd::kCas);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.client_flags, 5u) << "flags keep their low 32 bits";
  EXPECT_EQ(r.exptime, -1);
  EXPECT_EQ(r.data, "abc");
  EXPECT_TRUE(r.has_cas);
  EXPECT_EQ(r.cas, 99u);
  EXPECT_TRUE(r.noreply);
  for (const char* name : {"set", "add", "replace", "append", "prepend"}) {
    const std::string line = std::string(name) + " key 0 0 0\r\n\r\n";
    ASSERT_EQ(parse(line, &r).status, mc::Parse::kOk) << name;
    EXPECT_EQ(mc::cmd_name(r.cmd), name);
    EXPECT_TRUE(mc::is_storage(r.cmd));
    EXPECT_TRUE(r.data.empty());
    EXPECT_FALSE(r.noreply);
  }
  // A line ending in a bare "\n" is accepted too.
  ASSERT_EQ(parse("set a 0 0 1\nx\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.data, "x");
}

TEST(McParse, MalformedStorageLines) {
  mc::Request r;
  struct Case {
    std::string in;
    std::string_view error;
    std::size_t consumed, swallow;
  };
  const std::string long_key(mc::kMaxKeyLen + 1, 'k');
  for (const Case& c : std::vector<Case>{
           {"set a 0 0\r\n", "ERROR", 11, 0},
           {"set a 0 0 1 noreply extra\r\n", "ERROR", 27, 0},
           {"set a x 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format", 13, 0},
           {"set a 0 0 -1\r\n", "CLIENT_ERROR bad command line format", 14, 0},
           {"set " + long_key + " 0 0 1\r\n", "CLIENT_ERROR bad command line format", 4 + long_key.size() + 8, 0},
           {"cas a 0 0 1 notanumber\r\n", "CLIENT_ERROR bad command line format", 24, 0},
           {"set a 0 0 3\r\nabcd\r\n", "CLIENT_ERROR bad data chunk", 18, 0},
       }) {
    const auto res = parse(c.in, &r);
    EXPECT_EQ(res.status, mc::Parse::kError) << c.in;
    EXPECT_EQ(res.error, c.error) << c.in;
    EXPECT_EQ(res.consumed, c.consumed) << c.in;
    EXPECT_EQ(res.swallow, c.swallow) << c.in;
    EXPECT_FALSE(res.close) << c.in;
  }
  // Unknown commands and empty lines: "ERROR", the line consumed.
  for (const char* in : {"bogus\r\n", "\r\n", "   \r\n", "GET a\r\n"}) {
    const auto res = parse(in, &r);
    EXPECT_EQ(res.status, mc::Parse::kError) << in;
    EXPECT_EQ(res.error, "ERROR") << in;
    EXPECT_EQ(res.consumed, std::string_view(in).size()) << in;
  }
  // A refused classic command ending in "noreply" is quiet.
  EXPECT_TRUE(parse("incr a x noreply\r\n", &r).quiet);
  EXPECT_FALSE(parse("incr a x\r\n", &r).quiet);
}

TEST(McParse, GetFamilyKeys) {
  mc::Request r;
  ASSERT_EQ(parse("gets a  bb   ccc\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.cmd, mc::Cmd::kGets);
  std::vector<std::string> keys;
  mc::KeyIter it(r.keys);
  std::string_view k;
  while (it.next(&k)) keys.emplace_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_TRUE(it.done());
  ASSERT_EQ(parse("gat 60 x y\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.exptime, 60);
  EXPECT_EQ(r.keys, "x y");
  // More keys than the tokenizer keeps: all of them are in keys.
  std::string many = "get";
  for (int i = 0; i < 100; ++i) many += " k" + std::to_string(i);
  many += "\r\n";  // r's views point into it
  ASSERT_EQ(parse(many, &r).status, mc::Parse::kOk);
  std::size_t n = 0;
  for (mc::KeyIter all(r.keys); all.next(&k);) ++n;
  EXPECT_EQ(n, 100u);
  EXPECT_EQ(parse("get\r\n", &r).error, "ERROR");
  EXPECT_EQ(parse("gat x k\r\n", &r).error, "CLIENT_ERROR invalid exptime argument");
  EXPECT_EQ(parse("get a " + std::string(mc::kMaxKeyLen + 1, 'k') + "\r\n", &r).error,
            "CLIENT_ERROR bad command line format");
  EXPECT_EQ(parse("get " + std::string(mc::kMaxKeyLen, 'k') + "\r\n", &r).status, mc::Parse::kOk);
}

TEST(McParse, OtherClassicCommands) {
  mc::Request r;
  ASSERT_EQ(parse("incr n 18446744073709551615\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.delta, UINT64_MAX);
  EXPECT_EQ(parse("decr n -1\r\n", &r).error, "CLIENT_ERROR invalid numeric delta argument");
  ASSERT_EQ(parse("touch k -5 noreply\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.exptime, -5);
  EXPECT_TRUE(r.noreply);
  EXPECT_EQ(parse("touch k soon\r\n", &r).error, "CLIENT_ERROR invalid exptime argument");
  ASSERT_EQ(parse("delete k 0 noreply\r\n", &r).status, mc::Parse::kOk);
  EXPECT_TRUE(r.noreply);
  EXPECT_EQ(parse("delete k 5\r\n", &r).error,
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
  ASSERT_EQ(parse("flush_all 30\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.number, 30);
  ASSERT_EQ(parse("stats items\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.stats_arg, "items");
  ASSERT_EQ(parse("verbosity 1\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.number, 1);
  for (const char* in : {"version\r\n", "quit\r\n", "mn\r\n"}) EXPECT_EQ(parse(in, &r).status, mc::Parse::kOk) << in;
  // More tokens than the tokenizer keeps on a non-get line: memcached 1.6.18
  // answers ERROR (a wrong token count).
  std::string many = "delete k";
  for (int i = 0; i < 40; ++i) many += " x";
  EXPECT_EQ(parse(many + "\r\n", &r).error, "ERROR");
}

TEST(McParse, MetaCommandsAndTheirFlags) {
  mc::Request r;
  ASSERT_EQ(parse("ms key 2 T30 F7 C12 MA Oop q\r\nhi\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.cmd, mc::Cmd::kMetaSet);
  EXPECT_EQ(r.key, "key");
  EXPECT_EQ(r.data, "hi");
  EXPECT_TRUE(r.has_exptime);
  EXPECT_EQ(r.exptime, 30);
  EXPECT_EQ(r.client_flags, 7u);
  EXPECT_TRUE(r.has_cas);
  EXPECT_EQ(r.cas, 12u);
  EXPECT_EQ(r.mode, mc::MetaMode::kAppend);
  ASSERT_NE(r.find('O'), nullptr);
  EXPECT_EQ(r.find('O')->token, "op");
  EXPECT_TRUE(r.has('q'));
  EXPECT_FALSE(r.has('k'));
  ASSERT_EQ(parse("ma n MD D5 J10 N60\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.mode, mc::MetaMode::kDecr);
  EXPECT_EQ(r.delta, 5u);
  EXPECT_EQ(r.initial, 10u);
  EXPECT_TRUE(r.has_vivify);
  EXPECT_EQ(r.vivify_ttl, 60);
  ASSERT_EQ(parse("mg a2V5 b v R30\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.raw_key, "a2V5");
  EXPECT_EQ(r.key, "key") << "base64-decoded";
  EXPECT_TRUE(r.has_recache);
  // Errors, with memcached's strings.
  EXPECT_EQ(parse("mg k v v\r\n", &r).error, "CLIENT_ERROR duplicate flag");
  EXPECT_EQ(parse("mg k !\r\n", &r).error, "CLIENT_ERROR invalid flag");
  EXPECT_EQ(parse("mg k E5\r\n", &r).error, "CLIENT_ERROR invalid flag") << "E is refused";
  EXPECT_EQ(parse("md k Z\r\n", &r).error, "CLIENT_ERROR invalid or duplicate flag");
  EXPECT_EQ(parse("mg k Tsoon\r\n", &r).error, "CLIENT_ERROR bad token in command line format");
  EXPECT_EQ(parse("mg k O" + std::string(mc::kMaxOpaqueLen + 1, 'o') + "\r\n", &r).error,
            "CLIENT_ERROR opaque token too long");
  EXPECT_EQ(parse("mg !!!! b\r\n", &r).error, "CLIENT_ERROR error decoding key");
  EXPECT_EQ(parse("ma k MX\r\n", &r).error, "CLIENT_ERROR invalid mode for ma M token");
  EXPECT_EQ(parse("mg\r\n", &r).error, "ERROR");
  // A refused ms swallows its data block.
  auto res = parse("ms k 5 MZ\r\nhello\r\n", &r);
  EXPECT_EQ(res.error, "CLIENT_ERROR invalid mode for ms M token");
  EXPECT_EQ(res.consumed, 11u);
  EXPECT_EQ(res.swallow, 7u);
  res = parse("ms k 2000000 T1\r\n", &r);
  EXPECT_EQ(res.error, "SERVER_ERROR object too large for cache");
  EXPECT_EQ(res.swallow, 2000002u);
  // 20 tokens or more: memcached 1.6.18's error, before the flags are read.
  std::string flags = "mg k";
  for (std::size_t i = 0; i <= mc::kMaxMetaFlags; ++i) flags += " v";
  EXPECT_EQ(parse(flags + "\r\n", &r).error, "CLIENT_ERROR options flags are too long");
}

TEST(McParse, TooLargeCarriesTheKeyAndHugeLengthsClose) {
  mc::Request r;
  auto res = parse("set k 7 0 2000000\r\n", &r);
  EXPECT_TRUE(res.too_large);
  EXPECT_EQ(r.cmd, mc::Cmd::kSet);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(res.swallow, 2000002u);
  res = parse("ms YTI= 2000000 b MA\r\n", &r);
  EXPECT_TRUE(res.too_large);
  EXPECT_EQ(r.key, "a2") << "decoded";
  EXPECT_EQ(r.mode, mc::MetaMode::kAppend);
  // Up to kMaxSwallow swallowed; beyond, the connection closes.
  res = parse("set k 0 0 " + std::to_string(mc::kMaxSwallow) + "\r\n", &r);
  EXPECT_EQ(res.swallow, mc::kMaxSwallow + 2);
  EXPECT_FALSE(res.close);
  res = parse("set k 0 0 " + std::to_string(mc::kMaxSwallow + 1) + "\r\n", &r);
  EXPECT_EQ(res.error, "SERVER_ERROR object too large for cache");
  EXPECT_EQ(res.swallow, 0u);
  EXPECT_TRUE(res.close);
  EXPECT_FALSE(parse("set k 0 0 5\r\n", &r).too_large);
}

TEST(McParse, HttpLinesAreFlaggedNotAnswered) {
  mc::Request r;
  for (const char* in : {"GET / HTTP/1.0\r\n", "DELETE HTTP/1.1\r\n", "HTTP/1.1\r\n"}) {
    const auto res = parse(in, &r);
    EXPECT_EQ(res.status, mc::Parse::kError) << in;
    EXPECT_TRUE(res.http && res.close) << in;
    EXPECT_EQ(res.error, "") << in;
    EXPECT_EQ(res.consumed, std::string_view(in).size()) << in;
  }
  for (const char* in : {"X HTTP/1.1\r\n", "gxt / HTTP/1.0\r\n", "lru HTTP/1.0\r\n", "POST / http/1.1\r\n"}) {
    EXPECT_FALSE(parse(in, &r).http) << in;
  }
}

// Classic commands read numbers as memcached's strtol/strtoul do.
TEST(McParse, ClassicNumbersFollowMemcached) {
  mc::Request r;
  ASSERT_EQ(parse("set k 4294967297 4294967296 +2\r\nab\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.client_flags, 1u) << "low 32 bits";
  EXPECT_EQ(r.exptime, 0) << "low 32 bits of the long";
  ASSERT_EQ(parse("set k -0 2147483648 \t2\t\r\nab\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.exptime, INT32_MIN);
  EXPECT_EQ(r.data, "ab");
  ASSERT_EQ(parse("cas k 0 0 2 18446744073709551615\r\nab\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.cas, UINT64_MAX);
  ASSERT_EQ(parse("incr k +7\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.delta, 7u);
  ASSERT_EQ(parse("verbosity 4294967297\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.number, 1);
  ASSERT_EQ(parse("flush_all 7 x\r\n", &r).status, mc::Parse::kOk);
  EXPECT_EQ(r.number, 7) << "read whenever an argument is there";
  for (const char* in : {"set k 0 0 1x\r\n", "set k -1 0 1\r\n", "set k 0 9223372036854775808 1\r\n",
                         "set k 0 0 2147483646\r\n", "set k 0 0 -4294967292\r\n", "set k 0 0 4294967300\r\n"}) {
    const auto res = parse(in, &r);
    EXPECT_EQ(res.error, "CLIENT_ERROR bad command line format") << in;
    EXPECT_EQ(res.swallow, 0u) << in;
  }
}

TEST(McParse, SignedNumbersAndBase64Capacity) {
  int64_t v = 0;
  EXPECT_TRUE(mc::parse_argument_i64("-9223372036854775807", &v));
  EXPECT_EQ(v, -INT64_MAX);
  EXPECT_TRUE(mc::parse_argument_i64("+12", &v));
  EXPECT_EQ(v, 12);
  EXPECT_FALSE(mc::parse_argument_i64("9223372036854775808", &v));
  EXPECT_FALSE(mc::parse_argument_i64("-", &v));
  EXPECT_FALSE(mc::parse_argument_i64("1 ", &v));
  char out[2];
  std::size_t n = 0;
  EXPECT_FALSE(mc::base64_decode("YWJj", out, sizeof(out), &n)) << "three bytes do not fit in two";
  EXPECT_TRUE(mc::base64_decode("YWI=", out, sizeof(out), &n));
  EXPECT_EQ(n, 2u);
  // Every length round-trips through encode and decode.
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t len = 0; len <= 7; ++len) {
    std::string enc;
    mc::base64_encode(all.substr(250 - len * 30, len), &enc);
    EXPECT_EQ(enc.size() % 4, 0u);
    char buf[16];
    ASSERT_TRUE(mc::base64_decode(enc, buf, sizeof(buf), &n)) << enc;
    EXPECT_EQ(std::string(buf, n), all.substr(250 - len * 30, len));
  }
}

std::string bin_packet(uint8_t magic, uint16_t key_len, uint8_t extras_len, uint32_t body_len, std::string_view body) {
  mc::BinHeader h;
  h.magic = magic;
  h.opcode = 0x01;
  h.key_len = key_len;
  h.extras_len = extras_len;
  h.body_len = body_len;
  h.opaque = 0xa1b2c3d4;
  h.cas = 0x0102030405060708ull;
  std::string out;
  mc::append_binary_header(h, &out);
  out += body;
  return out;
}

TEST(McBinary, HeaderRoundTripsAndLengthsAreChecked) {
  const std::string p = bin_packet(mc::kBinRequestMagic, 3, 8, 16, "EEEEEEEEkeyvalue");
  ASSERT_EQ(p.size(), mc::kBinHeaderSize + 16);
  mc::BinRequest r;
  std::size_t used = 0;
  const std::string in = p + "next";  // r views into it
  ASSERT_EQ(mc::parse_binary(in, 1024, &r, &used), mc::BinParse::kOk);
  EXPECT_EQ(used, p.size());
  EXPECT_EQ(r.h.opcode, 0x01);
  EXPECT_EQ(r.h.opaque, 0xa1b2c3d4u);
  EXPECT_EQ(r.h.cas, 0x0102030405060708ull);
  EXPECT_EQ(r.extras, "EEEEEEEE");
  EXPECT_EQ(r.key, "key");
  EXPECT_EQ(r.value, "value");
  for (std::size_t cut = 1; cut < p.size(); ++cut) {
    EXPECT_EQ(mc::parse_binary(p.substr(0, cut), 1024, &r, &used), mc::BinParse::kNeedMore) << cut;
  }
  EXPECT_EQ(mc::parse_binary("", 1024, &r, &used), mc::BinParse::kNeedMore);
  EXPECT_EQ(mc::parse_binary(bin_packet(mc::kBinResponseMagic, 3, 8, 16, "EEEEEEEEkeyvalue"), 1024, &r, &used),
            mc::BinParse::kBad) << "a response magic";
  // A body beyond max_body is framed: extras and key decoded, the value left
  // to the caller (memcached answers "too large" and swallows it).
  ASSERT_EQ(mc::parse_binary(p, 15, &r, &used), mc::BinParse::kTooLarge) << "body beyond max_body";
  EXPECT_EQ(used, mc::kBinHeaderSize + 11);
  EXPECT_EQ(r.extras, "EEEEEEEE");
  EXPECT_EQ(r.key, "key");
  EXPECT_EQ(r.value, "");
  EXPECT_EQ(mc::parse_binary(p.substr(0, mc::kBinHeaderSize + 10), 15, &r, &used), mc::BinParse::kNeedMore)
      << "the key is not all there";
  EXPECT_EQ(mc::parse_binary(bin_packet(mc::kBinRequestMagic, 9, 8, 16, ""), 1024, &r, &used), mc::BinParse::kBad)
      << "key and extras longer than the body";
  EXPECT_EQ(mc::parse_binary(bin_packet(mc::kBinRequestMagic, mc::kMaxKeyLen + 1, 0, 300, ""), 1024, &r, &used),
            mc::BinParse::kBad) << "key beyond 250";
}
}  // namespace
}  // namespace ferrite::proto
