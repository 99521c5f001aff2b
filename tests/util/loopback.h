// Test helper: IPv4 sockets on loopback (or a given address) for tests that
// talk to servers or hold ports: free ports, bound sockets, connected ones,
// writing a whole buffer, reading up to an end marker.
// Return -1 where a socket could not be made; the caller closes what it gets.
//
// Thread safety: stateless functions.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferrite::testing {

inline sockaddr_in ipv4_addr(uint32_t ip_be, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = ip_be;
  return a;
}
inline sockaddr_in loopback_addr(uint16_t port) { return ipv4_addr(htonl(INADDR_LOOPBACK), port); }

// A socket bound to 127.0.0.1:port (0: any free port), with SO_REUSEPORT on
// request; a TCP one with SO_REUSEADDR.
inline int bind_loopback(int type, uint16_t port, bool reuseport = false) {
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  const int one = 1;
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const sockaddr_in a = loopback_addr(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The local port of a bound socket.
inline uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A loopback port nobody holds now (type: SOCK_DGRAM or SOCK_STREAM). Free
// when picked, not reserved: a caller's server may still find it taken.
inline uint16_t free_port(int type) {
  const int fd = bind_loopback(type, 0);
  const uint16_t port = fd >= 0 ? port_of(fd) : 0;
  if (fd >= 0) ::close(fd);
  return port;
}
inline uint16_t free_udp_port() { return free_port(SOCK_DGRAM); }
inline uint16_t free_tcp_port() { return free_port(SOCK_STREAM); }

// A socket of `type` connected to ip:port; a receive timeout of timeout_s
// seconds when given.
inline int connect_socket(int type, uint32_t ip_be, uint16_t port, int timeout_s = 0) {
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  const sockaddr_in a = ipv4_addr(ip_be, port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  if (timeout_s > 0) {
    timeval tv{timeout_s, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  return fd;
}
// A TCP connection to 127.0.0.1:port with a receive timeout, or -1.
inline int connect_loopback_tcp(uint16_t port, int timeout_s = 10) {
  return connect_socket(SOCK_STREAM, htonl(INADDR_LOOPBACK), port, timeout_s);
}

// Sends all of s on a connected socket; false if the connection failed.
inline bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads until the bytes received end with `end` (or `limit` bytes, or 30 s,
// or the connection ends); returns what was received.
inline std::string read_until(int fd, std::string_view end, std::size_t limit = 4u << 20) {
  std::string r;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && r.size() < limit && !std::string_view(r).ends_with(end)) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    r.append(buf, static_cast<std::size_t>(n));
  }
  return r;
}

}  // namespace ferrite::testing
