// memcached's UDP frame header, the one definition every side uses (the
// server's UDP handler, ferrite-bench, dpdk_loadgen, the tests): each
// datagram starts with 8 bytes, four big-endian u16
//   request id | sequence number | datagram count | reserved
// then text protocol bytes. A request fits one datagram; a reply may span
// several (seq 0..count-1), each carrying at most kUdpMaxPayload bytes.
//
// Thread safety: stateless functions over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/endian.h"

namespace ferrite::proto::mc {

inline constexpr std::size_t kUdpHeaderSize = 8;
inline constexpr std::size_t kUdpMaxPayload = 1400;  // reply bytes per datagram after the header (memcached's)

struct UdpHeader {
  uint16_t request_id = 0;
  uint16_t seq = 0;
  uint16_t count = 1;
  uint16_t reserved = 0;
};

// Writes kUdpHeaderSize bytes at out.
inline void encode_udp_header(const UdpHeader& h, uint8_t* out) noexcept {
  store_be16(out, h.request_id);
  store_be16(out + 2, h.seq);
  store_be16(out + 4, h.count);
  store_be16(out + 6, h.reserved);
}

// Reads the header of a datagram; false only if it is shorter than one.
// No field is checked (the server answers whatever seq/count a request has).
inline bool decode_udp_header(std::string_view dgram, UdpHeader* h) noexcept {
  if (dgram.size() < kUdpHeaderSize) return false;
  const char* p = dgram.data();
  h->request_id = load_be16(p);
  h->seq = load_be16(p + 2);
  h->count = load_be16(p + 4);
  h->reserved = load_be16(p + 6);
  return true;
}

// The reply side: also false if count is 0 or seq >= count; *payload is the
// bytes after the header. The reserved field is reported, never checked.
inline bool decode_udp_reply(std::span<const uint8_t> dgram, UdpHeader* h, std::span<const uint8_t>* payload) noexcept {
  if (!decode_udp_header(std::string_view(reinterpret_cast<const char*>(dgram.data()), dgram.size()), h)) return false;
  if (h->count == 0 || h->seq >= h->count) return false;
  *payload = dgram.subspan(kUdpHeaderSize);
  return true;
}

// Cuts a reply into datagrams of at most kUdpHeaderSize + max_payload
// bytes, each with the request id and seq/count filled in, and calls
// emit(span of bytes) for each. An empty reply emits nothing. Returns the
// number of datagrams, 0 if more than 65535 would be needed.
template <typename Emit>
std::size_t udp_fragment(uint16_t request_id, std::string_view reply, std::size_t max_payload, std::string* scratch,
                         Emit&& emit) {
  if (reply.empty() || max_payload == 0) return 0;
  const std::size_t n = (reply.size() + max_payload - 1) / max_payload;
  if (n > 65535) return 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = i * max_payload;
    const std::size_t len = reply.size() - off < max_payload ? reply.size() - off : max_payload;
    scratch->resize(kUdpHeaderSize + len);
    UdpHeader h{request_id, static_cast<uint16_t>(i), static_cast<uint16_t>(n), 0};
    encode_udp_header(h, reinterpret_cast<uint8_t*>(scratch->data()));
    scratch->replace(kUdpHeaderSize, len, reply.data() + off, len);
    emit(std::string_view(*scratch));
  }
  return n;
}

}  // namespace ferrite::proto::mc
