// DPDK port setup shared by perf's DPDK generators (see dpdk_port.h).
#include "perf/dpdk_port.h"
#include "net/dpdk_guard.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>
#include <sstream>

#include "net/dpdk_backend.h"

namespace ferrite::perf {

Status eal_init(const std::string& prog, const std::string& args) {
  std::vector<std::string> eal = {prog};
  std::istringstream in(args);
  for (std::string a; in >> a;) eal.push_back(a);
  std::vector<char*> argv;
  for (auto& a : eal) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(eal.size()), argv.data()) < 0) {
    return Status::io_error(std::string("EAL: ") + rte_strerror(rte_errno));
  }
  return Status::ok();
}

StatusOr<DpdkPort> open_port(uint16_t id, const std::string& mac, const char* pool_name) {
  DpdkPort p;
  p.id = id;
  if (!rte_eth_dev_is_valid_port(id)) return Status::invalid_argument("no DPDK port " + std::to_string(id));
  p.pool = rte_pktmbuf_pool_create(pool_name, 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (p.pool == nullptr) return Status::io_error("mbuf pool");
  rte_eth_conf conf{};
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(id, &info) == 0) net::dpdk_guard::enable_for_driver(info.driver_name);
  if (rte_eth_dev_configure(id, 1, 1, &conf) != 0) return Status::io_error("port configure");
  uint16_t nrx = 1024, ntx = 1024;
  (void)rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrx, &ntx);
  if (rte_eth_rx_queue_setup(id, 0, nrx, rte_socket_id(), nullptr, p.pool) != 0) return Status::io_error("rx queue");
  if (rte_eth_tx_queue_setup(id, 0, ntx, rte_socket_id(), nullptr) != 0) return Status::io_error("tx queue");
  if (!mac.empty()) {
    if (!net::frame::parse_mac(mac, &p.mac)) return Status::invalid_argument("bad MAC \"" + mac + "\"");
  } else {
    rte_ether_addr ea{};
    rte_eth_macaddr_get(id, &ea);
    std::memcpy(p.mac.data(), ea.addr_bytes, 6);
  }
  if (rte_eth_dev_start(id) != 0) return Status::io_error("port start");
  (void)rte_eth_promiscuous_enable(id);
  return p;
}

std::size_t write_arp_request(uint8_t* f, const net::frame::Mac& mac, uint32_t ip, uint32_t target_ip) noexcept {
  std::memset(f, 0, 60);
  std::memset(f, 0xff, 6);
  std::memcpy(f + 6, mac.data(), 6);
  f[12] = 0x08;
  f[13] = 0x06;
  uint8_t* a = f + 14;
  a[1] = 1;     // Ethernet
  a[2] = 0x08;  // IPv4
  a[4] = 6;
  a[5] = 4;
  a[7] = 1;  // request
  std::memcpy(a + 8, mac.data(), 6);
  std::memcpy(a + 14, &ip, 4);
  std::memcpy(a + 24, &target_ip, 4);
  return 60;
}

std::size_t tx_all(uint16_t port, std::vector<rte_mbuf*>* tx) {
  std::size_t off = 0;
  unsigned stalls = 0;
  while (off < tx->size() && stalls < 100000) {
    const uint16_t k = net::dpdk_guard::tx_burst(port, 0, tx->data() + off, static_cast<uint16_t>(tx->size() - off));
    off += k;
    stalls = k == 0 ? stalls + 1 : 0;
  }
  if (off < tx->size()) rte_pktmbuf_free_bulk(tx->data() + off, static_cast<unsigned>(tx->size() - off));
  tx->clear();
  return off;
}

void close_port_and_eal(uint16_t port, const std::string& eal_args) {
  (void)rte_eth_dev_stop(port);
  (void)rte_eth_dev_close(port);
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  (void)rte_eal_cleanup();
  if (eal_args.find("--no-shconf") != std::string::npos || eal_args.find("--in-memory") != std::string::npos) {
    net::remove_dpdk_runtime_dir(runtime_dir);
  }
}

}  // namespace ferrite::perf
