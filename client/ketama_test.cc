// MD5 against RFC 1321's test vectors; ketama placement: stable, spread,
// and moving about 1/(n+1) of the keys when a server is added.
#include "client/ketama.h"

#include <gtest/gtest.h>

#include <map>

namespace ferrite::client {
namespace {

std::string hex(const std::array<uint8_t, 16>& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += k[b >> 4];
    s += k[b & 15];
  }
  return s;
}

TEST(Md5, Rfc1321Vectors) {
  EXPECT_EQ(hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex(md5("a")), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(hex(md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hex(md5("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(hex(md5("abcdefghijklmnopqrstuvwxyz")), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(hex(md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Ketama, SpreadsKeysAndIsStable) {
  KetamaRing ring({"10.0.0.1:11311", "10.0.0.2:11311", "10.0.0.3:11311"});
  std::map<std::size_t, int> per;
  for (int i = 0; i < 30000; ++i) per[ring.server_index("key:" + std::to_string(i))]++;
  ASSERT_EQ(per.size(), 3u);
  for (auto& [s, n] : per) EXPECT_GT(n, 6000) << "server " << s << " got too few keys";
  KetamaRing again({"10.0.0.1:11311", "10.0.0.2:11311", "10.0.0.3:11311"});
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "key:" + std::to_string(i);
    EXPECT_EQ(ring.server_index(k), again.server_index(k));
  }
}

TEST(Ketama, AddingAServerMovesAFractionOfKeys) {
  KetamaRing three({"a:1", "b:1", "c:1"});
  KetamaRing four({"a:1", "b:1", "c:1", "d:1"});
  int moved = 0, to_new = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const std::string k = "k" + std::to_string(i);
    const auto s3 = three.server_for(k), s4 = four.server_for(k);
    if (s3 != s4) {
      ++moved;
      to_new += s4 == "d:1";
    }
  }
  EXPECT_EQ(moved, to_new) << "keys only move to the new server";
  EXPECT_GT(moved, n / 8);
  EXPECT_LT(moved, n / 2);
}

}  // namespace
}  // namespace ferrite::client
