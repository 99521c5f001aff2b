// Pieces of the memcached TCP server's event loop that keep it from spinning
// or hoarding memory (issue 15, item 6):
//  - AcceptGate: when accept(2) fails for want of file descriptors (EMFILE,
//    ENFILE) or kernel memory (ENOBUFS, ENOMEM), the listener stays readable,
//    so a level-triggered epoll loop would retry at once, forever. The gate
//    takes the listener out of the epoll set for kPause, counts each pause,
//    and logs a warning at most once per kLogEvery.
//  - conn_events: the epoll events a connection should wait for given its
//    output backlog: no EPOLLIN/EPOLLRDHUP while kMaxPendingOut bytes wait
//    unsent (the client is not read, hence not served, until they drain).
//  - trim: frees a drained buffer's memory beyond kKeptBuffer.
//  - kMaxConnInput: the input a connection may hold (its input budget).
//
// Thread safety: each McTcpServer thread uses its own (one AcceptGate per
// thread; the pause counter they share is a relaxed atomic).
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "proto/memcached.h"

namespace ferrite::server {

// Unsent reply bytes after which a TCP connection is neither read nor parsed.
inline constexpr std::size_t kMaxPendingOut = 8u << 20;
// Capacity a drained connection buffer keeps.
inline constexpr std::size_t kKeptBuffer = 1u << 20;
// Bytes one recv(2) reads at most.
inline constexpr std::size_t kReadChunk = 256u << 10;
// Input bytes a connection holds at most, whatever the client sends (issue
// 17): the largest request kept whole until complete, a storage command (a
// line of up to kMaxLineLen, its data block of kMaxValueLen and "\r\n"; a
// binary packet is smaller), plus one read. A longer get line is answered
// piece by piece as it arrives (proto::mc::GetLine: at most a partial key
// stays), any other line longer than kMaxLineLen closes the connection, and
// a connection over its output bound is not read: nothing else accumulates.
// With the replies (kMaxPendingOut plus one chunk, stream.h) and a paused
// get's keys (kMaxLineLen), this is a connection's memory budget.
inline constexpr std::size_t kMaxConnInput =
    proto::mc::kMaxLineLen + proto::mc::kMaxValueLen + 2 + kReadChunk;

// Events for a connection with `pending` unsent bytes; held: serving stopped
// at the output bound with requests (or a paused get) left, to be resumed
// once the socket is writable even if no more input ever comes.
inline uint32_t conn_events(std::size_t pending, bool closing, bool held) {
  uint32_t ev = 0;
  const bool over = pending >= kMaxPendingOut || held;
  if (!closing && !over) ev |= EPOLLIN | EPOLLRDHUP;
  if (pending > 0 || held) ev |= EPOLLOUT;
  return ev;
}

inline void trim(std::string* buf) {
  if (buf->empty() && buf->capacity() > kKeptBuffer) std::string().swap(*buf);
}

class AcceptGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kPause{100};
  static constexpr std::chrono::seconds kLogEvery{10};

  AcceptGate(int epoll_fd, int listen_fd, std::atomic<uint64_t>* paused_counter)
      : epoll_fd_(epoll_fd), listen_fd_(listen_fd), counter_(paused_counter) {}

  // errno of a failed accept4 that means "no descriptor or memory for it".
  static bool out_of_resources(int e) noexcept;
  // Takes the listener out of epoll for kPause (e: the accept errno).
  void pause(int e, std::size_t open_connections);
  // Puts the listener back once the pause is over; call after each wait.
  void maybe_resume(Clock::time_point now);
  // epoll_wait timeout (ms) not to oversleep the end of a pause.
  int wait_ms(int idle_ms, Clock::time_point now) const;
  bool paused() const noexcept { return paused_; }

 private:
  int epoll_fd_, listen_fd_;
  std::atomic<uint64_t>* counter_;
  bool paused_ = false;
  Clock::time_point resume_at_{};
  Clock::time_point last_log_{};
  bool logged_ = false;
  uint64_t since_log_ = 0;  // pauses not logged yet
};

}  // namespace ferrite::server
