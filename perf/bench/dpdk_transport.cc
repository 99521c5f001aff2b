// DPDK transport for ferrite-bench (see dpdk_transport.h).
#include "perf/bench/dpdk_transport.h"

#include <arpa/inet.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "common/endian.h"
#include "net/frame.h"
#include "net/dpdk_guard.h"
#include "perf/dpdk_port.h"

namespace ferrite::bench {

namespace fr = ferrite::net::frame;

namespace {

constexpr std::size_t kBurst = 64;
constexpr std::size_t kMaxPayload = 1472;  // one 1514-byte Ethernet frame

struct Ctx {
  std::string eal;
  perf::DpdkPort port;
  bool open = false;
};
Ctx& ctx() {
  static Ctx c;
  return c;
}

class DpdkUdp final : public Transport {
 public:
  DpdkUdp(const DpdkOptions& o, const perf::DpdkPort& p, uint32_t ip, uint32_t server_ip)
      : o_(o), port_(p), server_ip_(server_ip) {
    me_.mac = p.mac;
    me_.ip = ip;
    me_.port = htons(o.src_port);
  }
  ~DpdkUdp() override { release(); }

  // ARP for the server until it answers or arp_timeout_s passes.
  Status resolve() {
    const auto t0 = std::chrono::steady_clock::now();
    auto last = t0 - std::chrono::seconds(1);
    while (!have_mac_) {
      const auto now = std::chrono::steady_clock::now();
      if (now - t0 > std::chrono::duration<double>(o_.arp_timeout_s)) {
        return Status::io_error("no ARP reply from " + o_.server_ip);
      }
      if (now - last > std::chrono::milliseconds(100)) {
        rte_mbuf* m = rte_pktmbuf_alloc(port_.pool);
        if (m != nullptr) {
          const std::size_t len =
              perf::write_arp_request(rte_pktmbuf_mtod(m, uint8_t*), me_.mac, me_.ip, server_ip_);
          m->data_len = static_cast<uint16_t>(len);
          m->pkt_len = static_cast<uint32_t>(len);
          tx_.push_back(m);
          (void)perf::tx_all(port_.id, &tx_);
        }
        last = now;
      }
      (void)recv(kBurst);  // learns the MAC from the ARP reply; UDP before it is dropped
    }
    release();
    return Status::ok();
  }

  unsigned flows() const noexcept override { return o_.flows; }

  std::size_t send(unsigned flow, std::span<const iovec> d) override {
    for (const iovec& v : d) {
      if (v.iov_len > kMaxPayload) break;
      rte_mbuf* m = rte_pktmbuf_alloc(port_.pool);
      if (m == nullptr) break;
      uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
      std::memcpy(f + fr::kUdpHeaders, v.iov_base, v.iov_len);
      const std::size_t len =
          fr::write_udp(f, me_.mac, server_mac_, me_.ip, server_ip_, htons(static_cast<uint16_t>(o_.src_port + flow)),
                        htons(o_.server_port), v.iov_len, ip_id_++, fr::TxCsum::kSoftware);
      m->data_len = static_cast<uint16_t>(len);
      m->pkt_len = static_cast<uint32_t>(len);
      tx_.push_back(m);
    }
    return perf::tx_all(port_.id, &tx_);  // tx_ held only these: recv() and resolve() flush theirs
  }

  std::span<const RxDatagram> recv(std::size_t max) override {
    release();
    rte_mbuf* rx[kBurst];
    const uint16_t n = net::dpdk_guard::rx_burst(port_.id, 0, rx, static_cast<uint16_t>(std::min(max, kBurst)));
    for (uint16_t i = 0; i < n; ++i) {
      uint8_t* f = rte_pktmbuf_mtod(rx[i], uint8_t*);
      const std::size_t len = rx[i]->data_len;
      fr::Local me = me_;
      me.port = htons(dst_port(f, len));  // any of our flows' ports
      // Checksums: a generator trusts the wire (af_packet may carry partial ones).
      const fr::Parsed p = fr::parse(f, len, me, fr::Csum::kGood, fr::Csum::kGood);
      if (p.learned && p.src_ip == server_ip_) {
        server_mac_ = p.src_mac;
        have_mac_ = true;
      }
      if (p.kind == fr::Kind::kReply) {  // ARP/ICMP request for us, rewritten into the reply
        rx[i]->data_len = static_cast<uint16_t>(p.reply_len);
        rx[i]->pkt_len = static_cast<uint32_t>(p.reply_len);
        tx_.push_back(rx[i]);
        continue;
      }
      const unsigned flow = static_cast<unsigned>(ntohs(me.port) - o_.src_port);
      if (p.kind == fr::Kind::kUdp && p.src_ip == server_ip_ && flow < o_.flows) {
        held_.push_back(rx[i]);
        out_.push_back(RxDatagram{flow, std::span<const uint8_t>(f + p.payload_off, p.payload_len)});
      } else {
        rte_pktmbuf_free(rx[i]);
      }
    }
    if (!tx_.empty()) (void)perf::tx_all(port_.id, &tx_);
    return out_;
  }

  // Poll mode: nothing to sleep on; yield briefly so a shared core is not starved.
  void wait(int timeout_us) override {
    if (timeout_us > 0) std::this_thread::yield();
  }

 private:
  // The UDP destination port of an IPv4/UDP frame in host order, or src_port.
  uint16_t dst_port(const uint8_t* f, std::size_t len) const {
    if (len < fr::kUdpHeaders || f[12] != 0x08 || f[13] != 0x00) return o_.src_port;
    const std::size_t ihl = static_cast<std::size_t>(f[14] & 0x0f) * 4;
    if (ihl < fr::kIpHeader || len < fr::kEthHeader + ihl + fr::kUdpHeader) return o_.src_port;
    const uint16_t port = load_be16(f + fr::kEthHeader + ihl + 2);
    return port >= o_.src_port && static_cast<unsigned>(port - o_.src_port) < o_.flows ? port : o_.src_port;
  }
  void release() {
    if (!held_.empty()) rte_pktmbuf_free_bulk(held_.data(), static_cast<unsigned>(held_.size()));
    held_.clear();
    out_.clear();
  }

  DpdkOptions o_;
  perf::DpdkPort port_;
  fr::Local me_;
  uint32_t server_ip_ = 0;
  fr::Mac server_mac_{};
  bool have_mac_ = false;
  uint16_t ip_id_ = 1;
  std::vector<rte_mbuf*> tx_;
  std::vector<rte_mbuf*> held_;
  std::vector<RxDatagram> out_;
};

}  // namespace

StatusOr<std::unique_ptr<Transport>> make_dpdk_transport(const DpdkOptions& o) {
  in_addr a{};
  if (inet_pton(AF_INET, o.ip.c_str(), &a) != 1) return Status::invalid_argument("bad IPv4 address \"" + o.ip + "\"");
  const uint32_t ip = a.s_addr;
  if (inet_pton(AF_INET, o.server_ip.c_str(), &a) != 1) {
    return Status::invalid_argument("bad IPv4 address \"" + o.server_ip + "\"");
  }
  if (o.flows == 0 || o.src_port + o.flows > 65536u) return Status::invalid_argument("flows do not fit the port range");
  Ctx& c = ctx();
  if (!c.open) {
    if (Status s = perf::eal_init("ferrite-bench", o.eal); !s.is_ok()) return s;
    auto p = perf::open_port(o.port_id, o.mac, "bench_mbufs");
    if (!p) return p.status();
    c.port = *p;
    c.eal = o.eal;
    c.open = true;
  } else if (o.port_id != c.port.id) {
    return Status::invalid_argument("one DPDK port per process");
  }
  auto t = std::make_unique<DpdkUdp>(o, c.port, ip, a.s_addr);
  if (Status s = t->resolve(); !s.is_ok()) return s;
  return std::unique_ptr<Transport>(std::move(t));
}

void dpdk_transport_shutdown() {
  Ctx& c = ctx();
  if (!c.open) return;
  perf::close_port_and_eal(c.port.id, c.eal);
  c.open = false;
}

}  // namespace ferrite::bench
