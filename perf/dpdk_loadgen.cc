// dpdk_loadgen: a DPDK load generator speaking Ferrite's native protocol.
// Its own process on its own lcore, one DPDK port: net_memif (client role,
// to a ferrited on the same machine), net_af_packet (a tap's or veth's kernel
// side), or a real NIC. It resolves the server's MAC with ARP (and answers ARP
// for its own address, for kernel servers), does the cookie handshake,
// preloads the keys, then runs one bounded measurement:
//
//   closed loop (--mode closed --window W): W requests outstanding, a new one
//     sent as each reply arrives; latency from send to reply;
//   open loop (--mode open --rate R): requests sent on a fixed schedule of R
//     per second whatever the replies do; latency from the SCHEDULED send
//     time (no coordinated omission).
//
// Each request is one datagram of --ops-per-datagram ops (default 1), each a
// GET (or SET with --get-ratio < 1) of a random key; the reply carries one
// response op per op, all in one datagram (values up to ~1400 bytes in all).
// Throughput counts ops (ops/s) and datagrams (dgrams/s); latency is per
// datagram; --window and --rate count datagrams and ops respectively (the
// open loop sends rate / ops-per-datagram datagrams per second). Output: one
// markdown row like perf/server_bench's, plus a machine-readable "RESULT"
// line. Runs are bounded by --seconds (and --max-requests, in datagrams);
// requests unanswered for 100 ms are counted lost (as datagrams) and replaced.
//
//   dpdk_loadgen --eal "--no-huge -m 256 --no-shconf --no-pci --file-prefix=lg -l 0
//                       --vdev=net_memif0,role=client,socket=/tmp/ferrite-memif.sock"
//                --ip 10.78.0.2 --server-ip 10.78.0.1 --mode closed --window 32 --seconds 5
// (one command line; perf/dpdk_compare.sh runs it against memif, tap and the kernel backend)
#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/histogram.h"
#include "net/frame.h"
#include "net/dpdk_guard.h"
#include "perf/dpdk_port.h"
#include "proto/memcached_udp.h"
#include "proto/native.h"

using namespace ferrite;
namespace fr = ferrite::net::frame;

namespace {

struct Opts {
  std::string eal;
  uint16_t port = 0;
  std::string ip = "10.78.0.2";
  std::string server_ip = "10.78.0.1";
  uint16_t server_port = 11311;
  uint16_t src_port = 40000;
  std::string mac;         // "" = the port's
  std::string label = "ferrited";
  std::string mode = "closed";
  unsigned window = 32;
  double rate = 100000;
  double stall_us = 0;     // --stall-us: 0 = no stall report
  uint64_t keys = 100000;
  std::size_t value = 32;
  double get_ratio = 1.0;
  double seconds = 5;
  double warmup = 0.5;
  uint64_t max_requests = 100000000;
  bool preload = true;
  std::string protocol = "native";  // or "memcached" (UDP frame header + text, the peer)
  unsigned ops_per_dgram = 1;       // --ops-per-datagram: ops in each measured request (native only)
};

struct Gen {
  Opts o;
  uint16_t port = 0;
  rte_mempool* pool = nullptr;
  fr::Local me;
  fr::Mac server_mac{};
  uint32_t server_ip = 0;
  uint64_t cookie = 0;
  uint64_t next_id = 1;
  uint64_t hz = 0;
  std::vector<rte_mbuf*> tx;
  std::vector<uint8_t> body;
  std::vector<uint8_t> dgram;
  std::mt19937_64 rng{42};
  std::string value;
  bool memcached = false;
  // A reply belongs to request id: memcached's frame carries 16 bits of it.
  bool matches(uint64_t id, uint64_t wire) const { return memcached ? (id & 0xffff) == wire : id == wire; }

  // Outstanding requests: slot = id % slots.size(); sent_tsc 0 = free.
  struct Slot {
    uint64_t id = 0;
    uint64_t sent_tsc = 0;
  };
  std::vector<Slot> slots;
  std::size_t outstanding = 0;

  // Measurement.
  bool measuring = false;
  Histogram hist;  // ns per request
  uint64_t done = 0, hits = 0, misses = 0, lost = 0, sent = 0, errors = 0;  // done, lost, sent: datagrams
  uint64_t ops_done = 0;  // response ops in the replies counted in done
  // --stall-us: slow replies (scheduled send time, latency) and the
  // generator's own loop gaps (start, length), in TSC, to tell whose stall it was.
  std::vector<std::pair<uint64_t, uint64_t>> slow, gaps;

  void flush() { (void)perf::tx_all(port, &tx); }

  bool queue_udp(std::span<const uint8_t> payload) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return false;
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f + fr::kUdpHeaders, payload.data(), payload.size());
    const std::size_t len = fr::write_udp(f, me.mac, server_mac, me.ip, server_ip, me.port, htons(o.server_port),
                                          payload.size(), static_cast<uint16_t>(next_id), fr::TxCsum::kSoftware);
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = static_cast<uint32_t>(len);
    tx.push_back(m);
    return true;
  }

  void queue_arp_request() {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) return;
    const std::size_t len = perf::write_arp_request(rte_pktmbuf_mtod(m, uint8_t*), me.mac, me.ip, server_ip);
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = static_cast<uint32_t>(len);
    tx.push_back(m);
  }

  // Sends one request message (one datagram) with the given ops.
  uint64_t send_request(std::span<const proto::RequestOp> ops) {
    if (memcached) {  // 8-byte frame header (id, seq 0, 1 datagram) + one text command per op
      const uint64_t id = next_id++;
      dgram.assign(proto::mc::kUdpHeaderSize, 0);
      proto::mc::encode_udp_header({static_cast<uint16_t>(id), 0, 1, 0}, dgram.data());
      for (const auto& op : ops) {
        std::string cmd = op.opcode == proto::Opcode::kGet
                              ? "get " + std::string(op.key) + "\r\n"
                              : "set " + std::string(op.key) + " 0 0 " + std::to_string(op.value.size()) + "\r\n" +
                                    std::string(op.value) + "\r\n";
        dgram.insert(dgram.end(), cmd.begin(), cmd.end());
      }
      return queue_udp(dgram) ? id : 0;
    }
    body.clear();
    for (const auto& op : ops) proto::append_request_op(&body, op);
    proto::Header h;
    h.type = proto::MsgType::kRequest;
    h.msg_len = static_cast<uint32_t>(body.size());
    h.request_id = next_id++;
    h.cookie = cookie;
    dgram.resize(proto::kHeaderSize + body.size());
    proto::encode_header(h, dgram.data());
    std::memcpy(dgram.data() + proto::kHeaderSize, body.data(), body.size());
    if (!queue_udp(dgram)) return 0;
    return h.request_id;
  }

  void send_hello() {
    proto::Header h;
    h.type = proto::MsgType::kHello;
    h.request_id = next_id++;
    dgram.resize(proto::kHeaderSize);
    proto::encode_header(h, dgram.data());
    (void)queue_udp(dgram);
  }

  // Polls the port once; calls on_reply(header, body) for each native datagram.
  template <typename F>
  unsigned poll(F&& on_reply) {
    rte_mbuf* rx[64];
    const uint16_t n = net::dpdk_guard::rx_burst(port, 0, rx, 64);
    for (uint16_t i = 0; i < n; ++i) {
      uint8_t* f = rte_pktmbuf_mtod(rx[i], uint8_t*);
      // Checksums: a generator trusts the wire (veth/af_packet may carry partial ones).
      const fr::Parsed p = fr::parse(f, rx[i]->data_len, me, fr::Csum::kGood, fr::Csum::kGood);
      if (p.learned && p.src_ip == server_ip) server_mac = p.src_mac;
      if (p.kind == fr::Kind::kReply && p.arp) {  // someone (a kernel server) asks for our MAC
        rx[i]->data_len = static_cast<uint16_t>(p.reply_len);
        rx[i]->pkt_len = static_cast<uint32_t>(p.reply_len);
        tx.push_back(rx[i]);
        continue;
      }
      const std::string_view dg(reinterpret_cast<const char*>(f + p.payload_off), p.payload_len);
      proto::mc::UdpHeader mh;
      if (p.kind == fr::Kind::kUdp && p.src_ip == server_ip && memcached && proto::mc::decode_udp_header(dg, &mh)) {
        // As a native header: the 16-bit id, the text after the frame header as the body.
        proto::Header h;
        h.type = proto::MsgType::kResponse;
        h.request_id = mh.request_id;
        on_reply(h, std::span<const uint8_t>(f + p.payload_off + proto::mc::kUdpHeaderSize,
                                             p.payload_len - proto::mc::kUdpHeaderSize));
      } else if (p.kind == fr::Kind::kUdp && p.src_ip == server_ip) {
        proto::Header h;
        std::span<const uint8_t> payload;
        if (proto::decode_header(std::span<const uint8_t>(f + p.payload_off, p.payload_len), &h, &payload) ==
            Result::kOk) {
          on_reply(h, payload);
        }
      }
      rte_pktmbuf_free(rx[i]);
    }
    if (!tx.empty()) flush();
    return n;
  }

  void record(uint64_t lat_tsc) { hist.record(lat_tsc * 1000000000ull / hz); }
  double percentile(double q) const { return static_cast<double>(hist.percentile(q)) / 1000.0; }  // us
};

std::string key_of(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof(b), "key:%012llu", static_cast<unsigned long long>(i));
  return b;
}

// Groups slow replies into events (sends less than 100 us apart) and prints,
// to stderr, how many events there were, how long they lasted, how many
// replies each delayed, and whether the generator itself stalled meanwhile.
void report_stalls(std::vector<std::pair<uint64_t, uint64_t>> slow, const std::vector<std::pair<uint64_t, uint64_t>>& gaps,
                   uint64_t t0, uint64_t hz, double thr_us) {
  auto us = [hz](uint64_t tsc) { return static_cast<double>(tsc) * 1e6 / static_cast<double>(hz); };
  std::sort(slow.begin(), slow.end());
  struct Event { uint64_t first, last, worst; std::size_t n; };
  std::vector<Event> ev;
  for (const auto& [at, lat] : slow) {
    if (!ev.empty() && at - ev.back().last < hz / 10000) {
      ev.back().last = at; ev.back().worst = std::max(ev.back().worst, lat); ++ev.back().n;
    } else {
      ev.push_back({at, at, lat, 1});
    }
  }
  double gap_total = 0, gap_max = 0;
  std::size_t gap_long = 0;
  for (const auto& [at, len] : gaps) {
    gap_total += us(len); gap_max = std::max(gap_max, us(len)); gap_long += us(len) > thr_us;
  }
  std::fprintf(stderr, "stalls: %zu replies slower than %.0f us in %zu events; generator loop gaps > %.0f us: %zu "
               "(%zu > %.0f us), %.0f us in all, longest %.0f us\n", slow.size(), thr_us, ev.size(), thr_us / 2, gaps.size(),
               gap_long, thr_us, gap_total, gap_max);
  std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) { return a.n > b.n; });
  for (std::size_t i = 0; i < ev.size() && i < 12; ++i) {
    const Event& e = ev[i];
    // The generator's longest own gap overlapping the event.
    double own = 0;
    for (const auto& [at, len] : gaps) {
      if (at + len >= e.first && at <= e.last + e.worst) own = std::max(own, us(len));
    }
    std::fprintf(stderr, "  at %.6f s: %zu replies over %.0f us, worst %.0f us, generator's own gap %.0f us\n",
                 us(e.first - t0) / 1e6, e.n, us(e.last - e.first), us(e.worst), own);
  }
}

int die(const std::string& m) {
  std::fprintf(stderr, "dpdk_loadgen: %s\n", m.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  CLI::App app{"dpdk_loadgen: native-protocol load over a DPDK port"};
  app.add_option("--eal", o.eal, "EAL arguments (one string)")->required();
  app.add_option("--port", o.port);
  app.add_option("--ip", o.ip, "our IPv4 address");
  std::string server;
  app.add_option("--server", server, "server HOST:PORT (as ferritectl's and ferrite-bench's)")
      ->excludes(app.add_option("--server-ip", o.server_ip))
      ->excludes(app.add_option("--server-port", o.server_port));
  app.add_option("--src-port", o.src_port);
  app.add_option("--mac", o.mac, "our MAC (default: the port's)");
  app.add_option("--label", o.label, "the row's name");
  app.add_option("--mode", o.mode, "closed | open")->check(CLI::IsMember({"closed", "open"}));
  app.add_option("--window", o.window, "closed loop: requests outstanding");
  app.add_option("--rate", o.rate, "open loop: requests per second");
  app.add_option("--keys", o.keys);
  app.add_option("--value", o.value)->check(CLI::Range(0, 1400));
  app.add_option("--get-ratio", o.get_ratio);
  app.add_option("--seconds", o.seconds)->check(CLI::Range(0.1, 120.0));
  app.add_option("--max-requests", o.max_requests);
  app.add_option("--stall-us", o.stall_us,
                 "report replies slower than this (grouped into stall events) and the generator's own loop gaps");
  app.add_flag("!--no-preload", o.preload, "skip the SET of every key before measuring");
  app.add_option("--protocol", o.protocol, "native | memcached (UDP, for the memcached peer)")
      ->check(CLI::IsMember({"native", "memcached"}));
  app.add_option("--ops-per-datagram", o.ops_per_dgram,
                 "ops in each measured request datagram (native protocol; ops/s counts ops)")
      ->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  if (o.ops_per_dgram > 1 && o.protocol != "native") return die("--ops-per-datagram > 1 needs --protocol native");
  // Request and reply each stay one datagram (no fragmentation in the measurement).
  if (o.ops_per_dgram * (proto::kOpHeaderSize + key_of(0).size() + o.value) > 1440) {
    return die("--ops-per-datagram x (24 + key + --value) exceeds one datagram's 1440 bytes");
  }
  if (!server.empty()) {
    auto addr = parse_host_port(server);
    if (!addr) return die("--server: " + std::string(addr.status().message()));
    o.server_ip = addr->host;
    o.server_port = addr->port;
  }

  if (Status s = perf::eal_init("dpdk_loadgen", o.eal); !s.is_ok()) return die(s.to_string());

  Gen g;
  g.o = o;
  g.port = o.port;
  {
    // The TSC rate DPDK assumed, checked against the monotonic clock (VMs can be off).
    const auto w0 = std::chrono::steady_clock::now();
    const uint64_t c0 = rte_rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t c1 = rte_rdtsc();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    const double measured = static_cast<double>(c1 - c0) / wall;
    g.hz = rte_get_tsc_hz();
    if (std::abs(measured - static_cast<double>(g.hz)) > 0.02 * measured) {
      std::fprintf(stderr, "dpdk_loadgen: TSC %.0f Hz measured, DPDK assumed %llu: using the measured rate\n", measured,
                   static_cast<unsigned long long>(g.hz));
      g.hz = static_cast<uint64_t>(measured);
    }
  }
  g.value.assign(o.value, 'v');
  g.memcached = o.protocol == "memcached";
  {
    auto dp = perf::open_port(g.port, o.mac, "lg_mbufs");
    if (!dp) return die(dp.status().to_string());
    g.pool = dp->pool;
    g.me.mac = dp->mac;
  }
  in_addr a{};
  if (inet_pton(AF_INET, o.ip.c_str(), &a) != 1) return die("bad --ip");
  g.me.ip = a.s_addr;
  if (inet_pton(AF_INET, o.server_ip.c_str(), &a) != 1) return die("bad --server-ip");
  g.server_ip = a.s_addr;
  g.me.port = htons(o.src_port);
  const uint64_t hz = g.hz;
  auto now = [] { return rte_rdtsc(); };

  // 1. ARP for the server (memif links come up when the peer connects: keep asking), 10 s at most.
  const fr::Mac zero{};
  for (uint64_t t0 = now(), last = 0; g.server_mac == zero;) {
    if (now() - t0 > 10 * hz) return die("no ARP reply from " + o.server_ip);
    if (now() - last > hz / 10) {
      g.queue_arp_request();
      g.flush();
      last = now();
    }
    g.poll([](const proto::Header&, std::span<const uint8_t>) {});
  }
  // 2. Cookie.
  for (uint64_t t0 = now(), last = 0; g.cookie == 0 && !g.memcached;) {
    if (now() - t0 > 5 * hz) return die("no cookie from the server (is our address in server.allow?)");
    if (now() - last > hz / 10) {
      g.send_hello();
      g.flush();
      last = now();
    }
    g.poll([&](const proto::Header& h, std::span<const uint8_t>) {
      if (h.type == proto::MsgType::kCookie) g.cookie = h.cookie;
    });
  }
  // 3. Preload: SETs of 16 keys per request, 8 requests outstanding, retried until acknowledged.
  if (o.preload) {
    const uint64_t per = g.memcached ? 1 : 16;  // memcached: one command per datagram
    std::vector<std::string> ks(16);
    std::vector<proto::RequestOp> ops(16);
    struct Pending {
      uint64_t first = 0;
      uint64_t sent = 0;
    };
    std::vector<std::pair<uint64_t, Pending>> inflight;  // request id -> batch
    uint64_t next_key = 0, acked = 0;
    auto send_batch = [&](uint64_t first) {
      std::size_t n = 0;
      for (uint64_t k = first; k < std::min(o.keys, first + per); ++k, ++n) {
        ks[n] = key_of(k);
        ops[n] = proto::RequestOp{};
        ops[n].opcode = proto::Opcode::kSet;
        ops[n].key = ks[n];
        ops[n].value = g.value;
      }
      const uint64_t id = g.send_request(std::span<const proto::RequestOp>(ops.data(), n));
      if (id != 0) inflight.push_back({id, Pending{first, now()}});
    };
    const uint64_t t0 = now();
    while (acked < o.keys) {
      if (now() - t0 > 60 * hz) return die("preload did not finish in 60 s");
      while (inflight.size() < 8 && next_key < o.keys) {
        send_batch(next_key);
        next_key += per;
      }
      std::vector<uint64_t> resend;  // lost: the same keys again under a new id
      for (auto& e : inflight) {
        if (now() - e.second.sent > hz / 10) {
          resend.push_back(e.second.first);
          e.first = 0;
        }
      }
      inflight.erase(std::remove_if(inflight.begin(), inflight.end(), [](auto& e) { return e.first == 0; }),
                     inflight.end());
      for (uint64_t first : resend) send_batch(first);
      g.flush();
      g.poll([&](const proto::Header& h, std::span<const uint8_t>) {
        if (h.type != proto::MsgType::kResponse) return;
        for (auto& e : inflight) {
          if (e.first != 0 && g.matches(e.first, h.request_id)) {
            acked += std::min<uint64_t>(per, o.keys - e.second.first);
            e.first = 0;
          }
        }
        inflight.erase(std::remove_if(inflight.begin(), inflight.end(), [](auto& e) { return e.first == 0; }),
                       inflight.end());
      });
    }
  }

  // 4. Measurement.
  g.slots.resize(1 << 16);
  std::vector<std::string> mkeys(o.ops_per_dgram);
  std::vector<proto::RequestOp> mops(o.ops_per_dgram);
  const uint64_t stall_tsc = static_cast<uint64_t>(o.stall_us * static_cast<double>(hz) / 1e6);
  auto issue = [&](uint64_t stamp) -> bool {
    for (unsigned k = 0; k < o.ops_per_dgram; ++k) {
      mkeys[k] = key_of(g.rng() % o.keys);
      proto::RequestOp& op = mops[k];
      op = proto::RequestOp{};
      op.key = mkeys[k];
      if (o.get_ratio >= 1.0 || std::uniform_real_distribution<double>(0, 1)(g.rng) < o.get_ratio) {
        op.opcode = proto::Opcode::kGet;
      } else {
        op.opcode = proto::Opcode::kSet;
        op.value = g.value;
      }
    }
    const uint64_t id = g.send_request(mops);
    if (id == 0) return false;  // no mbuf this round
    auto& s = g.slots[id % g.slots.size()];
    if (s.sent_tsc != 0) {  // an ancient request in the way: lost
      if (g.measuring) ++g.lost;
      --g.outstanding;
    }
    s.id = id;
    s.sent_tsc = stamp;
    ++g.outstanding;
    if (g.measuring) ++g.sent;
    return true;
  };
  auto on_reply = [&](const proto::Header& h, std::span<const uint8_t> payload) {
    if (h.type != proto::MsgType::kResponse) {
      if (h.type == proto::MsgType::kCookie) g.cookie = h.cookie;
      return;
    }
    auto& s = g.slots[h.request_id % g.slots.size()];
    if (s.sent_tsc == 0 || !g.matches(s.id, h.request_id)) return;  // late duplicate
    const uint64_t lat = now() - s.sent_tsc;
    s.sent_tsc = 0;
    --g.outstanding;
    if (!g.measuring) return;
    ++g.done;
    g.record(lat);
    if (stall_tsc != 0 && lat > stall_tsc && g.slow.size() < (1u << 22)) g.slow.emplace_back(now() - lat, lat);
    if (g.memcached) {
      const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
      if (text.starts_with("VALUE") || text.starts_with("STORED")) {
        ++g.hits;
      } else if (text.starts_with("END")) {
        ++g.misses;
      } else {
        ++g.errors;
      }
      ++g.ops_done;
      return;
    }
    // One response op per request op; a reply short of ops counts the missing ones as errors.
    proto::ResponseReader rr(payload);
    proto::ResponseOp rop;
    unsigned got = 0;
    while (got < o.ops_per_dgram && rr.next(&rop) == Result::kOk) {
      ++got;
      if (rop.status == proto::OpStatus::kOk) {
        ++g.hits;
      } else if (rop.status == proto::OpStatus::kNotFound) {
        ++g.misses;
      } else {
        ++g.errors;
      }
    }
    g.errors += o.ops_per_dgram - got;
    g.ops_done += got;
  };
  const bool open = o.mode == "open";
  const uint64_t interval =  // --rate counts ops: one datagram per ops_per_dgram of them
      open ? std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(hz) * o.ops_per_dgram / o.rate)) : 0;
  const uint64_t start = now();
  const uint64_t measure_from = start + static_cast<uint64_t>(o.warmup * static_cast<double>(hz));
  const uint64_t end = measure_from + static_cast<uint64_t>(o.seconds * static_cast<double>(hz));
  const uint64_t timeout = hz / 10;
  uint64_t next_send = start, issued = 0, last_t = start;
  std::size_t scan_at = 0;
  while (true) {
    const uint64_t t = now();
    if (stall_tsc != 0 && g.measuring && t - last_t > stall_tsc / 2 && g.gaps.size() < (1u << 22)) {
      g.gaps.emplace_back(last_t, t - last_t);
    }
    last_t = t;
    if (t >= end || issued >= o.max_requests) break;
    if (!g.measuring && t >= measure_from) g.measuring = true;
    if (open) {
      // Every request whose time has come, stamped with its scheduled time.
      unsigned k = 0;
      while (next_send <= t && k < 64 && g.outstanding < g.slots.size() / 2) {
        if (!issue(next_send)) break;
        next_send += interval;
        ++k;
        ++issued;
      }
      if (next_send <= t && g.outstanding >= g.slots.size() / 2) next_send = t;  // saturated: do not pile up
    } else {
      while (g.outstanding < o.window && issue(t)) ++issued;
    }
    g.flush();
    for (int d = 0; d < 8 && g.poll(on_reply) == 64; ++d) {
    }  // drain what arrived (up to 8 bursts) before sending more
    // Requests unanswered for 100 ms are lost. A few slots per turn, not all
    // 64 Ki at once: a whole pass would be a stall of its own in the figures.
    for (int k = 0; k < 8; ++k, scan_at = (scan_at + 1) % g.slots.size()) {
      auto& s = g.slots[scan_at];
      if (s.sent_tsc != 0 && t - s.sent_tsc > timeout && s.sent_tsc < t) {
        s.sent_tsc = 0;
        --g.outstanding;
        if (g.measuring) ++g.lost;
      }
    }
  }
  const double secs = static_cast<double>(now() - measure_from) / static_cast<double>(g.hz);
  const double ops = static_cast<double>(g.ops_done) / secs;
  const double dgrams = static_cast<double>(g.done) / secs;
  const std::string offered = open ? std::to_string(static_cast<uint64_t>(o.rate)) : "closed W=" + std::to_string(o.window);
  std::printf("| %s | %s | %.0f | %.1f | %.1f | %.1f | %llu | %llu |\n", o.label.c_str(), offered.c_str(), ops,
              g.percentile(0.50), g.percentile(0.99), g.percentile(0.999), static_cast<unsigned long long>(g.lost),
              static_cast<unsigned long long>(g.errors + g.misses));
  std::printf("RESULT label=%s mode=%s ops_per_dgram=%u ops_per_s=%.0f dgrams_per_s=%.0f p50_us=%.2f p99_us=%.2f "
              "p999_us=%.2f lost=%llu misses=%llu errors=%llu\n",
              o.label.c_str(), o.mode.c_str(), o.ops_per_dgram, ops, dgrams, g.percentile(0.50), g.percentile(0.99),
              g.percentile(0.999), static_cast<unsigned long long>(g.lost), static_cast<unsigned long long>(g.misses),
              static_cast<unsigned long long>(g.errors));
  std::fflush(stdout);
  if (stall_tsc != 0) report_stalls(g.slow, g.gaps, measure_from, hz, o.stall_us);
  perf::close_port_and_eal(g.port, o.eal);
  return 0;
}
