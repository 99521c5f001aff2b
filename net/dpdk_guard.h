// Keeps DPDK's burst calls off memory a PMD's control thread is unmapping.
//
// DPDK 22.11's net_memif handles a peer's disconnect on the EAL interrupt
// thread (memif_disconnect -> memif_free_regions -> munmap of the shared
// rings) while a worker lcore may be inside rte_eth_rx_burst() reading those
// rings: the worker faults. Seen here as SIGSEGV in eth_memif_rx with the
// interrupt thread in munmap, about once in 40 disconnects of a busy
// generator. The PMD gives no warning (it raises no LSC event), so the
// guard interposes munmap() (net/dpdk_guard.cc): once enabled for such a
// port, a munmap() from a thread that is not a poller first waits until
// every poller is outside a burst call, keeps them out, unmaps, and lets
// them go. The PMD's burst calls then see the link down and return 0.
//
//   net::dpdk_guard::enable_for_driver(info.driver_name);   // at port setup
//   n = net::dpdk_guard::rx_burst(port, q, pkts, 32);        // in the poller
//
// Cost for a poller: one atomic exchange per guarded call when enabled, a
// thread-local test otherwise. munmap() elsewhere waits for at most one
// burst call per poller (microseconds); it is a control-path call.
#pragma once

#include <rte_ethdev.h>

#include <cstdint>

namespace ferrite::net::dpdk_guard {

// Turns the guard on when `driver` is a PMD known to unmap under its pollers
// (net_memif). Call before the pollers start; never turned off.
void enable_for_driver(const char* driver) noexcept;
bool enabled() noexcept;

// The calling thread enters/leaves a burst call. The first enter() of a
// thread registers it as a poller (at most 128 threads; more run unguarded
// and are counted). Not reentrant.
void enter() noexcept;
void leave() noexcept;

// munmap() calls that had to wait for a poller to leave a burst call.
uint64_t waited_unmaps() noexcept;
// Poller threads beyond the slot table (unguarded).
uint64_t unguarded_pollers() noexcept;

inline uint16_t rx_burst(uint16_t port, uint16_t q, rte_mbuf** pkts, uint16_t n) noexcept {
  enter();
  const uint16_t got = rte_eth_rx_burst(port, q, pkts, n);
  leave();
  return got;
}

inline uint16_t tx_burst(uint16_t port, uint16_t q, rte_mbuf** pkts, uint16_t n) noexcept {
  enter();
  const uint16_t sent = rte_eth_tx_burst(port, q, pkts, n);
  leave();
  return sent;
}

}  // namespace ferrite::net::dpdk_guard
