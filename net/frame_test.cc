// net/frame.h: what the DPDK backend accepts, answers and drops, on frames
// built byte by byte (no port needed).
#include "net/frame.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/endian.h"
#include "tests/fuzz/frame_fuzz.h"

namespace ferrite::net::frame {
namespace {

const Mac kOurMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const Mac kPeerMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

uint32_t ip4(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

Local me() {
  Local l;
  l.mac = kOurMac;
  l.ip = ip4("10.0.0.1");
  l.port = htons(11311);
  return l;
}

// A UDP datagram from the peer (10.0.0.2:40000) to us, software checksums.
std::vector<uint8_t> udp_frame(const std::string& payload, uint16_t dport = 11311) {
  std::vector<uint8_t> f(kUdpHeaders + payload.size());
  std::memcpy(f.data() + kUdpHeaders, payload.data(), payload.size());
  write_udp(f.data(), kPeerMac, kOurMac, ip4("10.0.0.2"), ip4("10.0.0.1"), htons(40000), htons(dport), payload.size(),
            7, TxCsum::kSoftware);
  return f;
}

void refill_ip_checksum(std::vector<uint8_t>& f) {
  const uint16_t c = ip_checksum(f.data() + kEthHeader, kIpHeader);
  std::memcpy(f.data() + kEthHeader + 10, &c, 2);
}

uint16_t fold_sum(const uint8_t* p, std::size_t n) {
  uint32_t s = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) s += load_be16(p + i);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);  // padded with a zero byte
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

TEST(Frame, IpChecksumMatchesAKnownHeader) {
  // A captured IPv4 header whose checksum field is 0xb861.
  const uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                         0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  const uint16_t c = ip_checksum(h, 20);
  uint8_t bytes[2];
  std::memcpy(bytes, &c, 2);
  EXPECT_EQ(bytes[0], 0xb8);
  EXPECT_EQ(bytes[1], 0x61);
}

TEST(Frame, UdpDatagramToUsIsDeliveredWithItsSource) {
  for (std::size_t n : {0, 1, 2, 3, 7, 100, 1472}) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>(i * 31 + 5);
    auto f = udp_frame(payload);
    // Checksums as an independent big-endian sum sees them.
    EXPECT_EQ(fold_sum(f.data() + kEthHeader, kIpHeader), 0xffff);
    const Parsed p = parse(f.data(), f.size(), me());
    ASSERT_EQ(p.kind, Kind::kUdp) << n << " " << drop_name(p.drop);
    EXPECT_EQ(p.src_ip, ip4("10.0.0.2"));
    EXPECT_EQ(p.src_port, htons(40000));
    EXPECT_EQ(p.src_mac, kPeerMac);
    EXPECT_TRUE(p.learned);
    ASSERT_EQ(p.payload_len, n);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data() + p.payload_off), n), payload);
  }
}

TEST(Frame, EthernetPaddingIsNotPayload) {
  auto f = udp_frame("ab");
  f.resize(60, 0);  // minimum Ethernet frame
  const Parsed p = parse(f.data(), f.size(), me());
  ASSERT_EQ(p.kind, Kind::kUdp);
  EXPECT_EQ(p.payload_len, 2u);
}

TEST(Frame, ChecksumsAreVerifiedUnlessTheNicDid) {
  auto f = udp_frame("hello");
  auto bad_ip = f;
  bad_ip[kEthHeader + 10] ^= 0x01;
  EXPECT_EQ(parse(bad_ip.data(), bad_ip.size(), me()).drop, Drop::kBadIpChecksum);
  EXPECT_EQ(parse(f.data(), f.size(), me(), Csum::kBad).drop, Drop::kBadIpChecksum);
  EXPECT_EQ(parse(bad_ip.data(), bad_ip.size(), me(), Csum::kGood).kind, Kind::kUdp);  // trusted NIC verdict

  auto bad_udp = f;
  bad_udp[kUdpHeaders] ^= 0x40;  // payload byte changed, checksum not
  EXPECT_EQ(parse(bad_udp.data(), bad_udp.size(), me()).drop, Drop::kBadUdpChecksum);
  EXPECT_EQ(parse(f.data(), f.size(), me(), Csum::kUnknown, Csum::kBad).drop, Drop::kBadUdpChecksum);
  EXPECT_EQ(parse(bad_udp.data(), bad_udp.size(), me(), Csum::kUnknown, Csum::kGood).kind, Kind::kUdp);

  auto none = bad_udp;  // IPv4 allows "no checksum" (0)
  none[kEthHeader + kIpHeader + 6] = none[kEthHeader + kIpHeader + 7] = 0;
  EXPECT_EQ(parse(none.data(), none.size(), me()).kind, Kind::kUdp);
}

TEST(Frame, OffloadWritesThePseudoHeaderSum) {
  std::vector<uint8_t> f(kUdpHeaders + 4, 'x');
  write_udp(f.data(), kOurMac, kPeerMac, ip4("10.0.0.1"), ip4("10.0.0.2"), htons(11311), htons(40000), 4, 1,
            TxCsum::kOffload);
  EXPECT_EQ(f[kEthHeader + 10], 0);  // the NIC fills the IP checksum
  EXPECT_EQ(f[kEthHeader + 11], 0);
  // What a NIC does: complement of the sum over pseudo header value + UDP bytes.
  auto sw = f;
  write_udp(sw.data(), kOurMac, kPeerMac, ip4("10.0.0.1"), ip4("10.0.0.2"), htons(11311), htons(40000), 4, 1,
            TxCsum::kSoftware);
  uint32_t s = fold_sum(f.data() + kEthHeader + kIpHeader, kUdpHeader + 4);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  const uint16_t nic = static_cast<uint16_t>(~s);
  EXPECT_EQ(nic >> 8, sw[kEthHeader + kIpHeader + 6]);
  EXPECT_EQ(nic & 0xff, sw[kEthHeader + kIpHeader + 7]);
}

TEST(Frame, EveryCutIsTruncated) {
  auto f = udp_frame("0123456789");
  for (std::size_t len = 0; len < f.size(); ++len) {
    auto g = f;
    const Parsed p = parse(g.data(), len, me());
    EXPECT_EQ(p.kind, Kind::kDrop) << len;
    EXPECT_EQ(p.drop, Drop::kTruncated) << len;
  }
  auto shortudp = f;  // UDP length larger than the IP payload
  shortudp[kEthHeader + kIpHeader + 4] = 0x10;
  EXPECT_EQ(parse(shortudp.data(), shortudp.size(), me()).drop, Drop::kTruncated);
}

TEST(Frame, FragmentsAreDropped) {
  for (uint16_t frag : {0x2000, 0x0001, 0x2010}) {  // MF; offset 8; both
    auto f = udp_frame("frag");
    store_be16(f.data() + kEthHeader + 6, frag);
    refill_ip_checksum(f);
    EXPECT_EQ(parse(f.data(), f.size(), me()).drop, Drop::kFragment) << frag;
  }
  auto df = udp_frame("df");  // DF alone is fine (write_udp sets it)
  EXPECT_EQ(parse(df.data(), df.size(), me()).kind, Kind::kUdp);
}

TEST(Frame, NotForUs) {
  auto other_mac = udp_frame("x");
  other_mac[5] = 0x77;
  EXPECT_EQ(parse(other_mac.data(), other_mac.size(), me()).drop, Drop::kNotForUs);
  auto other_ip = udp_frame("x");
  other_ip[kEthHeader + 19] = 9;
  refill_ip_checksum(other_ip);
  EXPECT_EQ(parse(other_ip.data(), other_ip.size(), me()).drop, Drop::kNotForUs);
  auto other_port = udp_frame("x", 9999);
  EXPECT_EQ(parse(other_port.data(), other_port.size(), me()).drop, Drop::kNotForUs);
}

TEST(Frame, SecondPortIsDeliveredAndMarked) {
  Local l = me();
  l.port2 = htons(11211);
  auto main_port = udp_frame("a");
  const Parsed p1 = parse(main_port.data(), main_port.size(), l);
  ASSERT_EQ(p1.kind, Kind::kUdp);
  EXPECT_FALSE(p1.second_port);
  auto second = udp_frame("b", 11211);
  const Parsed p2 = parse(second.data(), second.size(), l);
  ASSERT_EQ(p2.kind, Kind::kUdp);
  EXPECT_TRUE(p2.second_port);
  EXPECT_EQ(p2.payload_len, 1u);
  // Without port2 the same datagram is not for us; a third port never is.
  EXPECT_EQ(parse(second.data(), second.size(), me()).drop, Drop::kNotForUs);
  auto third = udp_frame("c", 9999);
  EXPECT_EQ(parse(third.data(), third.size(), l).drop, Drop::kNotForUs);
}

TEST(Frame, UnknownEthertypeProtocolAndHeader) {
  auto v6 = udp_frame("x");
  v6[12] = 0x86;
  v6[13] = 0xdd;
  EXPECT_EQ(parse(v6.data(), v6.size(), me()).drop, Drop::kUnknownEthertype);
  auto tcp = udp_frame("x");
  tcp[kEthHeader + 9] = 6;
  refill_ip_checksum(tcp);
  EXPECT_EQ(parse(tcp.data(), tcp.size(), me()).drop, Drop::kUnknownProtocol);
  auto v5 = udp_frame("x");
  v5[kEthHeader] = 0x55;
  EXPECT_EQ(parse(v5.data(), v5.size(), me()).drop, Drop::kBadHeader);
}

std::vector<uint8_t> arp_request(uint32_t target) {
  std::vector<uint8_t> f(60, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(f.data() + 6, kPeerMac.data(), 6);
  f[12] = 0x08;
  f[13] = 0x06;
  uint8_t* a = f.data() + 14;
  a[1] = 1;     // Ethernet
  a[2] = 0x08;  // IPv4
  a[4] = 6;
  a[5] = 4;
  a[7] = 1;  // request
  std::memcpy(a + 8, kPeerMac.data(), 6);
  const uint32_t sip = ip4("10.0.0.2");
  std::memcpy(a + 14, &sip, 4);
  std::memcpy(a + 24, &target, 4);
  return f;
}

TEST(Frame, ArpRequestForUsIsAnsweredInPlace) {
  auto f = arp_request(ip4("10.0.0.1"));
  const Parsed p = parse(f.data(), f.size(), me());
  ASSERT_EQ(p.kind, Kind::kReply);
  EXPECT_TRUE(p.arp);
  EXPECT_TRUE(p.learned);
  EXPECT_EQ(p.src_ip, ip4("10.0.0.2"));
  EXPECT_EQ(p.src_mac, kPeerMac);
  const uint8_t* a = f.data() + 14;
  EXPECT_EQ(std::memcmp(f.data(), kPeerMac.data(), 6), 0);
  EXPECT_EQ(std::memcmp(f.data() + 6, kOurMac.data(), 6), 0);
  EXPECT_EQ(a[7], 2);  // reply
  EXPECT_EQ(std::memcmp(a + 8, kOurMac.data(), 6), 0);
  const uint32_t ours = ip4("10.0.0.1"), theirs = ip4("10.0.0.2");
  EXPECT_EQ(std::memcmp(a + 14, &ours, 4), 0);
  EXPECT_EQ(std::memcmp(a + 18, kPeerMac.data(), 6), 0);
  EXPECT_EQ(std::memcmp(a + 24, &theirs, 4), 0);

  auto other = arp_request(ip4("10.0.0.9"));
  EXPECT_EQ(parse(other.data(), other.size(), me()).drop, Drop::kNotForUs);
  auto reply = arp_request(ip4("10.0.0.1"));
  reply[14 + 7] = 2;
  const Parsed r = parse(reply.data(), reply.size(), me());
  EXPECT_EQ(r.drop, Drop::kIgnored);
  EXPECT_TRUE(r.learned);  // the neighbour table still learns from it
  auto cut = arp_request(ip4("10.0.0.1"));
  EXPECT_EQ(parse(cut.data(), 41, me()).drop, Drop::kTruncated);
}

std::vector<uint8_t> icmp_echo(std::size_t data_len, uint8_t type = 8) {
  std::vector<uint8_t> f(kEthHeader + kIpHeader + 8 + data_len, 0);
  std::memcpy(f.data(), kOurMac.data(), 6);
  std::memcpy(f.data() + 6, kPeerMac.data(), 6);
  f[12] = 0x08;
  uint8_t* ip = f.data() + kEthHeader;
  ip[0] = 0x45;
  const uint16_t tot = static_cast<uint16_t>(kIpHeader + 8 + data_len);
  store_be16(ip + 2, tot);
  ip[8] = 64;
  ip[9] = 1;
  const uint32_t s = ip4("10.0.0.2"), d = ip4("10.0.0.1");
  std::memcpy(ip + 12, &s, 4);
  std::memcpy(ip + 16, &d, 4);
  const uint16_t c = ip_checksum(ip, kIpHeader);
  std::memcpy(ip + 10, &c, 2);
  uint8_t* icmp = ip + kIpHeader;
  icmp[0] = type;
  icmp[4] = 0x12;  // id
  icmp[7] = 3;     // sequence
  for (std::size_t i = 0; i < data_len; ++i) icmp[8 + i] = static_cast<uint8_t>(i);
  const uint16_t ic = static_cast<uint16_t>(~fold_sum(icmp, 8 + data_len));
  store_be16(icmp + 2, ic);
  return f;
}

TEST(Frame, IcmpEchoIsAnsweredInPlace) {
  for (std::size_t n : {0, 1, 56}) {
    auto f = icmp_echo(n);
    const std::size_t len = f.size();
    f.resize(std::max<std::size_t>(len, 60), 0);  // padded on the wire
    const Parsed p = parse(f.data(), f.size(), me());
    ASSERT_EQ(p.kind, Kind::kReply) << n << " " << drop_name(p.drop);
    EXPECT_FALSE(p.arp);
    EXPECT_EQ(p.reply_len, len);
    const uint8_t* ip = f.data() + kEthHeader;
    EXPECT_EQ(fold_sum(ip, kIpHeader), 0xffff);
    EXPECT_EQ(fold_sum(ip + kIpHeader, 8 + n), 0xffff);
    EXPECT_EQ(ip[kIpHeader], 0);  // echo reply
    EXPECT_EQ(ip[kIpHeader + 4], 0x12);
    EXPECT_EQ(ip[kIpHeader + 7], 3);
    const uint32_t s = ip4("10.0.0.1"), d = ip4("10.0.0.2");
    EXPECT_EQ(std::memcmp(ip + 12, &s, 4), 0);
    EXPECT_EQ(std::memcmp(ip + 16, &d, 4), 0);
    EXPECT_EQ(std::memcmp(f.data(), kPeerMac.data(), 6), 0);
  }
  auto bad = icmp_echo(8);
  bad[kEthHeader + kIpHeader + 9] ^= 1;
  EXPECT_EQ(parse(bad.data(), bad.size(), me()).drop, Drop::kBadIcmpChecksum);
  auto reply = icmp_echo(8, 0);  // an echo reply (type 0) is not answered
  EXPECT_EQ(parse(reply.data(), reply.size(), me()).drop, Drop::kIgnored);
}

TEST(Frame, MacParsing) {
  Mac m{};
  EXPECT_TRUE(parse_mac("02:00:0a:Bc:ff:01", &m));
  EXPECT_EQ(mac_string(m), "02:00:0a:bc:ff:01");
  EXPECT_FALSE(parse_mac("02:00:0a:bc:ff", &m));
  EXPECT_FALSE(parse_mac("02:00:0a:bc:ff:01:", &m));
}

TEST(FrameFuzz, RandomAndMutatedFrames) {
  std::mt19937_64 rng(20261125);
  for (int iter = 0; iter < 100000; ++iter) {
    std::vector<uint8_t> d;
    switch (iter % 4) {
      case 0:
        d.resize(rng() % 128);
        for (auto& b : d) b = static_cast<uint8_t>(rng());
        break;
      case 1: d = udp_frame(std::string(rng() % 64, 'p')); break;
      case 2: d = arp_request(rng() % 2 ? ip4("10.0.0.1") : static_cast<uint32_t>(rng())); break;
      default: d = icmp_echo(rng() % 32); break;
    }
    const int flips = static_cast<int>(rng() % 4);
    for (int f = 0; f < flips && !d.empty(); ++f) d[rng() % d.size()] = static_cast<uint8_t>(rng());
    if (rng() % 3 == 0 && !d.empty()) d.resize(rng() % d.size());
    ferrite::fuzz::frame_one_input(d.data(), d.size());
  }
  SUCCEED() << "100000 frames parsed without an invariant failure";
}

}  // namespace
}  // namespace ferrite::net::frame
