// DPDK poll-mode backend (see dpdk_backend.h).
#include "net/dpdk_backend.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "net/dpdk_guard.h"

namespace ferrite::net {

namespace {

// The EAL can be initialised once per process (and not again after cleanup).
std::atomic<bool> g_eal_used{false};

bool has_arg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (const std::string& a : args) {
    for (const char* n : names) {
      const std::size_t len = std::strlen(n);
      if (a == n || (a.compare(0, len, n) == 0 && (a.size() > len && (a[len] == '=' || n[1] != '-')))) return true;
    }
  }
  return false;
}

const char* dpdk_log_level(const std::string& ferrite_level) {
  if (ferrite_level == "debug") return "8";
  if (ferrite_level == "error") return "4";
  if (ferrite_level == "off") return "1";
  return "5";  // info and warn: DPDK's warnings and worse (its "info" is very chatty)
}

}  // namespace

void remove_dpdk_runtime_dir(const std::string& dir) {
  if (dir.empty()) return;
  // Only the sockets this process created (telemetry, multi-process), then
  // the directory if that left it empty; anything else stays.
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind("dpdk_telemetry", 0) == 0 || name == "mp_socket") (void)::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  (void)::rmdir(dir.c_str());
}

namespace {

// A worker's counters have one writer (the worker): a relaxed load and store
// instead of a locked read-modify-write per packet; readers see whole values.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

constexpr unsigned kMaxTxRetries = 256;  // zero-progress tx_burst calls before unsent replies are dropped
constexpr std::size_t kMaxNeighbors = 1 << 16;

}  // namespace

struct DpdkBackend::Impl {
  DpdkBackendOptions opts;
  PacketHandler* handler = nullptr;
  uint16_t port = 0;
  std::string port_name;
  std::string driver;
  rte_mempool* pool = nullptr;
  frame::Local local;
  frame::TxCsum tx_csum = frame::TxCsum::kSoftware;
  bool rx_ip_offload = false, rx_udp_offload = false;
  bool rss = false;
  uint16_t mtu = 1500;
  uint16_t rx_desc = 1024, tx_desc = 1024;
  std::vector<unsigned> lcores;  // worker w runs on lcores[w]
  std::unique_ptr<DpdkWorkerStats[]> stats;
  std::atomic<bool> stop{false};
  bool running = false;
  bool port_started = false;

  struct LaunchArg {
    Impl* impl;
    unsigned w;
  };
  std::vector<LaunchArg> args;

  static int launch(void* p) {
    auto* a = static_cast<LaunchArg*>(p);
    a->impl->run(a->w);
    return 0;
  }
  void run(unsigned w);
  Status init_eal();
  Status init_port();
};

Status DpdkBackend::Impl::init_eal() {
  if (g_eal_used.exchange(true)) return Status::invalid_argument("the DPDK EAL is already initialised in this process");
  std::vector<std::string> argv_s = {"ferrited"};
  argv_s.insert(argv_s.end(), opts.eal_args.begin(), opts.eal_args.end());
  if (!has_arg(opts.eal_args, {"-l", "-c", "--lcores"})) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    const unsigned ncpu = n > 0 ? static_cast<unsigned>(n) : 1;
    std::string map;
    if (opts.pin_cores) {
      for (unsigned i = 0; i <= opts.workers; ++i) map += fmt::format("{}{}@{}", i ? "," : "", i, i % ncpu);
    } else {
      map = fmt::format("(0-{})@(0-{})", opts.workers, ncpu - 1);
    }
    argv_s.push_back("--lcores=" + map);
  }
  if (!has_arg(opts.eal_args, {"--log-level"})) argv_s.push_back(std::string("--log-level=") + dpdk_log_level(opts.log_level));
  std::string line;
  for (const auto& a : argv_s) line += (line.empty() ? "" : " ") + a;
  log_info("dpdk: EAL arguments: {}", line);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int r = rte_eal_init(static_cast<int>(argv_s.size()), argv.data());
  if (r < 0) {
    return Status::invalid_argument(
        fmt::format("dpdk: EAL initialisation failed ({}) with arguments: {} (check dpdk.eal_args: hugepages or "
                    "--no-huge -m N --no-shconf, --in-memory with hugepages, a unique --file-prefix, the --vdev/-a device)",
                    rte_strerror(rte_errno), line));
  }
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) {
    if (lcores.size() < opts.workers) lcores.push_back(lc);
  }
  if (lcores.size() < opts.workers) {
    return Status::invalid_argument(fmt::format(
        "dpdk: server.workers = {} needs {} worker lcores plus the main lcore, the EAL has {} worker lcore(s) "
        "(see -l/--lcores in dpdk.eal_args)",
        opts.workers, opts.workers, lcores.size()));
  }
  return Status::ok();
}

Status DpdkBackend::Impl::init_port() {
  if (!rte_eth_dev_is_valid_port(port)) {
    return Status::invalid_argument(fmt::format(
        "dpdk.port = {} is not a DPDK port: {} port(s) available (bind a NIC with dpdk-devbind.py or add a "
        "--vdev to dpdk.eal_args)",
        port, rte_eth_dev_count_avail()));
  }
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  (void)rte_eth_dev_get_name_by_port(port, name);
  port_name = name;
  rte_eth_dev_info info{};
  if (int r = rte_eth_dev_info_get(port, &info); r != 0) {
    return Status::io_error(fmt::format("dpdk: port {}: cannot read device info ({})", port, rte_strerror(-r)));
  }
  driver = info.driver_name != nullptr ? info.driver_name : "?";
  dpdk_guard::enable_for_driver(info.driver_name);  // net_memif unmaps its rings under the pollers
  const unsigned q = opts.workers;
  if (info.max_rx_queues < q || info.max_tx_queues < q) {
    return Status::invalid_argument(fmt::format(
        "dpdk: port {} ({}) has {} rx / {} tx queues; server.workers = {} needs one pair per worker", port,
        port_name, info.max_rx_queues, info.max_tx_queues, q));
  }
  rte_eth_conf conf{};
  if (q > 1) {
    const uint64_t want = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
    const uint64_t hf = want & info.flow_type_rss_offloads;
    if (hf != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = hf;
      rss = true;
    } else {
      log_warn("dpdk: port {} ({}) has no RSS for IPv4/UDP: which queue a flow reaches is up to the peer", port,
               port_name);
    }
  }
  const uint64_t rxo = info.rx_offload_capa;
  rx_ip_offload = (rxo & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
  rx_udp_offload = (rxo & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) != 0;
  if (rx_ip_offload) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
  if (rx_udp_offload) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  const uint64_t txo = info.tx_offload_capa;
  if ((txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) && (txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM)) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    tx_csum = frame::TxCsum::kOffload;
  }
  if (int r = rte_eth_dev_configure(port, static_cast<uint16_t>(q), static_cast<uint16_t>(q), &conf); r != 0) {
    return Status::io_error(fmt::format("dpdk: port {} ({}): configure with {} queue pair(s) failed ({})", port,
                                        port_name, q, rte_strerror(-r)));
  }
  // Descriptors: at most half the mbufs sit in rings, the rest carry bursts
  // and multi-datagram replies.
  uint16_t desc = 1024;
  while (desc > 64 && static_cast<uint64_t>(q) * 2 * desc > opts.mbufs / 2) desc = static_cast<uint16_t>(desc / 2);
  rx_desc = tx_desc = desc;
  (void)rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_desc, &tx_desc);

  const unsigned cache = std::min<unsigned>(256, opts.mbufs / (4 * (q + 1)));
  pool = rte_pktmbuf_pool_create("ferrite_mbufs", opts.mbufs, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                 static_cast<int>(rte_eth_dev_socket_id(port) < 0 ? rte_socket_id()
                                                                                   : static_cast<unsigned>(rte_eth_dev_socket_id(port))));
  if (pool == nullptr) {
    return Status::no_space(fmt::format(
        "dpdk: cannot create a pool of {} mbufs ({}): raise the EAL memory (-m) or hugepages, or lower dpdk.mbufs",
        opts.mbufs, rte_strerror(rte_errno)));
  }
  const int sock = rte_eth_dev_socket_id(port);
  for (unsigned i = 0; i < q; ++i) {
    rte_eth_rxconf rxc = info.default_rxconf;
    rxc.offloads = conf.rxmode.offloads;
    if (int r = rte_eth_rx_queue_setup(port, static_cast<uint16_t>(i), rx_desc, static_cast<unsigned>(sock < 0 ? 0 : sock), &rxc, pool); r != 0) {
      return Status::io_error(fmt::format("dpdk: port {}: rx queue {} setup failed ({})", port, i, rte_strerror(-r)));
    }
    rte_eth_txconf txc = info.default_txconf;
    txc.offloads = conf.txmode.offloads;
    if (int r = rte_eth_tx_queue_setup(port, static_cast<uint16_t>(i), tx_desc, static_cast<unsigned>(sock < 0 ? 0 : sock), &txc); r != 0) {
      return Status::io_error(fmt::format("dpdk: port {}: tx queue {} setup failed ({})", port, i, rte_strerror(-r)));
    }
  }
  rte_ether_addr ea{};
  if (!opts.mac.empty()) {
    frame::Mac m{};
    if (!frame::parse_mac(opts.mac, &m)) return Status::invalid_argument(fmt::format("dpdk.mac = \"{}\" is not a MAC", opts.mac));
    std::memcpy(ea.addr_bytes, m.data(), 6);
    if (rte_eth_dev_default_mac_addr_set(port, &ea) != 0) {
      // The port keeps its own filter address: receive everything instead.
      log_warn("dpdk: port {} cannot take MAC {}; promiscuous mode on", port, opts.mac);
      (void)rte_eth_promiscuous_enable(port);
    }
    local.mac = m;
  } else {
    if (int r = rte_eth_macaddr_get(port, &ea); r != 0) {
      return Status::io_error(fmt::format("dpdk: port {}: cannot read its MAC ({})", port, rte_strerror(-r)));
    }
    std::memcpy(local.mac.data(), ea.addr_bytes, 6);
  }
  in_addr a{};
  if (::inet_pton(AF_INET, opts.ip.c_str(), &a) != 1) return Status::invalid_argument(fmt::format("dpdk.ip = \"{}\" is not an IPv4 address", opts.ip));
  local.ip = a.s_addr;
  local.port = htons(opts.udp_port);
  if (opts.second_handler != nullptr && opts.second_udp_port != 0) local.port2 = htons(opts.second_udp_port);
  if (rte_eth_dev_get_mtu(port, &mtu) != 0) mtu = 1500;
  if (opts.max_datagram + frame::kIpHeader + frame::kUdpHeader > mtu) {
    return Status::invalid_argument(fmt::format(
        "server.max_datagram = {} does not fit port {}'s MTU {} (allowed up to {}); the DPDK backend never "
        "fragments",
        opts.max_datagram, port, mtu, mtu - frame::kIpHeader - frame::kUdpHeader));
  }
  if (int r = rte_eth_dev_start(port); r != 0) {
    return Status::io_error(fmt::format("dpdk: port {} ({}): start failed ({})", port, port_name, rte_strerror(-r)));
  }
  port_started = true;
  return Status::ok();
}

StatusOr<std::unique_ptr<DpdkBackend>> DpdkBackend::create(const DpdkBackendOptions& opts, PacketHandler& handler) {
  if (opts.workers == 0 || opts.workers > 63) return Status::invalid_argument("workers must be 1..63");
  if (opts.burst == 0 || opts.burst > 512) return Status::invalid_argument("dpdk.burst must be 1..512");
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->handler = &handler;
  impl->port = opts.port_id;
  FERRITE_RETURN_IF_ERROR(impl->init_eal());
  std::unique_ptr<DpdkBackend> b(new DpdkBackend(std::move(impl)));  // from here on the destructor cleans up
  FERRITE_RETURN_IF_ERROR(b->impl_->init_port());
  b->impl_->stats.reset(new DpdkWorkerStats[opts.workers]);
  return b;
}

DpdkBackend::DpdkBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DpdkBackend::~DpdkBackend() {
  stop();
  if (impl_->port_started) {
    (void)rte_eth_dev_stop(impl_->port);
    (void)rte_eth_dev_close(impl_->port);
  }
  if (impl_->pool != nullptr) rte_mempool_free(impl_->pool);
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  (void)rte_eal_cleanup();
  // Without shared config no other process can attach to this instance:
  // leave nothing behind in /var/run/dpdk.
  if (has_arg(impl_->opts.eal_args, {"--no-shconf", "--in-memory"})) remove_dpdk_runtime_dir(runtime_dir);
}

void DpdkBackend::start() {
  Impl& m = *impl_;
  if (m.running) return;
  m.stop.store(false, std::memory_order_relaxed);
  m.args.clear();
  for (unsigned w = 0; w < m.opts.workers; ++w) m.args.push_back(Impl::LaunchArg{&m, w});
  for (unsigned w = 0; w < m.opts.workers; ++w) (void)rte_eal_remote_launch(&Impl::launch, &m.args[w], m.lcores[w]);
  m.running = true;
}

void DpdkBackend::stop() {
  Impl& m = *impl_;
  if (!m.running) return;
  m.stop.store(true, std::memory_order_relaxed);
  for (unsigned w = 0; w < m.opts.workers; ++w) (void)rte_eal_wait_lcore(m.lcores[w]);
  m.running = false;
}

unsigned DpdkBackend::workers() const noexcept { return impl_->opts.workers; }
const DpdkWorkerStats& DpdkBackend::stats(unsigned w) const { return impl_->stats[w]; }
std::string DpdkBackend::mac() const { return frame::mac_string(impl_->local.mac); }

std::string DpdkBackend::describe() const {
  const Impl& m = *impl_;
  return fmt::format("port {} ({}, driver {}) mac {} ip {} udp {}, {} queue pair(s) of {}/{} descriptors, rss {}, "
                     "rx checksum offload ip {} udp {}, tx checksum {}, mtu {}",
                     m.port, m.port_name, m.driver, mac(), m.opts.ip, m.opts.udp_port, m.opts.workers, m.rx_desc,
                     m.tx_desc, m.rss ? "on" : "off", m.rx_ip_offload ? "on" : "off", m.rx_udp_offload ? "on" : "off",
                     m.tx_csum == frame::TxCsum::kOffload ? "offload" : "software", m.mtu);
}

void DpdkBackend::add_stats(stats::Registry& reg) const {
  const Impl& m = *impl_;
  uint64_t mac48 = 0;  // every stats value is a number: the MAC as a 48-bit integer
  for (uint8_t b : m.local.mac) mac48 = mac48 << 8 | b;
  reg.gauge("dpdk_mac", "the port's MAC address as a 48-bit integer", [mac48] { return mac48; });
  reg.gauge("dpdk_port_id", "DPDK port id", [&m = *impl_] { return m.port; });
  // The link and port figures are left out of a sample when the PMD cannot report them.
  struct Link {
    bool ok;
    rte_eth_link link;
  };
  reg.section<Link>([&m = *impl_] {
       Link l{false, {}};
       l.ok = rte_eth_link_get_nowait(m.port, &l.link) == 0;
       return l;
     })
      .gauge("dpdk_link_up", "1 when the link is up",
             [](const Link& l) { return l.ok ? std::optional<uint64_t>(l.link.link_status) : std::nullopt; })
      .gauge("dpdk_link_speed_mbps", "link speed",
             [](const Link& l) { return l.ok ? std::optional<uint64_t>(l.link.link_speed) : std::nullopt; });
  // net/dpdk_guard.h: munmap()s (a memif peer leaving) that waited for a worker's burst call.
  reg.gauge("dpdk_guard_enabled", "1 when munmap() waits for workers' burst calls",
            [] { return dpdk_guard::enabled() ? 1 : 0; });
  reg.counter("dpdk_guard_waited_unmaps", "munmap()s that waited for a worker's burst call",
              [] { return dpdk_guard::waited_unmaps(); });
  struct Port {
    bool ok;
    rte_eth_stats st;
  };
  auto port = reg.section<Port>([&m = *impl_] {
    Port p{false, {}};
    p.ok = rte_eth_stats_get(m.port, &p.st) == 0;
    return p;
  });
  auto port_counter = [&port](std::string name, std::string help, auto field) {
    port.counter(std::move(name), std::move(help),
                 [field](const Port& p) { return p.ok ? std::optional<uint64_t>(field(p.st)) : std::nullopt; });
  };
  port_counter("dpdk_port_ipackets", "packets the port received", [](const rte_eth_stats& s) { return s.ipackets; });
  port_counter("dpdk_port_opackets", "packets the port sent", [](const rte_eth_stats& s) { return s.opackets; });
  port_counter("dpdk_port_ibytes", "bytes the port received", [](const rte_eth_stats& s) { return s.ibytes; });
  port_counter("dpdk_port_obytes", "bytes the port sent", [](const rte_eth_stats& s) { return s.obytes; });
  port_counter("dpdk_port_imissed", "packets dropped by the port: RX queue full", [](const rte_eth_stats& s) { return s.imissed; });
  port_counter("dpdk_port_ierrors", "erroneous packets received", [](const rte_eth_stats& s) { return s.ierrors; });
  port_counter("dpdk_port_oerrors", "failed transmissions", [](const rte_eth_stats& s) { return s.oerrors; });
  port_counter("dpdk_port_rx_nombuf", "RX mbuf allocation failures", [](const rte_eth_stats& s) { return s.rx_nombuf; });
  for (unsigned q = 0; q < m.opts.workers && q < RTE_ETHDEV_QUEUE_STAT_CNTRS; ++q) {
    port_counter(fmt::format("dpdk_q{}_ipackets", q), "packets received on this queue",
                 [q](const rte_eth_stats& s) { return s.q_ipackets[q]; });
    port_counter(fmt::format("dpdk_q{}_opackets", q), "packets sent on this queue",
                 [q](const rte_eth_stats& s) { return s.q_opackets[q]; });
    port_counter(fmt::format("dpdk_q{}_errors", q), "errors on this queue", [q](const rte_eth_stats& s) { return s.q_errors[q]; });
  }
  if (m.pool != nullptr) {
    reg.gauge("dpdk_mbufs_free", "mbufs free in the pool", [&m = *impl_] { return rte_mempool_avail_count(m.pool); });
  }
  using W = DpdkWorkerStats;
  const stats::Workers<W> w{[&m = *impl_] { return std::size_t{m.opts.workers}; },
                            [&m = *impl_](std::size_t i) -> const W& { return m.stats[i]; }};
  reg.counter("dpdk_rx_packets", "packets received by the workers", w.summed(&W::rx_packets));
  reg.counter("dpdk_rx_datagrams", "UDP datagrams handed to the handlers", w.summed(&W::rx_datagrams));
  reg.counter("dpdk_tx_packets", "packets sent by the workers", w.summed(&W::tx_packets));
  reg.counter("dpdk_tx_dropped", "replies the TX queue did not take after retries", w.summed(&W::tx_dropped));
  reg.counter("dpdk_tx_nombuf", "replies without an mbuf", w.summed(&W::tx_nombuf));
  reg.counter("dpdk_tx_no_neighbor", "replies to an address whose MAC was never seen", w.summed(&W::tx_no_neighbor));
  reg.counter("dpdk_reply_reused", "replies sent in the request's mbuf", w.summed(&W::reply_reused));
  reg.counter("dpdk_reply_allocated", "replies sent in a fresh mbuf", w.summed(&W::reply_allocated));
  reg.counter("dpdk_arp_replies", "ARP requests answered", w.summed(&W::arp_replies));
  reg.counter("dpdk_icmp_echo_replies", "ICMP echo requests answered", w.summed(&W::icmp_echo_replies));
  for (std::size_t d = 1; d < static_cast<std::size_t>(frame::Drop::kCount); ++d) {
    reg.counter(std::string("dpdk_drop_") + frame::drop_name(static_cast<frame::Drop>(d)), "packets dropped for this reason (net/frame.h)",
                [w, d] { return w.sum_by([d](const W& s) { return s.drops[d].load(std::memory_order_relaxed); }); });
  }
  for (std::size_t i = 0; i < m.opts.workers; ++i) {
    reg.counter(fmt::format("worker{}_rx_packets", i), "packets this worker received", [w, i] { return w.of(i, &W::rx_packets); });
    reg.counter(fmt::format("worker{}_tx_packets", i), "packets this worker sent", [w, i] { return w.of(i, &W::tx_packets); });
    reg.counter(fmt::format("worker{}_tx_errors", i), "replies this worker dropped (TX queue full, no mbuf)",
                [w, i] { return w.of(i, &W::tx_dropped) + w.of(i, &W::tx_nombuf); });
  }
}

namespace {

frame::Csum ip_csum_flag(uint64_t f) {
  switch (f & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD: return frame::Csum::kGood;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD: return frame::Csum::kBad;
    default: return frame::Csum::kUnknown;
  }
}

frame::Csum l4_csum_flag(uint64_t f) {
  switch (f & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD: return frame::Csum::kGood;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD: return frame::Csum::kBad;
    default: return frame::Csum::kUnknown;
  }
}

struct NeighborHash {
  std::size_t operator()(uint32_t ip) const noexcept { return ip * 0x9e3779b97f4a7c15ull >> 16; }
};

}  // namespace

void DpdkBackend::Impl::run(unsigned w) {
  const uint16_t q = static_cast<uint16_t>(w);
  const unsigned burst = opts.burst;
  DpdkWorkerStats& st = stats[w];
  std::vector<rte_mbuf*> rx(burst);
  std::vector<Datagram> in, in2;   // to local.port, to local.port2
  std::vector<rte_mbuf*> held, held2;  // mbufs whose payload is in `in` / `in2` (same order)
  std::vector<uint8_t> held_used;
  PacketHandler* const handler2 = local.port2 != 0 ? opts.second_handler : nullptr;
  std::vector<rte_mbuf*> tx;
  in.reserve(burst);
  held.reserve(burst);
  TxQueue out, out2;
  // Who is behind an IPv4 address: learned from every frame that passed
  // validation, used for replies that need a fresh mbuf.
  std::unordered_map<uint32_t, frame::Mac, NeighborHash> neighbors;
  uint16_t ip_id = static_cast<uint16_t>(w << 12);
  unsigned idle = 0;
  const uint64_t tx_flags = tx_csum == frame::TxCsum::kOffload
                                ? (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM)
                                : 0;

  auto learn = [&](const frame::Parsed& p) {
    if (!p.learned) return;
    if (neighbors.size() >= kMaxNeighbors) neighbors.clear();
    neighbors[p.src_ip] = p.src_mac;
  };
  auto fill_udp = [&](rte_mbuf* mb, const frame::Mac& dst_mac, const sockaddr_in& peer, std::span<const uint8_t> b,
                      uint16_t src_port) {
    uint8_t* f = rte_pktmbuf_mtod(mb, uint8_t*);
    if (!b.empty()) std::memcpy(f + frame::kUdpHeaders, b.data(), b.size());
    const std::size_t len = frame::write_udp(f, local.mac, dst_mac, local.ip, peer.sin_addr.s_addr, src_port,
                                             peer.sin_port, b.size(), ip_id++, tx_csum);
    mb->data_len = static_cast<uint16_t>(len);
    mb->pkt_len = static_cast<uint32_t>(len);
    mb->nb_segs = 1;
    mb->next = nullptr;
    mb->ol_flags = tx_flags;
    mb->l2_len = frame::kEthHeader;
    mb->l3_len = frame::kIpHeader;
  };
  auto send = [&]() {
    std::size_t sent = 0;
    unsigned stalls = 0;
    while (sent < tx.size()) {
      const uint16_t n = static_cast<uint16_t>(std::min<std::size_t>(tx.size() - sent, burst));
      const uint16_t k = dpdk_guard::tx_burst(port, q, tx.data() + sent, n);
      for (uint16_t i = 0; i < k; ++i) bump(st.tx_bytes, tx[sent + i]->pkt_len);
      sent += k;
      bump(st.tx_packets, k);
      if (k == 0) {
        if (++stalls > kMaxTxRetries) break;
        rte_pause();
      } else {
        stalls = 0;
      }
    }
    if (sent < tx.size()) {
      // Counted and dropped: UDP promises no delivery, the client retries.
      bump(st.tx_dropped, tx.size() - sent);
      rte_pktmbuf_free_bulk(tx.data() + sent, static_cast<unsigned>(tx.size() - sent));
    }
    tx.clear();
  };

  // Sends the replies of one handler's burst: in place in a request's mbuf
  // when one from the same peer is left, else in a fresh mbuf.
  auto reply_all = [&](const std::vector<Datagram>& reqs, const std::vector<rte_mbuf*>& mbufs, const TxQueue& replies,
                       uint16_t src_port) {
    held_used.assign(mbufs.size(), 0);
    std::size_t cursor = 0;  // replies mostly come in request order
    for (std::size_t r = 0; r < replies.size(); ++r) {
      const sockaddr_in& peer = replies.peer(r);
      const std::span<const uint8_t> b = replies.bytes(r);
      rte_mbuf* mb = nullptr;
      for (std::size_t k = 0; k < mbufs.size() && mb == nullptr; ++k) {
        const std::size_t j = (cursor + k) % mbufs.size();
        if (!held_used[j] && reqs[j].peer.sin_addr.s_addr == peer.sin_addr.s_addr &&
            reqs[j].peer.sin_port == peer.sin_port &&
            static_cast<std::size_t>(mbufs[j]->buf_len - mbufs[j]->data_off) >= frame::kUdpHeaders + b.size()) {
          held_used[j] = 1;
          cursor = j + 1;
          mb = mbufs[j];
        }
      }
      if (mb != nullptr) {
        // In place: back to where the request came from (its source MAC).
        frame::Mac dst{};
        std::memcpy(dst.data(), rte_pktmbuf_mtod_offset(mb, uint8_t*, 6), 6);
        fill_udp(mb, dst, peer, b, src_port);
        bump(st.reply_reused, 1);
        tx.push_back(mb);
        continue;
      }
      auto it = neighbors.find(peer.sin_addr.s_addr);
      if (it == neighbors.end()) {
        bump(st.tx_no_neighbor, 1);
        continue;
      }
      mb = rte_pktmbuf_alloc(pool);
      if (mb == nullptr || rte_pktmbuf_tailroom(mb) < frame::kUdpHeaders + b.size()) {
        if (mb != nullptr) rte_pktmbuf_free(mb);
        bump(st.tx_nombuf, 1);
        continue;
      }
      fill_udp(mb, it->second, peer, b, src_port);
      bump(st.reply_allocated, 1);
      tx.push_back(mb);
      if (tx.size() >= 4 * static_cast<std::size_t>(burst)) send();  // long replies: keep mbufs flowing
    }
    for (std::size_t j = 0; j < mbufs.size(); ++j) {
      if (!held_used[j]) rte_pktmbuf_free(mbufs[j]);
    }
  };

  while (!stop.load(std::memory_order_relaxed)) {
    const uint16_t n = dpdk_guard::rx_burst(port, q, rx.data(), static_cast<uint16_t>(burst));
    if (n == 0) {
      handler->on_idle(w);
      if (handler2 != nullptr) handler2->on_idle(w);
      if (opts.idle_sleep_us != 0 && ++idle >= 1024) {
        std::this_thread::sleep_for(std::chrono::microseconds(opts.idle_sleep_us));
      }
      continue;
    }
    idle = 0;
    bump(st.bursts, 1);
    bump(st.rx_packets, n);
    in.clear();
    held.clear();
    in2.clear();
    held2.clear();
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* mb = rx[i];
      bump(st.rx_bytes, mb->pkt_len);
      frame::Parsed p;
      if (mb->nb_segs != 1) {
        p.drop = frame::Drop::kTruncated;  // scattered RX is off: a frame larger than one mbuf is cut
      } else {
        p = frame::parse(rte_pktmbuf_mtod(mb, uint8_t*), mb->data_len, local, ip_csum_flag(mb->ol_flags),
                         l4_csum_flag(mb->ol_flags));
      }
      switch (p.kind) {
        case frame::Kind::kUdp: {
          learn(p);
          Datagram d;
          d.peer.sin_family = AF_INET;
          d.peer.sin_addr.s_addr = p.src_ip;
          d.peer.sin_port = p.src_port;
          d.payload = std::span<const uint8_t>(rte_pktmbuf_mtod(mb, const uint8_t*) + p.payload_off, p.payload_len);
          (p.second_port ? in2 : in).push_back(d);
          (p.second_port ? held2 : held).push_back(mb);
          break;
        }
        case frame::Kind::kReply:
          learn(p);
          mb->data_len = static_cast<uint16_t>(p.reply_len);
          mb->pkt_len = static_cast<uint32_t>(p.reply_len);
          mb->ol_flags = 0;
          tx.push_back(mb);
          bump((p.arp ? st.arp_replies : st.icmp_echo_replies), 1);
          break;
        case frame::Kind::kDrop:
          learn(p);  // e.g. a gratuitous ARP
          bump(st.drops[static_cast<std::size_t>(p.drop)], 1);
          rte_pktmbuf_free(mb);
          break;
      }
    }
    if (!in.empty()) {
      bump(st.rx_datagrams, in.size());
      out.clear();
      handler->on_burst(w, std::span<const Datagram>(in.data(), in.size()), out);
      // on_burst() returned: the effects are durable, replies may leave.
      reply_all(in, held, out, local.port);
    }
    if (!in2.empty()) {
      bump(st.rx_datagrams, in2.size());
      out2.clear();
      handler2->on_burst(w, std::span<const Datagram>(in2.data(), in2.size()), out2);
      reply_all(in2, held2, out2, local.port2);
    }
    if (!tx.empty()) send();
  }
}

}  // namespace ferrite::net
