// KetamaRing and an MD5 written from RFC 1321 (see ketama.h).
#include "client/ketama.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/endian.h"

namespace ferrite::client {
namespace {

constexpr uint32_t kS[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9,  14, 20, 5, 9,
                             14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                             4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

// K[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4.
const std::array<uint32_t, 64>& k_table() {
  static const std::array<uint32_t, 64> k = [] {
    std::array<uint32_t, 64> t{};
    for (int i = 0; i < 64; ++i) {
      t[static_cast<std::size_t>(i)] = static_cast<uint32_t>(static_cast<uint64_t>(4294967296.0 * std::abs(std::sin(i + 1.0))));
    }
    return t;
  }();
  return k;
}

uint32_t rotl(uint32_t x, uint32_t c) { return (x << c) | (x >> (32 - c)); }

}  // namespace

std::array<uint8_t, 16> md5(std::string_view data) noexcept {
  const auto& K = k_table();
  uint32_t a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
  std::vector<uint8_t> msg(data.begin(), data.end());
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  msg.resize(msg.size() + 8);
  store_le64(msg.data() + msg.size() - 8, bits);
  for (std::size_t off = 0; off < msg.size(); off += 64) {
    uint32_t m[16];
    for (int i = 0; i < 16; ++i) {
      m[i] = load_le32(&msg[off + static_cast<std::size_t>(i) * 4]);
    }
    uint32_t a = a0, b = b0, c = c0, d = d0;
    for (uint32_t i = 0; i < 64; ++i) {
      uint32_t f, g;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) % 16;
      }
      f = f + a + K[i] + m[g];
      a = d;
      d = c;
      c = b;
      b = b + rotl(f, kS[i]);
    }
    a0 += a;
    b0 += b;
    c0 += c;
    d0 += d;
  }
  std::array<uint8_t, 16> out{};
  const uint32_t words[4] = {a0, b0, c0, d0};
  for (std::size_t w = 0; w < 4; ++w) store_le32(out.data() + w * 4, words[w]);
  return out;
}

KetamaRing::KetamaRing(std::vector<std::string> servers) : servers_(std::move(servers)) {
  for (uint32_t s = 0; s < servers_.size(); ++s) {
    std::string host = servers_[s];
    std::string label = host;
    // libmemcached omits the port when it is memcached's default.
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.substr(colon + 1) == "11211") {
      label = host.substr(0, colon);
    }
    for (int i = 0; i < 40; ++i) {
      const auto d = md5(label + "-" + std::to_string(i));
      for (int a = 0; a < 4; ++a) {
        const uint32_t h = load_le32(d.data() + a * 4);
        points_.push_back({h, s});
      }
    }
  }
  std::sort(points_.begin(), points_.end(), [](const Point& x, const Point& y) { return x.hash < y.hash; });
}

std::size_t KetamaRing::server_index(std::string_view key) const noexcept {
  if (points_.empty()) return 0;
  const auto d = md5(key);
  const uint32_t h = load_le32(d.data());
  auto it = std::lower_bound(points_.begin(), points_.end(), h, [](const Point& p, uint32_t v) { return p.hash < v; });
  if (it == points_.end()) it = points_.begin();
  return it->server;
}

}  // namespace ferrite::client
