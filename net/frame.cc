// Frame parsing and building for the DPDK backend (see frame.h).
//
// Checksums are summed over native-order 16-bit words and stored natively:
// the one's-complement sum is byte-order independent (RFC 1071, 2.B), so the
// bytes in the frame come out right on any host.
#include "net/frame.h"

#include <cstdio>
#include <cstring>

#include "common/endian.h"

namespace ferrite::net::frame {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;

inline uint32_t load32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store32(uint8_t* p, uint32_t v) noexcept { std::memcpy(p, &v, 4); }

// Adds bytes [p, p+n) to a running sum as native-order 16-bit words.
uint64_t add(uint64_t sum, const uint8_t* p, std::size_t n) noexcept {
  while (n >= 4) {
    sum += load32(p);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);  // the odd byte, padded with a zero byte after it
    sum += w;
  }
  return sum;
}

uint16_t fold(uint64_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint64_t pseudo(const uint8_t* ip, std::size_t udp_len) noexcept {
  uint8_t ph[12];
  std::memcpy(ph, ip + 12, 8);  // source and destination address
  ph[8] = 0;
  ph[9] = kProtoUdp;
  store_be16(ph + 10, static_cast<uint16_t>(udp_len));
  return add(0, ph, sizeof(ph));
}

Parsed drop(Parsed p, Drop d) noexcept {
  p.kind = Kind::kDrop;
  p.drop = d;
  return p;
}

bool is_broadcast(const uint8_t* m) noexcept {
  for (int i = 0; i < 6; ++i) {
    if (m[i] != 0xff) return false;
  }
  return true;
}

}  // namespace

const char* drop_name(Drop d) noexcept {
  switch (d) {
    case Drop::kNone: return "none";
    case Drop::kTruncated: return "truncated";
    case Drop::kUnknownEthertype: return "unknown_ethertype";
    case Drop::kNotForUs: return "not_for_us";
    case Drop::kFragment: return "fragment";
    case Drop::kBadIpChecksum: return "bad_ip_checksum";
    case Drop::kBadUdpChecksum: return "bad_udp_checksum";
    case Drop::kBadIcmpChecksum: return "bad_icmp_checksum";
    case Drop::kBadHeader: return "bad_header";
    case Drop::kUnknownProtocol: return "unknown_protocol";
    case Drop::kIgnored: return "ignored";
    case Drop::kCount: break;
  }
  return "?";
}

uint16_t ip_checksum(const uint8_t* ip, std::size_t len) noexcept {
  uint8_t h[60];
  std::memcpy(h, ip, len);
  h[10] = h[11] = 0;
  return static_cast<uint16_t>(~fold(add(0, h, len)));
}

bool udp_checksum_ok(const uint8_t* ip, const uint8_t* udp, std::size_t udp_len) noexcept {
  if (udp[6] == 0 && udp[7] == 0) return true;  // IPv4: sender did not compute one
  return fold(add(pseudo(ip, udp_len), udp, udp_len)) == 0xffff;
}

uint16_t udp_checksum(const uint8_t* ip, const uint8_t* udp, std::size_t udp_len) noexcept {
  uint64_t s = pseudo(ip, udp_len);
  s = add(s, udp, 6);  // ports and length; the checksum field counts as zero
  s = add(s, udp + 8, udp_len - 8);
  const uint16_t c = static_cast<uint16_t>(~fold(s));
  return c == 0 ? 0xffff : c;  // 0 on the wire means "no checksum"
}

Parsed parse(uint8_t* f, std::size_t len, const Local& me, Csum ip_csum, Csum l4_csum) noexcept {
  Parsed p;
  if (len < kEthHeader) return drop(p, Drop::kTruncated);
  const uint16_t type = load_be16(f + 12);
  const bool to_us = std::memcmp(f, me.mac.data(), 6) == 0;
  const bool bcast = is_broadcast(f);

  if (type == kEtherArp) {
    if (len < kEthHeader + 28) return drop(p, Drop::kTruncated);
    uint8_t* a = f + kEthHeader;
    if (load_be16(a) != 1 || load_be16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4) return drop(p, Drop::kBadHeader);
    if (!to_us && !bcast) return drop(p, Drop::kNotForUs);
    const uint16_t op = load_be16(a + 6);
    std::memcpy(p.src_mac.data(), a + 8, 6);
    p.src_ip = load32(a + 14);
    if (load32(a + 24) != me.ip) return drop(p, Drop::kNotForUs);
    p.learned = p.src_ip != 0;  // 0.0.0.0: an address probe, nothing to learn
    if (op != 1) return drop(p, Drop::kIgnored);  // a reply or gratuitous ARP: learned, no answer
    // Request for our address: answer in place.
    store_be16(a + 6, 2);
    std::memcpy(a + 18, a + 8, 10);         // target hw + ip := the asker's
    std::memcpy(a + 8, me.mac.data(), 6);   // sender hw := ours
    store32(a + 14, me.ip);                 // sender ip := ours
    std::memcpy(f, a + 18, 6);              // to the asker
    std::memcpy(f + 6, me.mac.data(), 6);
    p.kind = Kind::kReply;
    p.arp = true;
    p.reply_len = len;
    return p;
  }
  if (type != kEtherIpv4) return drop(p, Drop::kUnknownEthertype);
  if (!to_us && !bcast) return drop(p, Drop::kNotForUs);
  if (len < kEthHeader + kIpHeader) return drop(p, Drop::kTruncated);
  uint8_t* ip = f + kEthHeader;
  if ((ip[0] >> 4) != 4 || (ip[0] & 0xf) < 5) return drop(p, Drop::kBadHeader);
  const std::size_t hl = static_cast<std::size_t>(ip[0] & 0xf) * 4;
  const std::size_t tot = load_be16(ip + 2);
  if (len < kEthHeader + hl || tot < hl || kEthHeader + tot > len) return drop(p, Drop::kTruncated);
  if (ip_csum == Csum::kBad) return drop(p, Drop::kBadIpChecksum);
  if (ip_csum != Csum::kGood && fold(add(0, ip, hl)) != 0xffff) return drop(p, Drop::kBadIpChecksum);
  if (load32(ip + 16) != me.ip) return drop(p, Drop::kNotForUs);
  if ((load_be16(ip + 6) & 0x3fff) != 0) return drop(p, Drop::kFragment);
  std::memcpy(p.src_mac.data(), f + 6, 6);
  p.src_ip = load32(ip + 12);
  uint8_t* l4 = ip + hl;
  const std::size_t l4len = tot - hl;

  if (ip[9] == kProtoUdp) {
    if (l4len < kUdpHeader) return drop(p, Drop::kTruncated);
    const std::size_t ulen = load_be16(l4 + 4);
    if (ulen < kUdpHeader || ulen > l4len) return drop(p, Drop::kTruncated);
    uint16_t dport;
    std::memcpy(&dport, l4 + 2, 2);
    if (dport != me.port && (me.port2 == 0 || dport != me.port2)) return drop(p, Drop::kNotForUs);
    if (l4_csum == Csum::kBad && !(l4[6] == 0 && l4[7] == 0)) return drop(p, Drop::kBadUdpChecksum);
    if (l4_csum != Csum::kGood && !udp_checksum_ok(ip, l4, ulen)) return drop(p, Drop::kBadUdpChecksum);
    std::memcpy(&p.src_port, l4, 2);
    p.second_port = dport != me.port;
    p.learned = true;
    p.kind = Kind::kUdp;
    p.payload_off = kEthHeader + hl + kUdpHeader;
    p.payload_len = ulen - kUdpHeader;
    return p;
  }
  if (ip[9] == kProtoIcmp) {
    if (l4len < 8) return drop(p, Drop::kTruncated);
    if (fold(add(0, l4, l4len)) != 0xffff) return drop(p, Drop::kBadIcmpChecksum);
    p.learned = true;
    if (l4[0] != 8 || l4[1] != 0) return drop(p, Drop::kIgnored);  // only echo requests get an answer
    // Echo reply in place: type 0, same id/sequence/data.
    l4[0] = 0;
    l4[2] = l4[3] = 0;
    const uint16_t ic = static_cast<uint16_t>(~fold(add(0, l4, l4len)));
    std::memcpy(l4 + 2, &ic, 2);
    const uint32_t src = load32(ip + 12);
    store32(ip + 12, me.ip);
    store32(ip + 16, src);
    ip[8] = 64;  // ttl
    const uint16_t c = ip_checksum(ip, hl);
    std::memcpy(ip + 10, &c, 2);
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, me.mac.data(), 6);
    p.kind = Kind::kReply;
    p.reply_len = kEthHeader + tot;  // without Ethernet padding
    return p;
  }
  return drop(p, Drop::kUnknownProtocol);
}

std::size_t write_udp(uint8_t* f, const Mac& src_mac, const Mac& dst_mac, uint32_t src_ip, uint32_t dst_ip,
                      uint16_t src_port, uint16_t dst_port, std::size_t payload_len, uint16_t ip_id,
                      TxCsum csum) noexcept {
  std::memcpy(f, dst_mac.data(), 6);
  std::memcpy(f + 6, src_mac.data(), 6);
  store_be16(f + 12, kEtherIpv4);
  uint8_t* ip = f + kEthHeader;
  ip[0] = 0x45;
  ip[1] = 0;
  store_be16(ip + 2, static_cast<uint16_t>(kIpHeader + kUdpHeader + payload_len));
  store_be16(ip + 4, ip_id);
  store_be16(ip + 6, 0x4000);  // DF: we never fragment
  ip[8] = 64;
  ip[9] = kProtoUdp;
  ip[10] = ip[11] = 0;
  store32(ip + 12, src_ip);
  store32(ip + 16, dst_ip);
  uint8_t* udp = ip + kIpHeader;
  const std::size_t ulen = kUdpHeader + payload_len;
  std::memcpy(udp, &src_port, 2);
  std::memcpy(udp + 2, &dst_port, 2);
  store_be16(udp + 4, static_cast<uint16_t>(ulen));
  if (csum == TxCsum::kOffload) {
    const uint16_t ph = fold(pseudo(ip, ulen));  // not complemented: the NIC adds the rest
    std::memcpy(udp + 6, &ph, 2);
  } else {
    const uint16_t uc = udp_checksum(ip, udp, ulen);
    std::memcpy(udp + 6, &uc, 2);
    const uint16_t c = ip_checksum(ip, kIpHeader);
    std::memcpy(ip + 10, &c, 2);
  }
  return kUdpHeaders + payload_len;
}

bool parse_mac(const std::string& s, Mac* out) noexcept {
  unsigned v[6];
  char tail;
  if (s.size() != 17 ||
      std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) (*out)[static_cast<std::size_t>(i)] = static_cast<uint8_t>(v[i]);
  return true;
}

std::string mac_string(const Mac& m) {
  char b[18];
  std::snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

}  // namespace ferrite::net::frame
