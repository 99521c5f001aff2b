// Port exclusivity: every port ferrited serves belongs to one ferrited.
//
// The workers of one ferrited share a UDP port through SO_REUSEPORT, and the
// kernel lets ANY socket of the same user with SO_REUSEPORT join that group:
// a second ferrited started on the same port by mistake would bind without
// error and take a share of the clients (issue 15, item 3). This module
// closes that door:
//
//   probe_port_free()  binds a throwaway socket to addr:port without
//                      SO_REUSEPORT (UDP: without SO_REUSEADDR either; TCP:
//                      with it, as the listener, so an earlier run's
//                      TIME_WAIT does not count), then closes it. The
//                      kernel refuses that bind (EADDRINUSE) if any socket is
//                      bound (TCP: listening) on an overlapping address (the
//                      same address, or the wildcard on either side) and
//                      port, whatever its options or owner: another
//                      ferrited's reuseport group, memcached, anything.
//   PortBindLock       an abstract-namespace unix socket named after the
//                      protocol and port ("\0ferrite/bind-lock/udp/11311"),
//                      held while a ferrited probes and binds a port. The
//                      kernel releases it when the fd closes or the process
//                      dies (no stale files); abstract names are per network
//                      namespace, as ports are.
//
// Invariants (a ferrited binding a UDP port P, net/kernel_backend.cc):
//  I1  It binds the first socket of its SO_REUSEPORT group on P only while
//      holding PortBindLock(udp, P), and only after probe_port_free(addr, P)
//      succeeded while holding it.
//  I2  Two ferrited never share P: the lock orders them, so the later one
//      probes after the earlier one's group is bound, and its probe fails
//      (I2 holds for overlapping addresses too: the lock is per port, not per
//      address; two ferrited on distinct specific addresses of one host may
//      still share a port number, as the kernel allows).
//  I3  A non-ferrite socket bound before our probe makes us fail. One bound
//      AFTER our group exists can join it only by setting SO_REUSEPORT itself
//      under our uid; that is outside what a server can refuse.
// TCP needs no lock: ferrited's listener does not set SO_REUSEPORT, so the
// kernel refuses a second listener on the port; ferrited still probes TCP
// before opening the pool so the error comes first and fast.
//
// Thread safety: functions are thread-safe; a PortBindLock belongs to one
// thread (movable, closes its fd on destruction).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferrite::net {

enum class PortProto { kUdp, kTcp };

// Probe-binds addr:port (see above) and closes the probe. ok: nobody serves
// it now; kBusy with "... address in use by another process ..." naming the
// role (e.g. "native UDP port (server.port)") and the address; other codes
// for a bad address or permissions. port 0 is always free.
Status probe_port_free(PortProto proto, const std::string& addr, uint16_t port, std::string_view role);

class PortBindLock {
 public:
  PortBindLock() noexcept = default;
  ~PortBindLock();
  PortBindLock(PortBindLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PortBindLock& operator=(PortBindLock&& o) noexcept;
  PortBindLock(const PortBindLock&) = delete;
  PortBindLock& operator=(const PortBindLock&) = delete;

  // Takes the lock for (proto, port), waiting up to `wait` while another
  // ferrited holds it (a holder keeps it for the microseconds of a probe and
  // a few binds). kBusy naming the role after `wait`.
  static StatusOr<PortBindLock> acquire(PortProto proto, uint16_t port, std::string_view role,
                                        std::chrono::milliseconds wait = std::chrono::milliseconds(2000));
  bool held() const noexcept { return fd_ >= 0; }

 private:
  explicit PortBindLock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

// The startup check ferrited runs before it opens the pool: lock, probe,
// unlock. It makes "address in use" the first and immediate error; the
// binds later repeat the probe under the lock (I1), so a port taken between
// this check and the bind is still refused.
Status check_port_free(PortProto proto, const std::string& addr, uint16_t port, std::string_view role);

}  // namespace ferrite::net
