// memcached over TCP (see tcp.h): McTcpServer's setup (the listener, an
// epoll set and thread per Shard), and its event loop (Loop) cut into accept,
// deal, read, write and close steps. Each thread runs a Loop over its own
// Shard; thread 0 accepts and deals each connection to a thread, which serves
// it wholly with its McContext.
//
// Thread safety: create/start/stop from the controlling thread; a Loop, its
// Shard's fds and its Conns belong to its thread. stop_ (relaxed: the eventfd
// write wakes each loop, which then reads it), open_, each Shard's inbox
// (under its inbox_mu) and the engine's counters are what the threads share.
#include "server/memcached/tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
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

// One listening socket, on thread 0, which deals each new connection to the
// threads in turn (0, 1, ..., 0, ...), as memcached's listener does; not a
// listener per thread with SO_REUSEPORT. The kernel's reuseport choice hashes
// the connection's addresses, so 32 connections split 20/12 as often as
// 16/16, and the thread with more of them bounds a closed-loop client's rate
// while the other idles. Dealing in turn gives each thread the same number to
// within one (with memcaslap's 32 connections on 2 vCPUs the throughput moved
// less than this VM's noise, issue 18). It also keeps the port exclusive: no
// other process of the same user can join a reuseport group
// (net/port_claim.h). The cost: accepting
// waits while thread 0 serves, which matters only for a burst of connects.
Status McTcpServer::listen_on(const std::string& bind, uint16_t port, int* out) {
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
  *out = fd;
  return Status::ok();
}

Status McTcpServer::add_shard(McContext& cx) {
  auto sh = std::make_unique<Shard>(cx);
  Shard& s = *sh;
  shards_.push_back(std::move(sh));
  s.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.epoll_fd < 0 || s.wake_fd < 0) return Status::io_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &s.wake_fd;
  (void)::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.wake_fd, &ev);
  return Status::ok();
}

StatusOr<std::unique_ptr<McTcpServer>> McTcpServer::create(McEngine& mc, const std::string& bind, uint16_t port,
                                                           unsigned first_index_worker, unsigned threads,
                                                           unsigned max_connections) {
  threads = std::max(threads, 1u);
  // Each thread owns an index worker, first_index_worker + i: all must exist.
  const uint64_t needed = uint64_t{first_index_worker} + threads;
  if (needed > mc.index_workers()) {
    return Status::invalid_argument(fmt::format(
        "memcached TCP: {} thread(s) from index worker {} need {} index workers; the index has {}", threads,
        first_index_worker, needed, mc.index_workers()));
  }
  std::unique_ptr<McTcpServer> s(new McTcpServer(mc));
  s->max_connections_ = max_connections;  // for all of this server's threads together
  mc.max_connections.fetch_add(max_connections, std::memory_order_relaxed);  // stats max_connections
  for (unsigned i = 0; i < threads; ++i) FERRITE_RETURN_IF_ERROR(s->add_shard(mc.add_context(first_index_worker + i)));
  Shard& first = *s->shards_[0];
  FERRITE_RETURN_IF_ERROR(listen_on(bind, port, &first.listen_fd));
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  (void)::getsockname(first.listen_fd, reinterpret_cast<sockaddr*>(&sa), &len);
  s->port_ = ntohs(sa.sin_port);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listening socket
  (void)::epoll_ctl(first.epoll_fd, EPOLL_CTL_ADD, first.listen_fd, &ev);
  return s;
}

McTcpServer::Shard::~Shard() {
  if (listen_fd >= 0) ::close(listen_fd);
  if (epoll_fd >= 0) ::close(epoll_fd);
  if (wake_fd >= 0) ::close(wake_fd);
}

McTcpServer::~McTcpServer() { stop(); }

void McTcpServer::start() {
  stop_.store(false);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    Shard* p = shards_[i].get();
    p->thread = std::thread([this, p, i] { run(*p, i); });
  }
}

void McTcpServer::stop() {
  stop_.store(true);
  for (auto& sh : shards_) {
    if (!sh->thread.joinable()) continue;
    const uint64_t one = 1;
    (void)!::write(sh->wake_fd, &one, sizeof(one));
    sh->thread.join();
  }
  // Every thread has stopped: connections dealt to a thread that stopped
  // before taking them up are closed here, and uncounted.
  for (auto& sh : shards_) {
    for (int fd : sh->inbox) ::close(fd);
    mc_.curr_connections.fetch_sub(sh->inbox.size(), std::memory_order_relaxed);
    open_.fetch_sub(static_cast<unsigned>(sh->inbox.size()), std::memory_order_relaxed);
    sh->inbox.clear();
  }
}

// The event loop's state and steps, on the server thread.
class McTcpServer::Loop {
 public:
  Loop(McTcpServer& s, Shard& sh) : s_(s), sh_(sh), gate_(sh.epoll_fd, sh.listen_fd, &s.mc_.accept_paused) {}
  ~Loop();
  void run();

 private:
  void accept_all();
  // Gives the accepted socket fd to the next thread in turn (thread 0 only).
  void deal(int fd);
  // Serves the sockets dealt to this thread (after its eventfd woke it).
  void take_dealt();
  void adopt(int fd);
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
  Shard& sh_;
  McEngine& mc() { return s_.mc_; }
  McContext& cx() { return sh_.cx; }
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
  std::vector<char> buf_ = std::vector<char>(kReadChunk);
  AcceptGate gate_;
  std::size_t next_ = 0;     // the thread the next connection goes to (thread 0's loop)
  std::vector<int> dealt_;   // take_dealt's scratch
};

void McTcpServer::run(Shard& sh, std::size_t i) {
  // Named for top -H and perf: ferrite-tcp0, ferrite-tcp1, ... (15 chars at most).
  (void)pthread_setname_np(pthread_self(), fmt::format("ferrite-tcp{}", i % 1000).c_str());
  Loop loop(*this, sh);
  loop.run();
}

void McTcpServer::Loop::run() {
  while (!s_.stop_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(sh_.epoll_fd, events_.data(), static_cast<int>(events_.size()),
                               gate_.wait_ms(100, AcceptGate::Clock::now()));
    gate_.maybe_resume(AcceptGate::Clock::now());
    if (n <= 0) {
      mc().on_idle(cx());
      continue;
    }
    for (int i = 0; i < n; ++i) {
      void* p = events_[static_cast<std::size_t>(i)].data.ptr;
      if (p == &sh_.wake_fd) {
        take_dealt();
        continue;
      }
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
  mc().curr_connections.fetch_sub(conns_.size(), std::memory_order_relaxed);
  s_.open_.fetch_sub(static_cast<unsigned>(conns_.size()), std::memory_order_relaxed);
}

void McTcpServer::Loop::accept_all() {
  for (;;) {
    sockaddr_in peer{};
    socklen_t plen = sizeof(peer);
    const int fd = ::accept4(sh_.listen_fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors: the listener stays readable, so leave it
      // out of epoll for a moment instead of retrying at once.
      if (AcceptGate::out_of_resources(errno)) gate_.pause(errno, conns_.size());
      break;
    }
    // The limit is for all threads together: a slot is taken, then given
    // back if there was none.
    const bool room = s_.open_.fetch_add(1, std::memory_order_relaxed) < s_.max_connections_;
    if (!room || !mc().allowed(peer)) {
      s_.open_.fetch_sub(1, std::memory_order_relaxed);
      // Over server.max_connections (memcached's -c): memcached's words, then
      // close; a peer outside the allowlist gets nothing.
      if (!room && mc().allowed(peer)) {
        static constexpr std::string_view kFull = "ERROR Too many open connections\r\n";
        (void)::send(fd, kFull.data(), kFull.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      mc().rejected_connections.fetch_add(1, std::memory_order_relaxed);
      ::close(fd);
      continue;
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mc().curr_connections.fetch_add(1, std::memory_order_relaxed);
    mc().total_connections.fetch_add(1, std::memory_order_relaxed);
    deal(fd);
  }
}

void McTcpServer::Loop::deal(int fd) {
  Shard& to = *s_.shards_[next_];
  next_ = (next_ + 1) % s_.shards_.size();
  if (&to == &sh_) {
    adopt(fd);
    return;
  }
  {
    const std::lock_guard<std::mutex> lock(to.inbox_mu);
    to.inbox.push_back(fd);
  }
  // The eventfd write comes after the push: the woken thread finds the fd.
  const uint64_t one = 1;
  (void)!::write(to.wake_fd, &one, sizeof(one));
}

void McTcpServer::Loop::take_dealt() {
  uint64_t n = 0;
  (void)!::read(sh_.wake_fd, &n, sizeof(n));  // level-triggered: reset it before taking the inbox
  {
    const std::lock_guard<std::mutex> lock(sh_.inbox_mu);
    dealt_.swap(sh_.inbox);
  }
  for (int fd : dealt_) adopt(fd);
  dealt_.clear();
}

void McTcpServer::Loop::adopt(int fd) {
  auto c = std::make_unique<Conn>();
  c->fd = fd;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = c.get();
  (void)::epoll_ctl(sh_.epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  conns_.emplace(fd, std::move(c));
  sh_.accepted.fetch_add(1, std::memory_order_relaxed);
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
    const std::size_t want = std::min(buf_.size(), room);
    const ssize_t r = ::recv(c->fd, buf_.data(), want, 0);
    if (r > 0) {
      c->in.append(buf_.data(), static_cast<std::size_t>(r));
      mc().note_tcp_input(c->in.size());
      serve(c);
      if (!flush_out(c)) return false;
      // A short read most likely emptied the socket: no second recv just to
      // hear EAGAIN (a syscall per request). Epoll is level-triggered, so
      // bytes that came meanwhile (or the peer's close) are reported again.
      if (static_cast<std::size_t>(r) < want) break;
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
  (void)::epoll_ctl(sh_.epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  conns_.erase(c->fd);
  mc().curr_connections.fetch_sub(1, std::memory_order_relaxed);
  s_.open_.fetch_sub(1, std::memory_order_relaxed);
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
  (void)::epoll_ctl(sh_.epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
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
