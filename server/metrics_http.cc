// The metrics endpoint's HTTP responder (see metrics_http.h): answer_http
// decides the answer to one request's bytes; the server's thread runs one
// poll() loop over the listening socket, an eventfd for stop() and at most
// kMaxConnections non-blocking connections, each with a deadline.
//
// Thread safety: the loop's state belongs to its thread; stop_ and the
// eventfd are how the controlling thread ends it.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "common/log.h"

namespace ferrite::server {
namespace {

std::string http_response(int code, std::string_view reason, std::string_view content_type, std::string_view body,
                          bool head, std::string_view extra_headers = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " ";
  r.append(reason).append("\r\nContent-Type: ").append(content_type);
  r.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  r.append("\r\nConnection: close\r\n").append(extra_headers).append("\r\n");
  if (!head) r.append(body);
  return r;
}

std::string error_response(int code, std::string_view reason, bool head = false, std::string_view extra = {}) {
  return http_response(code, reason, "text/plain; charset=utf-8", std::string(reason) + "\n", head, extra);
}

}  // namespace

std::string render_metrics(const stats::Registry& native, const stats::Registry& memcached) {
  std::string out;
  std::unordered_set<std::string> seen;
  stats::render_prometheus(native.sample(), "ferrite_", &out, &seen);
  stats::render_prometheus(memcached.sample(), "ferrite_memcached_", &out, &seen);
  return out;
}

HttpAnswer answer_http(std::string_view request, const std::function<std::string()>& render) {
  // The header block ends at the first empty line (CRLF or a bare LF).
  std::size_t end = request.find("\r\n\r\n");
  const std::size_t lf_end = request.find("\n\n");
  if (lf_end != std::string_view::npos && (end == std::string_view::npos || lf_end < end)) end = lf_end;
  if (end == std::string_view::npos ? request.size() > MetricsHttpServer::kMaxRequest
                                    : end > MetricsHttpServer::kMaxRequest) {
    return {true, error_response(431, "Request Header Fields Too Large")};
  }
  if (end == std::string_view::npos) return {false, {}};
  std::string_view line = request.substr(0, request.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // "METHOD SP target SP HTTP/1.x", nothing else.
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return {true, error_response(400, "Bad Request")};
  }
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (method.empty() || target.empty() || target[0] != '/' || version.substr(0, 7) != "HTTP/1.") {
    return {true, error_response(400, "Bad Request")};
  }
  const bool head = method == "HEAD";
  if (method != "GET" && !head) return {true, error_response(405, "Method Not Allowed", false, "Allow: GET, HEAD\r\n")};
  if (target.substr(0, target.find('?')) != "/metrics") return {true, error_response(404, "Not Found", head)};
  return {true, http_response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render(), head)};
}

StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::create(const std::string& bind, uint16_t port,
                                                                       std::function<std::string()> render) {
  const std::string where = "metrics http " + bind + ":" + std::to_string(port) + ": ";
  in_addr a{};
  if (::inet_pton(AF_INET, bind.c_str(), &a) != 1) return Status::invalid_argument(where + "not an IPv4 address");
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer(std::move(render)));
  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->listen_fd_ < 0 || s->wake_fd_ < 0) return Status::io_error(where + std::strerror(errno));
  const int one = 1;
  (void)::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = a;
  sa.sin_port = htons(port);
  if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(s->listen_fd_, 64) != 0) {
    if (errno == EADDRINUSE) return Status::busy(where + "address in use by another process");
    return Status::io_error(where + std::strerror(errno));
  }
  socklen_t len = sizeof(sa);
  (void)::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  s->port_ = ntohs(sa.sin_port);
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void MetricsHttpServer::start() {
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void MetricsHttpServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

namespace {

using Clock = std::chrono::steady_clock;

// One connection: its request bytes, then its answer being sent, then (the
// answer sent and our side shut) its input drained until the peer closes,
// so that unread request bytes do not turn our close into a reset that
// could destroy the answer before the client reads it.
struct HttpConn {
  int fd = -1;
  Clock::time_point deadline;
  std::string in;
  std::string out;
  std::size_t sent = 0;
  bool answered = false;
  bool draining = false;
};

// Reads what is there; false once the connection should close (EOF while
// the request is incomplete, or an error).
bool read_request(HttpConn& c, const std::function<std::string()>& render) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) return c.answered && !c.draining;  // the peer shut its side: send what we have
    if (c.answered) continue;                       // drained (or more after the request): ignored
    c.in.append(buf, static_cast<std::size_t>(n));
    HttpAnswer a = answer_http(c.in, render);
    if (a.complete) {
      c.out = std::move(a.bytes);
      c.answered = true;
      std::string().swap(c.in);
    }
  }
}

// Sends what the socket takes; false once the connection should close.
bool send_answer(HttpConn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<std::size_t>(n);
  }
  ::shutdown(c.fd, SHUT_WR);
  c.draining = true;
  return true;
}

// Closes and drops the connections whose client has gone (end of stream or
// an error, nothing to answer), so a client that closed does not hold a slot
// a new scrape needs: after a burst of clients that connect and close, their
// connections may all be accepted before their ends are read, and the scrape
// behind them would find every slot taken. Called only when all are taken.
void reap_closed(std::vector<HttpConn>& conns) {
  std::erase_if(conns, [](const HttpConn& c) {
    char b;
    const ssize_t n = ::recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    const bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    if (gone) ::close(c.fd);
    return gone;
  });
}

}  // namespace

void MetricsHttpServer::run() {
  std::vector<HttpConn> conns;
  std::vector<pollfd> fds;
  while (!stop_.load(std::memory_order_relaxed)) {
    fds.assign({{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
    Clock::time_point next = Clock::now() + kRequestTimeout;
    for (const HttpConn& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.answered && !c.draining ? POLLOUT : POLLIN), 0});
      next = std::min(next, c.deadline);
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait, 0))) < 0 && errno != EINTR) {
      log_warn("metrics http: poll: {}", std::strerror(errno));
      break;
    }
    const Clock::time_point now = Clock::now();
    // Existing connections first (fds[2 + i] is conns[i]); accepts append.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      HttpConn& c = conns[i];
      const short ev = fds[2 + i].revents;
      bool open = true;
      if (ev & (POLLIN | POLLHUP | POLLERR)) open = read_request(c, render_);
      if (open && c.answered && !c.draining) open = send_answer(c);
      if (open && now >= c.deadline) {
        // Out of time: a request never completed is told so (best effort,
        // once); an answer not taken, or a drain that did not end, is dropped.
        if (!c.answered) {
          const std::string t = error_response(408, "Request Timeout");
          (void)!::send(c.fd, t.data(), t.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        open = false;
      }
      if (!open) {
        ::close(c.fd);
        continue;
      }
      if (kept != i) conns[kept] = std::move(c);
      ++kept;
    }
    conns.resize(kept);
    if (fds[1].revents & POLLIN) {
      for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          // Out of descriptors: the listener stays readable; a pause keeps
          // this loop from spinning on it.
          if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
          break;
        }
        if (conns.size() >= kMaxConnections) reap_closed(conns);
        if (conns.size() >= kMaxConnections) {
          ::close(fd);
          continue;
        }
        HttpConn& c = conns.emplace_back();
        c.fd = fd;
        c.deadline = now + kRequestTimeout;
      }
    }
  }
  for (const HttpConn& c : conns) ::close(c.fd);
}

}  // namespace ferrite::server
