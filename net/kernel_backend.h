// Kernel UDP backend: N workers, each with its own SO_REUSEPORT socket bound
// to the same address and port, receiving bursts with recvmmsg(2) and
// sending replies with sendmmsg(2). The embedded default: it needs nothing
// but a Linux box. The group is bound only on a port nobody else serves
// (net/port_claim.h), so no other process shares its clients.
//
// Thread safety: start() spawns the workers; stop() may be called from any
// thread (e.g. a signal-driven main loop) and joins them. Counters are
// relaxed atomics each worker alone increments, read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/cacheline.h"
#include "common/stats.h"
#include "common/status.h"
#include "net/handler.h"
#include "net/udp_socket.h"

namespace ferrite::net {

struct KernelBackendOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 11311;
  unsigned workers = 1;
  bool pin_cores = true;        // worker w pinned to CPU w % ncpu
  unsigned burst = 32;          // datagrams per recvmmsg
  int poll_timeout_ms = 100;    // how long an idle worker sleeps in poll()
  std::string role = "UDP port";  // named in errors, e.g. "native UDP port (server.port)"
};

struct alignas(kCacheLine) KernelWorkerStats {
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> tx_packets{0};
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> tx_errors{0};   // sendmmsg could not send (counted, dropped)
  std::atomic<uint64_t> rx_truncated{0};
  std::atomic<uint64_t> bursts{0};
};

class KernelBackend {
 public:
  // Binds every worker's socket now, so "address in use" is reported before
  // anything starts. The port is exclusive to this backend: if any other
  // socket (another ferrited's group included) is bound to it, kBusy and
  // nothing is bound (net/port_claim.h).
  static StatusOr<std::unique_ptr<KernelBackend>> create(const KernelBackendOptions& opts, PacketHandler& handler);
  ~KernelBackend();

  void start();
  void stop();
  uint16_t port() const noexcept { return port_; }
  unsigned workers() const noexcept { return static_cast<unsigned>(socks_.size()); }
  const KernelWorkerStats& stats(unsigned w) const { return stats_[w]; }
  // Registers per-worker rx/tx/error counters (worker<w>_rx_packets, ...).
  // The backend must outlive reg's readers.
  void add_stats(stats::Registry& reg) const;

 private:
  KernelBackend(const KernelBackendOptions& opts, PacketHandler& handler) : opts_(opts), handler_(handler) {}
  void run(unsigned w);

  KernelBackendOptions opts_;
  PacketHandler& handler_;
  uint16_t port_ = 0;
  std::vector<UdpSocket> socks_;
  std::unique_ptr<KernelWorkerStats[]> stats_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};  // written by stop(), read by every worker each round
};

}  // namespace ferrite::net
