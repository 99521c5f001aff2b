// memcached parser fuzz body (see memcached_fuzz.h).
#include "tests/fuzz/memcached_fuzz.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/memcached.h"

namespace ferrite::fuzz {
namespace {

namespace mc = proto::mc;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Consumes a whole stream; returns the number of requests parsed.
std::size_t drain(std::string_view in) {
  std::size_t n = 0;
  mc::Request r;
  while (!in.empty()) {
    const mc::ParseResult pr = mc::parse_request(in, &r);
    if (pr.status == mc::Parse::kNeedMore) {
      check(pr.consumed == 0);
      break;
    }
    check(pr.consumed > 0 && pr.consumed <= in.size());
    if (pr.status == mc::Parse::kOk) {
      check(inside(r.raw_key, in) && inside(r.data, in) && inside(r.keys, in));
      check(r.key.size() <= mc::kMaxKeyLen && r.data.size() <= mc::kMaxValueLen);
      check(r.nflags <= mc::kMaxMetaFlags);
      if (mc::is_storage(r.cmd) || r.cmd == mc::Cmd::kMetaSet) check(!r.key.empty());
      mc::KeyIter it(r.keys);
      std::string_view k;
      while (it.next(&k)) check(!k.empty() && k.size() <= mc::kMaxKeyLen && k.find(' ') == std::string_view::npos);
    } else {
      check(pr.http ? pr.error.empty() && pr.close : !pr.error.empty());
      check(pr.swallow <= mc::kMaxSwallow + 2 && (!pr.too_large || !r.key.empty()));
    }
    in.remove_prefix(pr.consumed);
    in.remove_prefix(std::min(pr.swallow, in.size()));
    if (pr.close) break;
    ++n;
  }
  return n;
}

}  // namespace

void memcached_one_input(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  drain(in);
  // A prefix must never yield more than the whole stream agrees with:
  // parsing a prefix either waits or gives the same first request.
  if (size > 1) {
    const std::size_t cut = 1 + data[0] % (size - 1);
    mc::Request a, b;
    const mc::ParseResult whole = mc::parse_request(in, &a);
    const mc::ParseResult part = mc::parse_request(in.substr(0, cut), &b);
    if (part.status == mc::Parse::kOk) {
      check(whole.status == mc::Parse::kOk && whole.consumed == part.consumed);
    }
  }
  // The binary protocol framing: a packet never claims bytes that are not there.
  {
    std::string_view rest = in;
    mc::BinRequest br;
    std::size_t used = 0;
    for (;;) {
      const mc::BinParse st = mc::parse_binary(rest, 64, &br, &used);
      if (st != mc::BinParse::kOk && st != mc::BinParse::kTooLarge) break;
      check(used >= mc::kBinHeaderSize && used <= rest.size());
      check(br.extras.size() + br.key.size() + br.value.size() + mc::kBinHeaderSize == used);
      check(inside(br.key, rest) && inside(br.value, rest) && br.key.size() <= mc::kMaxKeyLen);
      // Too large: only extras and key are taken, the rest of the body is still to come.
      check(st == mc::BinParse::kOk ? used == mc::kBinHeaderSize + br.h.body_len
                                    : br.value.empty() && br.h.body_len > 64);
      rest.remove_prefix(used);
      if (st == mc::BinParse::kTooLarge) break;
    }
  }
  mc::UdpHeader h;
  if (mc::decode_udp_header(in, &h)) drain(in.substr(mc::kUdpHeaderSize));
  std::string b64;
  mc::base64_encode(in.substr(0, std::min<std::size_t>(in.size(), 180)), &b64);
  char buf[256];
  std::size_t n = 0;
  check(mc::base64_decode(b64, buf, sizeof(buf), &n) && std::string_view(buf, n) == in.substr(0, std::min<std::size_t>(in.size(), 180)));
  (void)mc::base64_decode(in, buf, sizeof(buf), &n);
}

}  // namespace ferrite::fuzz
