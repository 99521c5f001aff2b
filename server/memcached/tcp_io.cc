// AcceptGate (see tcp_io.h): pausing and resuming the listener when
// accept runs out of descriptors or memory, with a rate-limited warning.
//
// Thread safety: each McTcpServer thread uses its own (one AcceptGate per
// thread; the pause counter they share is a relaxed atomic).
#include "server/memcached/tcp_io.h"

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace ferrite::server {

bool AcceptGate::out_of_resources(int e) noexcept {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

void AcceptGate::pause(int e, std::size_t open_connections) {
  if (paused_) return;
  epoll_event ev{};
  ev.events = 0;  // still registered, reports nothing
  ev.data.ptr = nullptr;
  (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  paused_ = true;
  const Clock::time_point now = Clock::now();
  resume_at_ = now + kPause;
  counter_->fetch_add(1, std::memory_order_relaxed);
  ++since_log_;
  if (!logged_ || now - last_log_ >= kLogEvery) {
    log_warn(
        "memcached tcp: accept failed: {} ({} connections open); not accepting for {} ms ({} such pauses since the "
        "last warning; counter ferrite_tcp_accept_paused). Raise the open-files limit (ulimit -n) above the "
        "connection limit",
        std::strerror(e), open_connections, kPause.count(), since_log_);
    logged_ = true;
    last_log_ = now;
    since_log_ = 0;
  }
}

void AcceptGate::maybe_resume(Clock::time_point now) {
  if (!paused_ || now < resume_at_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listening socket
  (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  paused_ = false;
}

int AcceptGate::wait_ms(int idle_ms, Clock::time_point now) const {
  if (!paused_) return idle_ms;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(resume_at_ - now).count() + 1;
  return left < 1 ? 1 : (left < idle_ms ? static_cast<int>(left) : idle_ms);
}

}  // namespace ferrite::server
