// Ketama consistent hashing, as libmemcached computes it, so a Ferrite
// client and a memcached client (or twemproxy with ketama) place every key
// on the same server.
//
//   Ring ring({"10.0.0.1:11311", "10.0.0.2:11311"});
//   const std::string& server = ring.server_for("user:42");
//
// Points: for each server, 40 MD5 digests of "host:port-i" (i = 0..39; the
// ":port" part is omitted when port is memcached's default 11211), each digest
// giving 4 points of 32 bits, 160 points a server. A key maps to the first
// point >= the first 4 bytes (little-endian) of MD5(key), wrapping around.
//
// Thread safety: immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferrite::client {

std::array<uint8_t, 16> md5(std::string_view data) noexcept;

class KetamaRing {
 public:
  explicit KetamaRing(std::vector<std::string> servers);  // "host:port" each
  std::size_t server_index(std::string_view key) const noexcept;
  const std::string& server_for(std::string_view key) const noexcept { return servers_[server_index(key)]; }
  const std::vector<std::string>& servers() const noexcept { return servers_; }

 private:
  struct Point {
    uint32_t hash;
    uint32_t server;
  };
  std::vector<std::string> servers_;
  std::vector<Point> points_;  // sorted by hash
};

}  // namespace ferrite::client
