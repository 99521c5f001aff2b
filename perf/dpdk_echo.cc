// dpdk_echo: the latency floor for perf/dpdk_compare.sh. A DPDK process that
// answers Ferrite's native protocol with no store behind it: each GET gets a
// value of --value bytes, every other op an OK, the hello a cookie. Same
// generator, same port type, same cores as ferrited: what is left of
// ferrited's latency above this row is ferrited's, the rest belongs to the
// machine (vCPU freezes, kernel threads) and the transport.
//
//   dpdk_echo --eal "--no-huge -m 256 --no-shconf --no-pci --file-prefix=echo --lcores=0@1
//                    --vdev=net_memif0,role=server,id=0,socket=/tmp/echo.sock"
//             --ip 10.78.0.1 --seconds 30
//
// Runs for --seconds (bounded) or until SIGTERM/SIGINT, then prints what it
// answered and exits, leaving no DPDK runtime directory behind.
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "net/frame.h"
#include "net/dpdk_guard.h"
#include "perf/dpdk_port.h"
#include "proto/native.h"

using namespace ferrite;
namespace fr = ferrite::net::frame;

namespace {
volatile std::sig_atomic_t g_stop = 0;  // SIGTERM/SIGINT: stop, then close the port and EAL (runtime dir)
extern "C" void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpdk_echo: a storeless native-protocol responder (latency floor)"};
  std::string eal, ip = "10.78.0.1", mac = "02:fe:00:00:00:01";
  uint16_t port_id = 0, udp_port = 11311;
  std::size_t value = 32;
  double seconds = 30;
  app.add_option("--eal", eal, "EAL arguments (one string)")->required();
  app.add_option("--port", port_id);
  app.add_option("--ip", ip, "our IPv4 address");
  app.add_option("--mac", mac, "our MAC");
  app.add_option("--udp-port", udp_port);
  app.add_option("--value", value, "bytes of value per GET reply")->check(CLI::Range(0, 1400));
  app.add_option("--seconds", seconds, "run time")->check(CLI::Range(0.1, 3600.0));
  CLI11_PARSE(app, argc, argv);

  if (Status s = perf::eal_init("dpdk_echo", eal); !s.is_ok()) {
    std::fprintf(stderr, "dpdk_echo: %s\n", s.to_string().c_str());
    return 1;
  }
  auto dp = perf::open_port(port_id, mac, "echo_mbufs");
  if (!dp) {
    std::fprintf(stderr, "dpdk_echo: %s\n", dp.status().to_string().c_str());
    return 1;
  }
  fr::Local me;
  me.mac = dp->mac;
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) {
    std::fprintf(stderr, "dpdk_echo: bad --ip\n");
    return 1;
  }
  me.ip = a.s_addr;
  me.port = htons(udp_port);
  std::printf("dpdk_echo serving %s:%u\n", ip.c_str(), udp_port);
  std::fflush(stdout);

  const std::string val(value, 'v');
  std::vector<uint8_t> body, dgram;
  std::vector<rte_mbuf*> tx;
  uint64_t answered = 0, dropped = 0;
  const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(seconds * static_cast<double>(rte_get_tsc_hz()));
  rte_mbuf* rx[32];
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  while (rte_rdtsc() < end && g_stop == 0) {
    const uint16_t n = net::dpdk_guard::rx_burst(port_id, 0, rx, 32);
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = rx[i];
      uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
      const fr::Parsed p = fr::parse(f, m->data_len, me, fr::Csum::kGood, fr::Csum::kGood);
      if (p.kind == fr::Kind::kReply) {  // ARP / ICMP echo, rewritten in place
        m->data_len = static_cast<uint16_t>(p.reply_len);
        m->pkt_len = static_cast<uint32_t>(p.reply_len);
        tx.push_back(m);
        continue;
      }
      proto::Header h;
      std::span<const uint8_t> payload;
      if (p.kind != fr::Kind::kUdp ||
          proto::decode_header(std::span<const uint8_t>(f + p.payload_off, p.payload_len), &h, &payload) !=
              Result::kOk ||
          (h.type != proto::MsgType::kRequest && h.type != proto::MsgType::kHello)) {
        ++dropped;
        rte_pktmbuf_free(m);
        continue;
      }
      body.clear();
      if (h.type == proto::MsgType::kHello) {
        h.type = proto::MsgType::kCookie;
        h.cookie = 0x5eed;
      } else {
        h.type = proto::MsgType::kResponse;
        proto::RequestReader rr(payload);
        proto::RequestOp op;
        for (uint16_t k = 0; rr.next(&op) == proto::RequestReader::Next::kOp; ++k) {
          proto::ResponseOp r;
          r.opcode = op.opcode;
          r.index = k;
          if (op.opcode == proto::Opcode::kGet) r.value = val;
          proto::append_response_op(&body, r);
        }
      }
      h.msg_len = static_cast<uint32_t>(body.size());
      h.frag_index = 0;
      h.frag_count = 1;
      h.frag_offset = 0;
      dgram.resize(proto::kHeaderSize + body.size());
      proto::encode_header(h, dgram.data());
      if (!body.empty()) std::memcpy(dgram.data() + proto::kHeaderSize, body.data(), body.size());
      if (fr::kUdpHeaders + dgram.size() > static_cast<std::size_t>(m->buf_len - m->data_off)) {
        ++dropped;
        rte_pktmbuf_free(m);
        continue;
      }
      // In place: back to the sender.
      std::memcpy(f + fr::kUdpHeaders, dgram.data(), dgram.size());
      const std::size_t len = fr::write_udp(f, me.mac, p.src_mac, me.ip, p.src_ip, me.port, p.src_port, dgram.size(),
                                            static_cast<uint16_t>(answered), fr::TxCsum::kSoftware);
      m->data_len = static_cast<uint16_t>(len);
      m->pkt_len = static_cast<uint32_t>(len);
      tx.push_back(m);
      ++answered;
    }
    if (!tx.empty()) dropped += perf::tx_all(port_id, &tx);
  }
  std::printf("dpdk_echo: answered %llu, dropped %llu\n", static_cast<unsigned long long>(answered),
              static_cast<unsigned long long>(dropped));
  perf::close_port_and_eal(port_id, eal);
  return 0;
}
