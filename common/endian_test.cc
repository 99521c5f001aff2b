// Unit tests of common/endian.h: byte layout of each width in both orders,
// unaligned access, and round trips.
#include "common/endian.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace ferrite {
namespace {

TEST(Endian, EachWidthInBothOrders) {
  // Big-endian puts the most significant byte first, little-endian last:
  // the value 0x0102...08 is 01 02 .. 08 one way and 08 07 .. 01 the other,
  // and each narrower value is the tail of that.
  const uint8_t be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const uint8_t le[8] = {8, 7, 6, 5, 4, 3, 2, 1};
  uint8_t b[8];
  store_be64(b, 0x0102030405060708ull);
  EXPECT_EQ(0, std::memcmp(b, be, 8));
  store_le64(b, 0x0102030405060708ull);
  EXPECT_EQ(0, std::memcmp(b, le, 8));
  store_be32(b, 0x05060708u);
  EXPECT_EQ(0, std::memcmp(b, be + 4, 4));
  store_le32(b, 0x01020304u);
  EXPECT_EQ(0, std::memcmp(b, le + 4, 4));
  store_be16(b, 0x0708);
  EXPECT_EQ(0, std::memcmp(b, be + 6, 2));
  store_le16(b, 0x0102);
  EXPECT_EQ(0, std::memcmp(b, le + 6, 2));
  EXPECT_EQ(load_be64(be), 0x0102030405060708ull);
  EXPECT_EQ(load_le64(le), 0x0102030405060708ull);
  EXPECT_EQ(load_be32(be), 0x01020304u);
  EXPECT_EQ(load_le32(le), 0x05060708u);
  EXPECT_EQ(load_be16(be), 0x0102);
  EXPECT_EQ(load_le16(le), 0x0708);
}

TEST(Endian, UnalignedAndCharBuffersRoundTrip) {
  std::mt19937_64 rng(7);
  char buf[32];
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = rng();
    const std::size_t off = static_cast<std::size_t>(rng() % 16);  // any alignment
    store_be64(buf + off, v);
    EXPECT_EQ(load_be64(buf + off), v);
    store_le64(buf + off, v);
    EXPECT_EQ(load_le64(buf + off), v);
    store_be32(buf + off, static_cast<uint32_t>(v));
    EXPECT_EQ(load_be32(buf + off), static_cast<uint32_t>(v));
    EXPECT_EQ(load_le32(buf + off), __builtin_bswap32(static_cast<uint32_t>(v)));  // the other order reads it swapped
    store_le16(buf + off, static_cast<uint16_t>(v));
    EXPECT_EQ(load_le16(buf + off), static_cast<uint16_t>(v));
    EXPECT_EQ(load_be16(buf + off), __builtin_bswap16(static_cast<uint16_t>(v)));
  }
}

}  // namespace
}  // namespace ferrite
