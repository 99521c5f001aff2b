// memcached over TCP: McTcpServer, `threads` epoll threads (tcp.cc) serving
// text and binary connections, each with its own index worker; thread 0
// accepts on the one listening socket and deals connections round-robin;
// its event-loop pieces are in tcp_io.h.
//
// Thread safety: create/start/stop from one controlling thread; a
// connection lives wholly on the thread it was dealt to, with that thread's
// McContext. Shared between threads: stop_, open_, each Shard's inbox (its
// mutex) and the engine's relaxed counters (curr_connections etc.).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/memcached/engine.h"

namespace ferrite::server {

// memcached over TCP: `threads` epoll threads, each serving the connections
// dealt to it with its own index worker (first_index_worker + i). Thread 0
// accepts on the one listening socket (no SO_REUSEPORT) and deals new
// connections to the threads in turn, as memcached does (tcp.cc says why).
// Pipelined requests, partial reads, large values and quit are
// handled; pipelined classic commands of one read share an index burst
// (batch.cc); output is bounded per connection: replies are produced until
// kMaxPendingOut bytes wait unsent, then the connection is neither read nor
// parsed (only EPOLLOUT is watched) until they drain (stream.h). When accept
// fails for want of file descriptors, that thread's listener is left out of
// epoll for a moment (tcp_io.h), with a rate-limited warning.
// max_connections bounds the connections open on all threads together.
// create fails with invalid_argument when the index has fewer workers than
// first_index_worker + threads.
class McTcpServer {
 public:
  static StatusOr<std::unique_ptr<McTcpServer>> create(McEngine& mc, const std::string& bind, uint16_t port,
                                                       unsigned first_index_worker, unsigned threads = 1,
                                                       unsigned max_connections = 4096);
  ~McTcpServer();
  void start();
  void stop();
  uint16_t port() const noexcept { return port_; }
  unsigned threads() const noexcept { return static_cast<unsigned>(shards_.size()); }
  // Connections dealt to thread i so far (any thread may read it).
  uint64_t accepted(unsigned i) const noexcept { return shards_[i]->accepted.load(std::memory_order_relaxed); }

 private:
  explicit McTcpServer(McEngine& mc) : mc_(mc) {}
  struct Conn;
  class Loop;
  // One epoll thread: its epoll set, wake-up eventfd, context, and the
  // connections dealt to it not yet taken up. Thread 0 also has the listener.
  struct Shard {
    explicit Shard(McContext& c) : cx(c) {}
    ~Shard();
    McContext& cx;
    int listen_fd = -1;  // thread 0 only
    int epoll_fd = -1;
    int wake_fd = -1;    // written after a deal into inbox, and by stop()
    std::thread thread;
    std::atomic<uint64_t> accepted{0};
    std::mutex inbox_mu;
    std::vector<int> inbox;  // guarded by inbox_mu: sockets dealt by thread 0
  };
  static Status listen_on(const std::string& bind, uint16_t port, int* fd);
  Status add_shard(McContext& cx);
  void run(Shard& sh, std::size_t i);  // thread i's event loop

  McEngine& mc_;
  std::vector<std::unique_ptr<Shard>> shards_;
  uint16_t port_ = 0;
  unsigned max_connections_ = 0;
  std::atomic<unsigned> open_{0};  // connections open on all threads
  std::atomic<bool> stop_{false};
};

}  // namespace ferrite::server
