// The DPDK port setup shared by perf's DPDK generators (dpdk_loadgen and
// ferrite-bench --transport dpdk): EAL start from one string, one port with
// one RX and one TX queue, ARP who-has frames, a burst sender, shutdown.
//
// Thread safety: like DPDK's port calls: one thread per queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "net/frame.h"

struct rte_mempool;
struct rte_mbuf;

namespace ferrite::perf {

// rte_eal_init with `args` split on whitespace; prog is argv[0].
Status eal_init(const std::string& prog, const std::string& args);

struct DpdkPort {
  uint16_t id = 0;
  rte_mempool* pool = nullptr;
  net::frame::Mac mac{};
};

// Configures and starts port `id` (1 RX + 1 TX queue, promiscuous) with an
// mbuf pool of that name. mac: our MAC ("" = the port's own).
StatusOr<DpdkPort> open_port(uint16_t id, const std::string& mac, const char* pool_name);

// Writes a 60-byte ARP who-has target_ip frame (IPs in network byte order).
std::size_t write_arp_request(uint8_t* frame, const net::frame::Mac& mac, uint32_t ip, uint32_t target_ip) noexcept;

// Sends every mbuf in *tx (retrying a full ring a bounded number of times),
// frees the ones the port refused and clears *tx. Returns how many left.
std::size_t tx_all(uint16_t port, std::vector<rte_mbuf*>* tx);

// Stops and closes the port, then EAL; removes EAL's runtime directory when
// the arguments asked for no shared config.
void close_port_and_eal(uint16_t port, const std::string& eal_args);

}  // namespace ferrite::perf
