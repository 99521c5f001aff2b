// How the load generator moves datagrams: a small interface so a DPDK
// transport can be added beside the kernel one. A transport owns F flows
// (distinct source ports towards one server address); the generator sends
// bursts on a flow and receives bursts from all flows.
//
// Thread safety: a Transport belongs to one generator thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferrite::bench {

struct RxDatagram {
  unsigned flow = 0;
  std::span<const uint8_t> bytes;  // valid until the next recv()
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual unsigned flows() const noexcept = 0;
  // Sends the datagrams on flow f; returns how many left (the rest were
  // refused, e.g. a full socket buffer: the caller counts them as lost).
  virtual std::size_t send(unsigned flow, std::span<const iovec> dgrams) = 0;
  // Receives up to max datagrams from any flow without blocking.
  virtual std::span<const RxDatagram> recv(std::size_t max) = 0;
  // Sleeps until a datagram may be readable or timeout_us passes.
  virtual void wait(int timeout_us) = 0;
};

struct KernelUdpOptions {
  std::string server = "127.0.0.1";
  uint16_t port = 0;
  unsigned flows = 1;
  std::size_t burst = 64;  // datagrams per sendmmsg/recvmmsg
};

// Kernel UDP: one connected socket per flow, sendmmsg/recvmmsg, poll() to
// wait. Large socket buffers so bursts of outstanding replies are kept.
StatusOr<std::unique_ptr<Transport>> make_kernel_udp_transport(const KernelUdpOptions& o);

}  // namespace ferrite::bench
