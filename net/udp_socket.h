// Kernel UDP sockets for the kernel backend and the client: bind with clear
// errors (address not local, port in use, permission), SO_REUSEPORT so each
// worker owns one socket on the same port.
//
// Thread safety: a UdpSocket belongs to one thread; the fd is closed on
// destruction.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ferrite::net {

// Parses "a.b.c.d" into a sockaddr_in with port; kInvalidArgument if not IPv4.
StatusOr<sockaddr_in> parse_ipv4(const std::string& addr, uint16_t port);

class UdpSocket {
 public:
  UdpSocket() noexcept = default;
  explicit UdpSocket(int fd) noexcept : fd_(fd) {}
  ~UdpSocket();
  UdpSocket(UdpSocket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UdpSocket& operator=(UdpSocket&& o) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Binds a UDP socket to addr:port. reuseport lets N workers share the port
  // (the kernel spreads flows over them); a port held by another process
  // without SO_REUSEPORT gives kBusy. reuseport alone does not make the port
  // exclusive: KernelBackend claims it first (net/port_claim.h).
  static StatusOr<UdpSocket> bind(const std::string& addr, uint16_t port, bool reuseport);

  int fd() const noexcept { return fd_; }
  uint16_t local_port() const;  // useful after binding port 0

 private:
  int fd_ = -1;
};

}  // namespace ferrite::net
