// DPDK poll-mode backend: the EAL, one port (a PCI NIC or a vdev such as
// net_tap, net_af_packet, net_af_xdp, net_memif), one RX/TX queue pair per
// worker lcore (RSS spreads flows when the port has it), bursts of
// `burst` packets. Each worker polls its RX queue, answers ARP and ICMP echo
// for our IPv4 address, validates Ethernet/IPv4/UDP (checksums in software
// unless the port verified them), counts every drop by reason (net/frame.h),
// hands the UDP payloads to the PacketHandler, and sends the replies: a reply
// to a datagram of the burst reuses that datagram's mbuf (addresses and ports
// swapped), further replies (multi-datagram answers) get fresh mbufs. What
// the TX queue does not take after bounded retries is freed and counted.
//
// The header is DPDK-free; everything DPDK lives in dpdk_backend.cc.
//
// Thread safety: create() initialises the EAL (once per process) and the
// port; start() launches the workers on their lcores; stop() may be called
// from any non-worker thread and waits for them. on_burst()/on_idle() for
// worker w run only on worker w's lcore. Counters are relaxed atomics, read
// through the stats registry (add_stats) from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/cacheline.h"
#include "common/stats.h"
#include "common/status.h"
#include "net/frame.h"
#include "net/handler.h"

namespace ferrite::net {

// Removes a DPDK runtime directory (/var/run/dpdk/<file-prefix>) after
// rte_eal_cleanup(): the telemetry and multi-process sockets in it, then the
// directory if empty. For processes run with --no-shconf or --in-memory.
void remove_dpdk_runtime_dir(const std::string& dir);

struct DpdkBackendOptions {
  // EAL arguments after argv[0]. Without -l/-c/--lcores the backend adds
  // --lcores mapping lcore i to CPU i % ncpu (pin_cores) or letting all float.
  std::vector<std::string> eal_args;
  std::string log_level = "info";   // ferrite's level, mapped to --log-level unless eal_args set one
  uint16_t port_id = 0;
  std::string ip = "10.0.0.1";      // our IPv4 address on the port
  std::string mac;                  // "" = the port's own MAC
  uint16_t udp_port = 11311;
  unsigned workers = 1;
  bool pin_cores = true;
  unsigned mbufs = 8191;
  unsigned burst = 32;
  unsigned max_datagram = 1472;     // largest reply payload; must fit the port's MTU
  unsigned idle_sleep_us = 0;       // 0: busy-poll; else sleep this long after 1024 empty polls
  // A second UDP port and its handler (ferrited: the memcached UDP protocol).
  // Worker w calls it from the same lcore as the main handler, with the same
  // w; replies leave from second_udp_port. 0 / nullptr = none.
  uint16_t second_udp_port = 0;
  PacketHandler* second_handler = nullptr;
};

struct alignas(kCacheLine) DpdkWorkerStats {
  std::atomic<uint64_t> rx_packets{0}, rx_bytes{0}, rx_datagrams{0};
  std::atomic<uint64_t> tx_packets{0}, tx_bytes{0};
  std::atomic<uint64_t> tx_dropped{0};      // the TX queue did not take them after retries
  std::atomic<uint64_t> tx_nombuf{0};       // no mbuf for a reply
  std::atomic<uint64_t> tx_no_neighbor{0};  // reply to an address whose MAC we never saw
  std::atomic<uint64_t> reply_reused{0}, reply_allocated{0};
  std::atomic<uint64_t> arp_replies{0}, icmp_echo_replies{0};
  std::atomic<uint64_t> bursts{0};
  std::atomic<uint64_t> drops[static_cast<std::size_t>(frame::Drop::kCount)]{};
};

class DpdkBackend {
 public:
  // Initialises the EAL and the port (queues, mempool, offloads) and starts
  // the port; errors name the EAL argument or port property at fault.
  static StatusOr<std::unique_ptr<DpdkBackend>> create(const DpdkBackendOptions& opts, PacketHandler& handler);
  ~DpdkBackend();

  void start();
  void stop();
  unsigned workers() const noexcept;
  const DpdkWorkerStats& stats(unsigned w) const;
  std::string mac() const;
  std::string describe() const;    // "port 0 (net_tap) mac ... 1 queue(s), rss off, rx csum offload ..."
  // Registers the backend's stats entries: link, port and per-queue
  // statistics, drops per reason, ARP/ICMP and TX accounting (summed over
  // workers), per-worker rx/tx. The backend must outlive reg's readers.
  void add_stats(stats::Registry& reg) const;

  struct Impl;

 private:
  explicit DpdkBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferrite::net
