// memcached over TCP: McTcpServer, one epoll thread (tcp.cc) serving text
// and binary connections; its event-loop pieces are in tcp_io.h.
//
// Thread safety: create/start/stop from one controlling thread; everything
// else runs on the server's own thread with its own McContext.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "server/memcached/engine.h"

namespace ferrite::server {

// memcached over TCP: one epoll thread serving every connection with its
// own index worker. Pipelined requests, partial reads, large values and
// quit are handled; output is bounded per connection: replies are produced
// until kMaxPendingOut bytes wait unsent, then the connection is neither read
// nor parsed (only EPOLLOUT is watched) until they drain (stream.h). When
// accept fails for want of file descriptors, the listener is left out of
// epoll for a moment (tcp_io.h), with a rate-limited warning.
class McTcpServer {
 public:
  static StatusOr<std::unique_ptr<McTcpServer>> create(McEngine& mc, const std::string& bind, uint16_t port,
                                                       unsigned index_worker, unsigned max_connections = 4096);
  ~McTcpServer();
  void start();
  void stop();
  uint16_t port() const noexcept { return port_; }

 private:
  McTcpServer(McEngine& mc, McContext& cx) : mc_(mc), cx_(cx) {}
  void run();
  struct Conn;
  class Loop;

  McEngine& mc_;
  McContext& cx_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
  unsigned max_connections_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace ferrite::server
