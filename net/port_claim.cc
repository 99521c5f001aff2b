// Port exclusivity: the probe bind and the per-port bind lock (see port_claim.h).
#include "net/port_claim.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "net/udp_socket.h"

namespace ferrite::net {
namespace {

const char* proto_name(PortProto p) { return p == PortProto::kUdp ? "udp" : "tcp"; }

}  // namespace

Status probe_port_free(PortProto proto, const std::string& addr, uint16_t port, std::string_view role) {
  if (port == 0) return Status::ok();
  auto sa = parse_ipv4(addr, port);
  if (!sa) return sa.status();
  const int fd = ::socket(AF_INET, (proto == PortProto::kUdp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(fmt::format("socket(): {}", std::strerror(errno)));
  if (proto == PortProto::kTcp) {
    // As the real listener does: connections of an earlier run in TIME_WAIT
    // do not block the port, a listening socket still does.
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  // No SO_REUSEPORT here, on purpose: this bind must fail if anyone at all
  // is bound to the port, a reuseport group of our own uid included (I2).
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa.value()), sizeof(sockaddr_in));
  const int err = errno;
  ::close(fd);
  if (rc == 0) return Status::ok();
  const std::string where = fmt::format("cannot serve {} on {}:{}", role, addr, port);
  switch (err) {
    case EADDRINUSE:
      return Status::busy(fmt::format(
          "{}: address in use by another process (another ferrited, memcached, ...): stop it or choose another port",
          where));
    case EADDRNOTAVAIL:
      return Status::invalid_argument(fmt::format("{}: {} is not an address of this host", where, addr));
    case EACCES:
      return Status::invalid_argument(fmt::format("{}: permission denied (ports below 1024 need root)", where));
    default:
      return Status::io_error(fmt::format("{}: {}", where, std::strerror(err)));
  }
}

PortBindLock::~PortBindLock() {
  if (fd_ >= 0) ::close(fd_);
}

PortBindLock& PortBindLock::operator=(PortBindLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

StatusOr<PortBindLock> PortBindLock::acquire(PortProto proto, uint16_t port, std::string_view role,
                                             std::chrono::milliseconds wait) {
  sockaddr_un su{};
  su.sun_family = AF_UNIX;
  // Abstract namespace: sun_path[0] == '\0'; the name is the bytes after it
  // (not NUL-terminated), so the length passed to bind() is exact.
  const std::string name = fmt::format("ferrite/bind-lock/{}/{}", proto_name(proto), port);
  std::memcpy(su.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::io_error(fmt::format("socket(AF_UNIX): {}", std::strerror(errno)));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&su), len) == 0) return PortBindLock(fd);
    const int err = errno;
    ::close(fd);
    if (err != EADDRINUSE) {
      return Status::io_error(fmt::format("port lock for {} port {}: {}", role, port, std::strerror(err)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::busy(fmt::format(
          "cannot serve {} on port {}: address in use: another ferrited has been binding this port for over {} ms",
          role, port, wait.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Status check_port_free(PortProto proto, const std::string& addr, uint16_t port, std::string_view role) {
  if (port == 0) return Status::ok();
  auto lock = PortBindLock::acquire(proto, port, role);
  if (!lock) return lock.status();
  return probe_port_free(proto, addr, port, role);
}

}  // namespace ferrite::net
