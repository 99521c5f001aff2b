// memcached reply decoder fuzz body (see memcache_reply_fuzz.h).
#include "tests/fuzz/memcache_reply_fuzz.h"

#include <cstdlib>
#include <string_view>

#include "perf/bench/memcache_udp.h"

namespace ferrite::fuzz {

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}
}  // namespace

void memcache_reply_one_input(const uint8_t* data, std::size_t size) {
  using namespace ferrite::bench;
  const std::span<const uint8_t> d(data, size);
  proto::mc::UdpHeader f;
  std::span<const uint8_t> payload;
  const bool framed = proto::mc::decode_udp_reply(d, &f, &payload);
  if (framed) {
    check(size >= proto::mc::kUdpHeaderSize && f.count >= 1 && f.seq < f.count &&
          payload.size() == size - proto::mc::kUdpHeaderSize);
    mc::ReplyAssembler a;
    const bool whole = a.add(f, payload);
    check(whole == (f.count == 1));
    check(!a.add(f, payload));  // the same datagram again is a duplicate
  }
  // Every byte string is parsed as reply text too, not just framed ones.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  mc::Reply r;
  const mc::ReplyKind k = mc::parse_reply(text, &r);
  check(k == r.kind);
  if (k == mc::ReplyKind::kHit) {
    check(!r.key.empty() && inside(r.key, text) && inside(r.value, text));
    check(text.ends_with("\r\nEND\r\n"));
  }
  if (k == mc::ReplyKind::kMiss) check(text == "END\r\n");
  if (k == mc::ReplyKind::kStored) check(text == "STORED\r\n");
}

}  // namespace ferrite::fuzz
