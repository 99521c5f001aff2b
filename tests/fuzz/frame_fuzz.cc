// Fuzz body for net/frame.h (see frame_fuzz.h).
#include "tests/fuzz/frame_fuzz.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "net/frame.h"

namespace ferrite::fuzz {

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

void frame_one_input(const uint8_t* data, std::size_t size) {
  using namespace ferrite::net::frame;
  Local me;
  me.mac = {0x02, 0, 0, 0, 0, 1};
  me.ip = 0x0100000a;    // 10.0.0.1 in network order
  me.port = 0x2f2c;      // 11311 in network order
  for (Csum ip : {Csum::kUnknown, Csum::kGood, Csum::kBad}) {
    for (Csum l4 : {Csum::kUnknown, Csum::kGood, Csum::kBad}) {
      std::vector<uint8_t> f(data, data + size);
      // Frames addressed to us reach the deeper layers more often.
      if (size >= 6 && (data[0] & 1) == 0) std::memcpy(f.data(), me.mac.data(), 6);
      const Parsed p = parse(f.data(), f.size(), me, ip, l4);
      switch (p.kind) {
        case Kind::kUdp:
          check(p.drop == Drop::kNone);
          check(p.payload_off >= kUdpHeaders && p.payload_off + p.payload_len <= f.size());
          break;
        case Kind::kReply:
          check(p.reply_len >= kEthHeader + 28 && p.reply_len <= f.size());
          // The reply is to the sender, from us, and parses as nothing we'd answer again.
          check(std::memcmp(f.data() + 6, me.mac.data(), 6) == 0);
          break;
        case Kind::kDrop:
          check(p.drop != Drop::kNone && p.drop < Drop::kCount);
          break;
      }
    }
  }
}

}  // namespace ferrite::fuzz
