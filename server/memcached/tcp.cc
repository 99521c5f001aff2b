// memcached over TCP (see tcp.h): McTcpServer's setup, and its event loop
// (Loop) cut into accept, read, write and close steps. One thread runs the
// loop; every connection is served by it with the server's McContext.
//
// Thread safety: create/start/stop from the controlling thread; Loop and
// Conn belong to the server thread. stop_ is the only field both touch
// (relaxed: the eventfd write wakes the loop, which then reads it).
#include "server/memcached/tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/memcached/internal.h"
#include "server/memcached/tcp_io.h"

namespace ferrite::server {
using mc_detail::inc;

struct McTcpServer::Conn {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_off = 0;
  std::size_t swallow = 0;
  bool closing = false;     // close once out is flushed
  bool want_write = false;  // EPOLLOUT registered
  bool started = false;     // the first byte has been seen
  bool binary = false;      // it was 0x80: memcached's binary protocol
  uint32_t events = EPOLLIN | EPOLLRDHUP;  // registered with epoll
  McStream stream;          // output bound, paused get (stream.h)
  bool held = false;        // serving stopped at the output bound with requests (or a get) left
  bool eof = false;         // the peer closed its side: serve what was read, then close
  std::size_t pending() const noexcept { return out.size() - out_off; }
};

StatusOr<std::unique_ptr<McTcpServer>> McTcpServer::create(McEngine& mc, const std::string& bind, uint16_t port,
                                                           unsigned index_worker, unsigned max_connections) {
  in_addr a{};
  if (::inet_pton(AF_INET, bind.c_str(), &a) != 1) {
    return Status::invalid_argument("memcached tcp bind address \"" + bind + "\" is not an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = a;
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    const std::string where = "memcached tcp " + bind + ":" + std::to_string(port) + ": ";
    if (e == EADDRINUSE) return Status::busy(where + "address in use by another process");
    return Status::io_error(where + std::strerror(e));
  }
  socklen_t len = sizeof(sa);
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::unique_ptr<McTcpServer> s(new McTcpServer(mc, mc.add_context(index_worker)));
  s->listen_fd_ = fd;
  s->port_ = ntohs(sa.sin_port);
  s->max_connections_ = max_connections;
  s->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  s->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->epoll_fd_ < 0 || s->wake_fd_ < 0) return Status::io_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listening socket
  (void)::epoll_ctl(s->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  ev.data.ptr = &s->wake_fd_;
  (void)::epoll_ctl(s->epoll_fd_, EPOLL_CTL_ADD, s->wake_fd_, &ev);
  return s;
}

McTcpServer::~McTcpServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void McTcpServer::start() {
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void McTcpServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}


// The event loop's state and steps, on the server thread.
class McTcpServer::Loop {
 public:
  explicit Loop(McTcpServer& s) : s_(s), gate_(s.epoll_fd_, s.listen_fd_, &s.mc_.accept_paused) {}
  ~Loop();
  void run();

 private:
  void accept_all();
  // Reads, serves and writes after the events evs of c; closes it when done.
  void on_conn(Conn* c, uint32_t evs);
  // Reads while there is room for replies; false if the connection died.
  bool read_ready(Conn* c);
  // Writes what it can; false if the connection died.
  bool flush_out(Conn* c);
  // Executes the complete requests in c->in.
  void serve(Conn* c);
  void update_events(Conn* c);
  void close_conn(Conn* c);

  McTcpServer& s_;
  McEngine& mc() { return s_.mc_; }
  McContext& cx() { return s_.cx_; }
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
  std::vector<char> buf_ = std::vector<char>(kReadChunk);
  AcceptGate gate_;
};

void McTcpServer::run() {
  Loop loop(*this);
  loop.run();
}

void McTcpServer::Loop::run() {
  while (!s_.stop_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(s_.epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                               gate_.wait_ms(100, AcceptGate::Clock::now()));
    gate_.maybe_resume(AcceptGate::Clock::now());
    if (n <= 0) {
      mc().on_idle(cx());
      continue;
    }
    for (int i = 0; i < n; ++i) {
      void* p = events_[static_cast<std::size_t>(i)].data.ptr;
      if (p == &s_.wake_fd_) continue;
      if (p == nullptr) {
        accept_all();
      } else {
        on_conn(static_cast<Conn*>(p), events_[static_cast<std::size_t>(i)].events);
      }
    }
  }
}

McTcpServer::Loop::~Loop() {
  for (auto& [fd, c] : conns_) ::close(fd);
  mc().curr_connections.store(0, std::memory_order_relaxed);
}

void McTcpServer::Loop::accept_all() {
  for (;;) {
    sockaddr_in peer{};
    socklen_t plen = sizeof(peer);
    const int fd = ::accept4(s_.listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors: the listener stays readable, so leave it
      // out of epoll for a moment instead of retrying at once.
      if (AcceptGate::out_of_resources(errno)) gate_.pause(errno, conns_.size());
      break;
    }
    if (!mc().allowed(peer) || conns_.size() >= s_.max_connections_) {
      // Over server.max_connections (memcached's -c): memcached's words, then
      // close; a peer outside the allowlist gets nothing.
      if (mc().allowed(peer)) {
        static constexpr std::string_view kFull = "ERROR Too many open connections\r\n";
        (void)::send(fd, kFull.data(), kFull.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      mc().rejected_connections.fetch_add(1, std::memory_order_relaxed);
      ::close(fd);
      continue;
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c.get();
    (void)::epoll_ctl(s_.epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    conns_.emplace(fd, std::move(c));
    mc().curr_connections.fetch_add(1, std::memory_order_relaxed);
    mc().total_connections.fetch_add(1, std::memory_order_relaxed);
  }
}

void McTcpServer::Loop::on_conn(Conn* c, uint32_t evs) {
  bool dead = (evs & EPOLLERR) != 0;
  if (!dead && (evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) dead = !read_ready(c);
  if (!dead && (evs & EPOLLOUT) != 0) {
    if (!flush_out(c)) dead = true;
    if (!dead) {
      serve(c);  // replies drained: requests held back may run now
      if (!flush_out(c)) dead = true;
    }
  }
  if (c->eof && !c->held) c->closing = true;  // every request it sent is answered
  if (dead || (c->closing && c->out_off == c->out.size())) {
    close_conn(c);
    return;
  }
  update_events(c);
}

bool McTcpServer::Loop::read_ready(Conn* c) {
  // Read while there is room for replies; what is read is served at once.
  while (c->pending() < kMaxPendingOut && !c->held && !c->closing && !c->eof) {
    // Within the input budget: what serve() leaves is at most an incomplete
    // request, which leaves room for a read (tcp_io.h); were it ever not
    // so, the connection is closed rather than let grow.
    const std::size_t room = kMaxConnInput - std::min(c->in.size(), kMaxConnInput);
    if (room == 0) return false;
    const ssize_t r = ::recv(c->fd, buf_.data(), std::min(buf_.size(), room), 0);
    if (r > 0) {
      c->in.append(buf_.data(), static_cast<std::size_t>(r));
      mc().note_tcp_input(c->in.size());
      serve(c);
      if (!flush_out(c)) return false;
      continue;
    }
    if (r == 0) {
      c->eof = true;  // peer closed: answer what it sent, send it all, then close
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    return false;
  }
  return true;
}

void McTcpServer::Loop::close_conn(Conn* c) {
  (void)::epoll_ctl(s_.epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  conns_.erase(c->fd);
  mc().curr_connections.fetch_sub(1, std::memory_order_relaxed);
}

// Level-triggered: a connection over its output bound must not stay
// registered for EPOLLIN/EPOLLRDHUP, which it does not act on (that was a
// busy loop); it waits for EPOLLOUT only.
void McTcpServer::Loop::update_events(Conn* c) {
  const uint32_t want = conn_events(c->pending(), c->closing || c->eof, c->held);
  if (want == c->events) return;
  if ((c->events & EPOLLIN) != 0 && (want & EPOLLIN) == 0 && !c->closing) inc(cx().stats().tcp_output_paused);
  c->events = want;
  c->want_write = (want & EPOLLOUT) != 0;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = c;
  (void)::epoll_ctl(s_.epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
}

bool McTcpServer::Loop::flush_out(Conn* c) {
  while (c->out_off < c->out.size()) {
    const ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += static_cast<std::size_t>(n);
      inc(cx().stats().bytes_written, static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  if (c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
    trim(&c->out);
  } else if (c->out_off > (1u << 20)) {
    c->out.erase(0, c->out_off);
    c->out_off = 0;
  }
  return true;
}

void McTcpServer::Loop::serve(Conn* c) {
  if (!c->started && !c->in.empty()) {
    c->started = true;
    c->binary = static_cast<uint8_t>(c->in[0]) == proto::mc::kBinRequestMagic;
    if (c->binary) inc(cx().stats().binary_connections);
  }
  // Replies are produced only up to kMaxPendingOut unsent bytes (plus one
  // chunk): process() stops there, pausing a long get (stream.h).
  c->held = false;
  while (!c->closing && (!c->in.empty() || c->stream.paused)) {
    if (c->pending() >= kMaxPendingOut) {
      c->held = true;  // resumed on EPOLLOUT, whether or not more input comes
      break;
    }
    if (c->swallow != 0) {
      const std::size_t n = std::min(c->swallow, c->in.size());
      c->in.erase(0, n);
      c->swallow -= n;
      continue;
    }
    bool close = false;
    std::size_t swallow = 0;
    c->stream.out_limit = c->out_off + kMaxPendingOut;
    const std::size_t used = c->binary ? mc().process_binary(cx(), c->in, &c->out, &swallow, &close, &c->stream)
                                       : mc().process(cx(), c->in, &c->out, &swallow, &close, &c->stream);
    c->in.erase(0, used);
    c->swallow = swallow;
    if (close) c->closing = true;
    if (c->stream.paused) {
      c->held = true;
      break;
    }
    if (used == 0 && swallow == 0) break;  // incomplete request: wait for more bytes
  }
  if (c->in.empty()) trim(&c->in);
}

}  // namespace ferrite::server
