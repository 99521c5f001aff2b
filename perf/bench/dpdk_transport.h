// DPDK transport for ferrite-bench (--transport dpdk): the generator's
// datagrams as Ethernet/IPv4/UDP frames on one DPDK port (net_memif to a
// ferrited DPDK backend on the same machine, net_af_packet, a NIC). Flow f
// is source port src_port + f. The server's MAC is resolved with ARP when the
// transport opens; ARP requests for our address are answered.
//
// EAL starts once per process (on the first make_dpdk_transport) and the port
// stays open for later transports (preload, then the run); call
// dpdk_transport_shutdown() before exiting. One transport at a time, one
// generator thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "perf/bench/transport.h"

namespace ferrite::bench {

struct DpdkOptions {
  std::string eal;            // EAL arguments, one string
  uint16_t port_id = 0;       // DPDK port
  std::string mac;            // our MAC ("" = the port's)
  std::string ip = "10.78.0.2";
  std::string server_ip = "10.78.0.1";
  uint16_t server_port = 11311;
  uint16_t src_port = 40000;  // flow f sends from src_port + f
  unsigned flows = 1;
  double arp_timeout_s = 10;  // memif links come up when the peer connects
};

StatusOr<std::unique_ptr<Transport>> make_dpdk_transport(const DpdkOptions& o);
void dpdk_transport_shutdown();

}  // namespace ferrite::bench
