// ferrited's metrics endpoint (server.metrics_port, off by default): a
// minimal HTTP/1.x responder on its own thread that answers GET /metrics
// with the text a render function returns (Prometheus text format 0.0.4,
// stats::render_prometheus) and nothing else.
//
//   auto m = MetricsHttpServer::create("127.0.0.1", 9150, [&] { return render(); });
//   (*m)->start(); ... (*m)->stop();
//
// One request per connection (every answer says Connection: close):
//   GET|HEAD /metrics[?...]   200, Content-Type: text/plain; version=0.0.4
//   GET|HEAD another path     404
//   another method            405 (Allow: GET, HEAD)
//   a malformed request line  400
//   headers over kMaxRequest  431
//   no complete request within kRequestTimeout, or an answer not taken
//   within kRequestTimeout: 408 if nothing was answered yet, then closed
// At most kMaxConnections are open (connections whose client has gone are
// dropped first, reap_closed); one more is closed at accept. Nothing
// here touches the data path: render reads the stats registry (relaxed
// loads, common/stats.h) on this thread, and every socket is non-blocking
// under one poll() loop, so a slow or silent client delays no other.
//
// Thread safety: create/start/stop from one controlling thread; render runs
// on the server's thread and must be safe to call from it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/stats.h"
#include "common/status.h"

namespace ferrite::server {

// The HTTP answer to one request's bytes: the status line, headers and body
// to send. Pure (tested directly): `render` is called only for a GET of
// /metrics. `complete` is false while `request` holds no whole header block
// and is still within kMaxRequest (then nothing is answered yet).
struct HttpAnswer {
  bool complete = false;
  std::string bytes;
};
HttpAnswer answer_http(std::string_view request, const std::function<std::string()>& render);

// The /metrics text: the native engine's entries as ferrite_*, then the
// memcached front end's as ferrite_memcached_* (stats::render_prometheus;
// a name met twice is given once).
std::string render_metrics(const stats::Registry& native, const stats::Registry& memcached);

class MetricsHttpServer {
 public:
  static constexpr std::size_t kMaxRequest = 8192;  // bytes of request line and headers
  static constexpr std::size_t kMaxConnections = 16;
  static constexpr std::chrono::milliseconds kRequestTimeout{5000};

  static StatusOr<std::unique_ptr<MetricsHttpServer>> create(const std::string& bind, uint16_t port,
                                                             std::function<std::string()> render);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  void start();
  void stop();
  uint16_t port() const noexcept { return port_; }

 private:
  explicit MetricsHttpServer(std::function<std::string()> render) : render_(std::move(render)) {}
  void run();

  std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: stop() writes it to end poll()
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace ferrite::server
