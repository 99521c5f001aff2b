// Kernel UDP socket setup (see udp_socket.h).
#include "net/udp_socket.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferrite::net {

StatusOr<sockaddr_in> parse_ipv4(const std::string& addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) {
    return Status::invalid_argument(fmt::format("\"{}\" is not an IPv4 address (a.b.c.d)", addr));
  }
  return sa;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

UdpSocket& UdpSocket::operator=(UdpSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

StatusOr<UdpSocket> UdpSocket::bind(const std::string& addr, uint16_t port, bool reuseport) {
  auto sa = parse_ipv4(addr, port);
  if (!sa) return sa.status();
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(fmt::format("socket(): {}", std::strerror(errno)));
  UdpSocket sock(fd);
  if (reuseport) {
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      return Status::io_error(fmt::format("SO_REUSEPORT: {}", std::strerror(errno)));
    }
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa.value()), sizeof(sockaddr_in)) != 0) {
    int err = errno;
    switch (err) {
      case EADDRINUSE:
        return Status::busy(fmt::format("cannot bind UDP {}:{}: address in use by another process", addr, port));
      case EADDRNOTAVAIL:
        return Status::invalid_argument(
            fmt::format("cannot bind UDP {}:{}: {} is not an address of this host", addr, port, addr));
      case EACCES:
        return Status::invalid_argument(
            fmt::format("cannot bind UDP {}:{}: permission denied (ports below 1024 need root)", addr, port));
      default:
        return Status::io_error(fmt::format("cannot bind UDP {}:{}: {}", addr, port, std::strerror(err)));
    }
  }
  return sock;
}

uint16_t UdpSocket::local_port() const {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

}  // namespace ferrite::net
