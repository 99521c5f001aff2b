// End-to-end test of the DPDK backend, run INSIDE the network namespace made
// by tests/e2e/dpdk_e2e_test.sh, where ferrited serves on a net_tap port:
// the kernel side of the tap ($FERRITE_DPDK_IFACE, 10.77.0.2) talks to the
// DPDK side ($FERRITE_DPDK_IP). The shared scenarios (tests/util/scenarios.h)
// through the client library and memcached UDP, ARP resolution, ICMP echo,
// a 1 MiB value, and malformed frames sent with a raw socket, each counted
// under its drop reason while the server keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/endian.h"
#include "proto/memcached_udp.h"
#include "proto/native.h"
#include "tests/util/scenarios.h"
#include "tests/util/stats.h"

namespace ferrite {
namespace {

using proto::Opcode;
using proto::OpStatus;

std::string env(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : def;
}

const std::string kServerIp = env("FERRITE_DPDK_IP", "10.77.0.1");
const uint16_t kPort = static_cast<uint16_t>(std::stoi(env("FERRITE_DPDK_PORT", "11311")));
const std::string kIface = env("FERRITE_DPDK_IFACE", "ftap0");
const uint16_t kMcPort = static_cast<uint16_t>(std::stoi(env("FERRITE_DPDK_MC_PORT", "0")));

using testing::op;
using testing::parse_stats;

uint32_t ip4(const std::string& s) {
  in_addr a{};
  inet_pton(AF_INET, s.c_str(), &a);
  return a.s_addr;
}

class DpdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client::ClientOptions o;
    o.timeout_ms = 300;
    auto c = client::Client::connect(kServerIp, kPort, o);
    ASSERT_TRUE(c.is_ok()) << "no answer from ferrited on " << kServerIp << ":" << kPort << ": "
                           << c.status().to_string();
    c_ = std::move(c).value();
  }
  std::map<std::string, uint64_t> stats() {
    auto s = c_->stats();
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return parse_stats(s.is_ok() ? *s : "");
  }
  std::unique_ptr<client::Client> c_;
};

TEST_F(DpdkTest, StatsShowThePortAndItsQueues) {
  auto s = stats();
  EXPECT_EQ(s.count("dpdk_mac"), 1u);
  EXPECT_EQ(s["dpdk_link_up"], 1u);
  EXPECT_GT(s["dpdk_port_ipackets"], 0u);
  uint64_t queues = 0, per_queue = 0;  // with several workers the kernel picks the tap queue per flow
  for (unsigned q = 0; s.count("dpdk_q" + std::to_string(q) + "_ipackets") != 0; ++q) {
    ++queues;
    per_queue += s["dpdk_q" + std::to_string(q) + "_ipackets"];
  }
  EXPECT_GE(queues, 1u);
  EXPECT_GT(per_queue, 0u);
  EXPECT_GT(s["dpdk_rx_datagrams"], 0u);
  EXPECT_GT(s["dpdk_reply_reused"], 0u) << "a one-datagram reply reuses the request's mbuf";
  for (const char* reason : {"not_for_us", "fragment", "bad_ip_checksum", "bad_udp_checksum", "truncated",
                             "unknown_ethertype"}) {
    EXPECT_EQ(s.count(std::string("dpdk_drop_") + reason), 1u) << reason;
  }
}

// The scenario list (tests/util/scenarios.h) through the DPDK backend: the
// native protocol, and memcached over UDP on its own port. Both share the
// server's store, so each transport's keys have their own prefix.
class DpdkScenarios : public ::testing::TestWithParam<testing::Scenario> {};

TEST_P(DpdkScenarios, Native) {
  client::ClientOptions o;
  o.timeout_ms = 300;
  auto c = client::Client::connect(kServerIp, kPort, o);
  ASSERT_TRUE(c.is_ok()) << "no answer from ferrited on " << kServerIp << ":" << kPort;
  testing::NativeTransport t(c->get());
  GetParam().run(t, testing::Keys("native-"));
}

TEST_P(DpdkScenarios, MemcachedUdp) {
  if (kMcPort == 0) GTEST_SKIP() << "FERRITE_DPDK_MC_PORT not set";
  if (GetParam().needs_scan) GTEST_SKIP() << "memcached has no scan";
  testing::McUdpWire wire(ip4(kServerIp), kMcPort);
  ASSERT_TRUE(wire.ok());
  testing::McTransport t(&wire);
  GetParam().run(t, testing::Keys("mc-udp-"));
}

INSTANTIATE_TEST_SUITE_P(Dpdk, DpdkScenarios, ::testing::ValuesIn(testing::scenarios()), testing::scenario_name);

// memcached's UDP protocol on its own port, served by the same DPDK workers
// (net::DpdkBackendOptions::second_handler): the 8-byte frame header comes
// back with the request id, replies leave from the memcached port, and the
// store is the one the native protocol sees.
std::string mc_udp(int fd, uint16_t req_id, const std::string& cmd) {
  std::string d(proto::mc::kUdpHeaderSize, '\0');
  // reserved 0x0100, as memaslap sends it: ignored
  proto::mc::encode_udp_header({req_id, 0, 1, 0x0100}, reinterpret_cast<uint8_t*>(d.data()));
  d += cmd;
  EXPECT_EQ(::send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return "(no reply)";
  char buf[2048];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  proto::mc::UdpHeader h;
  if (n < 0 || !proto::mc::decode_udp_header(std::string_view(buf, static_cast<std::size_t>(n)), &h)) {
    return "(short reply)";
  }
  EXPECT_EQ(h.request_id, req_id);
  EXPECT_EQ(h.count, 1) << "one datagram";
  return std::string(buf + proto::mc::kUdpHeaderSize, static_cast<std::size_t>(n) - proto::mc::kUdpHeaderSize);
}

TEST_F(DpdkTest, MemcachedUdpOnItsOwnPort) {
  if (kMcPort == 0) GTEST_SKIP() << "FERRITE_DPDK_MC_PORT not set";
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kMcPort);
  to.sin_addr.s_addr = ip4(kServerIp);
  // connect(): replies from any other port (the native one) would not arrive.
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  EXPECT_EQ(mc_udp(fd, 7, "set mc-dpdk 5 0 3\r\nabc\r\n"), "STORED\r\n");
  EXPECT_EQ(mc_udp(fd, 8, "get mc-dpdk\r\n"), "VALUE mc-dpdk 5 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(mc_udp(fd, 9, "bogus\r\n"), "ERROR\r\n");
  ::close(fd);
  std::vector<client::Reply> r;
  const std::vector<proto::RequestOp> get = {op(Opcode::kGet, "mc-dpdk")};
  ASSERT_TRUE(c_->execute(get, &r).is_ok());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].value, "abc");
  EXPECT_EQ(r[0].flags, 5u);
}

TEST_F(DpdkTest, OneMebibyteValue) {
  std::string v(std::size_t{1} << 20, 'q');
  for (std::size_t i = 0; i < v.size(); i += 997) v[i] = static_cast<char>('a' + i % 26);
  auto before = stats();
  auto s = c_->set("big", v);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(*s, OpStatus::kOk);
  client::Reply r;
  auto g = c_->get("big", &r);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(r.value.size(), v.size());
  EXPECT_TRUE(r.value == v);
  auto after = stats();
  // ~730 reply datagrams for one request: most need fresh mbufs.
  EXPECT_GT(after["dpdk_reply_allocated"] - before["dpdk_reply_allocated"], 500u);
}

// The kernel resolved the server's address with ARP, answered by DPDK.
TEST_F(DpdkTest, ArpResolvesTheServerMac) {
  const auto s = stats();
  EXPECT_GE(s.at("dpdk_arp_replies"), 1u);
  std::ifstream arp("/proc/net/arp");
  std::string line, found;
  while (std::getline(arp, line)) {
    std::istringstream in(line);
    std::string ip, hw, flags, mac;
    in >> ip >> hw >> flags >> mac;
    if (ip == kServerIp) found = flags + " " + mac;
  }
  ASSERT_FALSE(found.empty()) << "no ARP entry for " << kServerIp;
  const uint64_t m = s.at("dpdk_mac");
  char want[32];
  std::snprintf(want, sizeof(want), "0x2 %02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>(m >> 40 & 0xff),
                static_cast<unsigned>(m >> 32 & 0xff), static_cast<unsigned>(m >> 24 & 0xff),
                static_cast<unsigned>(m >> 16 & 0xff), static_cast<unsigned>(m >> 8 & 0xff),
                static_cast<unsigned>(m & 0xff));
  EXPECT_EQ(found, want);
}

uint16_t inet_sum(const uint8_t* p, std::size_t n) {
  uint32_t s = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) s += load_be16(p + i);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);  // padded with a zero byte
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

TEST_F(DpdkTest, IcmpEchoIsAnswered) {
  const auto before = stats();
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  ASSERT_GE(fd, 0) << "raw ICMP socket: " << std::strerror(errno);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip4(kServerIp);
  int answered = 0;
  for (uint16_t seq = 1; seq <= 3; ++seq) {
    uint8_t pkt[8 + 32] = {8, 0, 0, 0, 0x4f, 0x52};  // echo request, id 0x4f52
    store_be16(pkt + 6, seq);
    for (int i = 0; i < 32; ++i) pkt[8 + i] = static_cast<uint8_t>(i * 7);
    const uint16_t c = static_cast<uint16_t>(~inet_sum(pkt, sizeof(pkt)));
    store_be16(pkt + 2, c);
    ASSERT_EQ(::sendto(fd, pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(sizeof(pkt)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      uint8_t buf[2048];
      sockaddr_in from{};
      socklen_t fl = sizeof(from);
      const ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 20 + 8 + 32) continue;
      const std::size_t hl = static_cast<std::size_t>(buf[0] & 0xf) * 4;
      const uint8_t* icmp = buf + hl;
      if (from.sin_addr.s_addr == to.sin_addr.s_addr && icmp[0] == 0 && icmp[4] == 0x4f && icmp[5] == 0x52 &&
          icmp[7] == static_cast<uint8_t>(seq)) {
        EXPECT_EQ(inet_sum(icmp, static_cast<std::size_t>(n) - hl), 0xffff) << "reply checksum";
        EXPECT_EQ(std::memcmp(icmp + 8, pkt + 8, 32), 0) << "echo data returned";
        ++answered;
        break;
      }
    }
  }
  ::close(fd);
  EXPECT_EQ(answered, 3);
  const auto after = stats();
  EXPECT_EQ(after.at("dpdk_icmp_echo_replies") - before.at("dpdk_icmp_echo_replies"), 3u);
}

// Raw Ethernet frames from the kernel side of the tap.
class RawSender {
 public:
  RawSender() {
    fd_ = ::socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    ifindex_ = static_cast<int>(if_nametoindex(kIface.c_str()));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, kIface.c_str(), IFNAMSIZ - 1);
    if (fd_ >= 0 && ::ioctl(fd_, SIOCGIFHWADDR, &ifr) == 0) std::memcpy(mac_, ifr.ifr_hwaddr.sa_data, 6);
  }
  ~RawSender() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0 && ifindex_ > 0; }
  const uint8_t* mac() const { return mac_; }
  bool send(const std::vector<uint8_t>& f) {
    sockaddr_ll a{};
    a.sll_family = AF_PACKET;
    a.sll_ifindex = ifindex_;
    a.sll_halen = 6;
    std::memcpy(a.sll_addr, f.data(), 6);
    return ::sendto(fd_, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) ==
           static_cast<ssize_t>(f.size());
  }

 private:
  int fd_ = -1;
  int ifindex_ = 0;
  uint8_t mac_[6] = {};
};

// A well-formed UDP datagram carrying a native noop request, kernel side -> server.
std::vector<uint8_t> udp_frame(const uint8_t* dst_mac, const uint8_t* src_mac, const std::string& dst_ip,
                               uint16_t dport) {
  std::vector<uint8_t> payload(proto::kHeaderSize);
  proto::Header h;
  h.request_id = 12345;
  h.msg_len = 0;
  proto::encode_header(h, payload.data());
  std::vector<uint8_t> f(14 + 20 + 8 + payload.size());
  std::memcpy(f.data(), dst_mac, 6);
  std::memcpy(f.data() + 6, src_mac, 6);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  const uint16_t tot = static_cast<uint16_t>(20 + 8 + payload.size());
  store_be16(ip + 2, tot);
  ip[8] = 64;
  ip[9] = 17;
  const uint32_t s = ip4("10.77.0.2"), d = ip4(dst_ip);
  std::memcpy(ip + 12, &s, 4);
  std::memcpy(ip + 16, &d, 4);
  uint8_t* udp = ip + 20;
  store_be16(udp, 40000);  // source port
  store_be16(udp + 2, dport);
  const uint16_t ulen = static_cast<uint16_t>(8 + payload.size());
  store_be16(udp + 4, ulen);
  std::memcpy(udp + 8, payload.data(), payload.size());
  // UDP checksum over the pseudo header, then the IP header checksum.
  std::vector<uint8_t> ph(12 + ulen);
  std::memcpy(ph.data(), ip + 12, 8);
  ph[9] = 17;
  ph[10] = udp[4];
  ph[11] = udp[5];
  std::memcpy(ph.data() + 12, udp, ulen);
  uint16_t uc = static_cast<uint16_t>(~inet_sum(ph.data(), ph.size()));
  if (uc == 0) uc = 0xffff;
  store_be16(udp + 6, uc);
  store_be16(ip + 10, static_cast<uint16_t>(~inet_sum(ip, 20)));
  return f;
}

void refill_ip_checksum(std::vector<uint8_t>& f) {
  f[24] = f[25] = 0;
  store_be16(f.data() + 24, static_cast<uint16_t>(~inet_sum(f.data() + 14, 20)));
}

TEST_F(DpdkTest, MalformedFramesAreCountedPerReasonAndDropped) {
  RawSender raw;
  ASSERT_TRUE(raw.ok()) << "AF_PACKET socket on " << kIface << ": " << std::strerror(errno);
  auto s0 = stats();
  const uint64_t m = s0.at("dpdk_mac");
  uint8_t server_mac[6];
  for (int i = 0; i < 6; ++i) server_mac[i] = static_cast<uint8_t>(m >> (40 - 8 * i));

  const auto good = udp_frame(server_mac, raw.mac(), kServerIp, kPort);
  auto bad_ip = good;
  bad_ip[24] ^= 0x5a;
  auto bad_udp = good;
  bad_udp[14 + 20 + 8] ^= 0xff;  // a payload byte; the UDP checksum no longer matches
  auto truncated = good;
  truncated.resize(14 + 20 + 4);  // IP total length promises more than the frame has
  auto fragment = good;
  fragment[14 + 6] = 0x20;  // MF
  refill_ip_checksum(fragment);
  auto ethertype = good;
  ethertype[12] = 0x88;  // IEEE local experimental ethertype
  ethertype[13] = 0xb5;
  const auto other_ip = udp_frame(server_mac, raw.mac(), "10.77.0.99", kPort);
  const auto other_port = udp_frame(server_mac, raw.mac(), kServerIp, static_cast<uint16_t>(kPort + 1));
  const uint8_t other_mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  const auto wrong_mac = udp_frame(other_mac, raw.mac(), kServerIp, kPort);

  constexpr int kEach = 3;
  for (int i = 0; i < kEach; ++i) {
    for (const std::vector<uint8_t>* f : std::initializer_list<const std::vector<uint8_t>*>{&bad_ip, &bad_udp, &truncated, &fragment, &ethertype, &other_ip, &other_port, &wrong_mac}) {
      ASSERT_TRUE(raw.send(*f)) << std::strerror(errno);
    }
  }
  // The counters move as the worker drains the queue.
  std::map<std::string, uint64_t> s1;
  auto delta = [&](const char* k) { return s1[k] - s0[k]; };
  for (int tries = 0; tries < 50; ++tries) {
    s1 = stats();
    if (delta("dpdk_drop_not_for_us") >= 3 * kEach && delta("dpdk_drop_unknown_ethertype") >= kEach) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(delta("dpdk_drop_bad_ip_checksum"), static_cast<uint64_t>(kEach));
  EXPECT_EQ(delta("dpdk_drop_bad_udp_checksum"), static_cast<uint64_t>(kEach));
  EXPECT_EQ(delta("dpdk_drop_truncated"), static_cast<uint64_t>(kEach));
  EXPECT_EQ(delta("dpdk_drop_fragment"), static_cast<uint64_t>(kEach));
  EXPECT_EQ(delta("dpdk_drop_unknown_ethertype"), static_cast<uint64_t>(kEach));
  // Other IP, other port, other MAC (the kernel may add multicast of its own).
  EXPECT_GE(delta("dpdk_drop_not_for_us"), static_cast<uint64_t>(3 * kEach));
  // None reached the engine: its header counters did not move.
  EXPECT_EQ(delta("drop_bad_header"), 0u);

  // The well-formed frame from the same raw socket does reach the engine (a
  // noop without a cookie: answered with a cookie reply, counted).
  ASSERT_TRUE(raw.send(good));
  for (int tries = 0; tries < 50; ++tries) {
    s1 = stats();
    if (delta("cookie_replies") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(delta("cookie_replies"), 1u) << "the control frame was not served: the checks above prove nothing";

  // Still serving.
  EXPECT_EQ(*c_->set("after-malformed", "ok"), OpStatus::kOk);
  client::Reply r;
  EXPECT_EQ(*c_->get("after-malformed", &r), OpStatus::kOk);
  EXPECT_EQ(r.value, "ok");
}

}  // namespace
}  // namespace ferrite
