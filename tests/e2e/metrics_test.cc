// The metrics endpoint (server.metrics_port, server/metrics_http.h): a real
// ferrited scraped over HTTP while memcached and native ops run, its text
// read by tests/util/prom_text.h, the counters checked to move by exactly
// the ops done; malformed, oversized, slow and other-path requests answered
// with errors while the server goes on serving. answer_http is also tested
// alone, byte for byte. docs/grafana-dashboard.json ($FERRITE_DASHBOARD) is
// checked to be JSON whose queries name only metrics ferrited serves.
//
// Thread safety: single-threaded tests (a server process each).
// GCC 12 reports -Wmaybe-uninitialized inside <regex>'s std::function when
// built with -fsanitize=address (a false positive in libstdc++); with
// -Werror it would stop CI's ASan build. Before the includes, so it covers
// their instantiations.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning (the fuzz build)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "server/metrics_http.h"
#include "tests/e2e/server_harness.h"
#include "tests/util/mc_fixture.h"
#include "tests/util/prom_text.h"

namespace ferrite {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::PromText;

// Sends req to 127.0.0.1:port and reads until the server closes (every
// answer says Connection: close) or 10 s pass.
std::string http_exchange(uint16_t port, std::string_view req) {
  const int fd = testing::connect_loopback_tcp(port, 10);
  if (fd < 0) return "(connect failed)";
  std::string r;
  if (testing::send_all(fd, req)) {
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) r.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return r;
}

std::string body_of(const std::string& resp) {
  const std::size_t e = resp.find("\r\n\r\n");
  return e == std::string::npos ? std::string() : resp.substr(e + 4);
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.start()) << "ferrited did not start (is $FERRITED set?)";
  }
  PromText scrape() {
    const std::string resp = http_exchange(mport_, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(resp, HasSubstr("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    PromText p = testing::parse_prom_text(body_of(resp));
    EXPECT_TRUE(p.ok()) << p.error;
    return p;
  }
  std::string mc(int fd, std::string_view req, std::string_view end = "\r\n") {
    return testing::tcp_exchange(fd, req, end);
  }

  uint16_t mport_ = testing::free_tcp_port();
  testing::ServerProcess server_{testing::ServerOptions{
      .memcached = true, .extra = {"--set", "server.metrics_port=" + std::to_string(mport_)}}};
};

TEST_F(MetricsTest, CountersMoveByTheOpsDone) {
  const PromText before = scrape();
  ASSERT_TRUE(before.ok());
  // memcached over TCP: 5 sets, 3 gets (2 hits, 1 miss), 1 delete.
  const int fd = testing::connect_loopback_tcp(server_.memcached_port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(mc(fd, "set mk" + std::to_string(i) + " 0 0 10\r\n0123456789\r\n"), "STORED\r\n");
  }
  EXPECT_THAT(mc(fd, "get mk0\r\n", "END\r\n"), HasSubstr("VALUE"));
  EXPECT_THAT(mc(fd, "get mk1\r\n", "END\r\n"), HasSubstr("VALUE"));
  EXPECT_EQ(mc(fd, "get nope\r\n", "END\r\n"), "END\r\n");
  EXPECT_EQ(mc(fd, "delete mk4\r\n"), "DELETED\r\n");
  // Native: 4 sets, 3 gets (2 hits, 1 miss).
  auto c = server_.client();
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c->set("nk" + std::to_string(i), "value").is_ok());
  client::Reply r;
  ASSERT_TRUE(c->get("nk0", &r).is_ok());
  ASSERT_TRUE(c->get("nk1", &r).is_ok());
  ASSERT_TRUE(c->get("absent", &r).is_ok());

  const PromText after = scrape();
  ASSERT_TRUE(after.ok());
  auto delta = [&](const std::string& name) { return after[name] - before[name]; };
  EXPECT_EQ(delta("ferrite_memcached_cmd_set_total"), 5);
  EXPECT_EQ(delta("ferrite_memcached_items_total"), 5);  // memcached's total_items
  EXPECT_EQ(delta("ferrite_memcached_cmd_get_total"), 3);
  EXPECT_EQ(delta("ferrite_memcached_get_hits_total"), 2);
  EXPECT_EQ(delta("ferrite_memcached_get_misses_total"), 1);
  EXPECT_EQ(delta("ferrite_memcached_delete_hits_total"), 1);
  EXPECT_GE(after["ferrite_memcached_curr_connections"], 1);  // fd (the harness's probe may not be closed yet)
  EXPECT_EQ(after["ferrite_memcached_max_connections"], 4096);  // McTcpServer's limit
  EXPECT_EQ(delta("ferrite_get_total"), 3);
  EXPECT_EQ(delta("ferrite_get_hits_total"), 2);
  EXPECT_EQ(delta("ferrite_get_misses_total"), 1);
  EXPECT_EQ(delta("ferrite_writes_total"), 4);
  // The index holds both front ends' keys: 4 memcached (one deleted) + 4 native.
  EXPECT_EQ(delta("ferrite_keys"), 8);
  EXPECT_EQ(delta("ferrite_memcached_curr_items"), 8);
  EXPECT_GT(delta("ferrite_memcached_bytes"), 0);
  EXPECT_GT(delta("ferrite_bytes_appended_total"), 0);
  EXPECT_EQ(after["ferrite_memcached_pid"], server_.pid());
  EXPECT_EQ(after["ferrite_memcached_limit_maxbytes"], 256 << 20);  // the pool's size
  EXPECT_EQ(after.metrics.at("ferrite_memcached_version_info").labels, "value=\"1.6.18-ferrite-0.1.0\"");
  // Every counter only grew; every family is typed.
  for (const auto& [name, m] : after.metrics) {
    if (m.type == "counter") {
      EXPECT_GE(m.value, before[name]) << name;
    }
    EXPECT_TRUE(m.type == "counter" || m.type == "gauge") << name;
  }
  ::close(fd);
}

TEST_F(MetricsTest, BadRequestsGetErrorsAndTheServerGoesOn) {
  EXPECT_THAT(http_exchange(mport_, "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(http_exchange(mport_, "POST /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(http_exchange(mport_, "hello there\r\n\r\n"), StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(http_exchange(mport_, std::string("\x80\x01\0\0\xff\r\n\r\n", 9)), StartsWith("HTTP/1.1 400 "));
  // Headers past 8 KiB, and a 1 MiB request line: 431, answer intact.
  const std::string big = "GET /metrics HTTP/1.1\r\nX-Fill: " + std::string(9000, 'a') + "\r\n\r\n";
  EXPECT_THAT(http_exchange(mport_, big), StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(http_exchange(mport_, "GET /" + std::string(1 << 20, 'm')), StartsWith("HTTP/1.1 431 "));
  // A client that says nothing does not hold up another's scrape: it is
  // answered before the silent one's request timeout ends ...
  const int silent = testing::connect_loopback_tcp(mport_, 10);
  ASSERT_GE(silent, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(scrape().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, server::MetricsHttpServer::kRequestTimeout);
  pollfd p{silent, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the silent client was answered before the scrape";
  // ... which then answers it 408 and closes it.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(server::MetricsHttpServer::kRequestTimeout);
  ASSERT_EQ(::poll(&p, 1, static_cast<int>(ms.count()) + 3000), 1);
  char buf[256];
  const ssize_t n = ::recv(silent, buf, sizeof(buf), 0);
  EXPECT_THAT(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), StartsWith("HTTP/1.1 408 "));
  ::close(silent);
  // More connections than it keeps: the extra ones are closed, the server serves on.
  std::vector<int> many;
  for (std::size_t i = 0; i < server::MetricsHttpServer::kMaxConnections + 4; ++i) {
    many.push_back(testing::connect_loopback_tcp(mport_, 10));
  }
  for (int fd : many) ::close(fd);
  EXPECT_TRUE(scrape().ok());
  EXPECT_TRUE(server_.alive());
}

// Clients that connected and closed while the server was not running (here:
// stopped) wait in its accept queue ahead of a scrape, more of them than it
// keeps connections. Their connections are dropped once their ends are seen
// (reap_closed), so the scrape behind them gets a slot and is answered.
TEST_F(MetricsTest, ClosedClientsQueuedAheadOfAScrapeDoNotTakeItsSlot) {
  const pid_t pid = server_.pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  struct Resume {  // the server runs again whatever fails below
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{pid};
  for (std::size_t i = 0; i < server::MetricsHttpServer::kMaxConnections + 4; ++i) {
    const int fd = testing::connect_loopback_tcp(mport_, 10);  // the kernel completes it (backlog 64)
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  const int fd = testing::connect_loopback_tcp(mport_, 10);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  timeval tv{10, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(server_.alive());
}

TEST_F(MetricsTest, DashboardQueriesNameServedMetrics) {
  const char* path = std::getenv("FERRITE_DASHBOARD");
  if (path == nullptr) GTEST_SKIP() << "FERRITE_DASHBOARD not set";
  std::ifstream f(path);
  ASSERT_TRUE(f) << path;
  const nlohmann::json d = nlohmann::json::parse(f);  // throws (fails) on bad JSON
  const PromText served = scrape();
  std::set<std::string> named;
  const std::regex metric("ferrite_[a-z0-9_]+");
  ASSERT_TRUE(d.contains("panels"));
  for (const auto& panel : d["panels"]) {
    for (const auto& t : panel["targets"]) {
      const std::string expr = t["expr"].get<std::string>();
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric); it != std::sregex_iterator(); ++it) {
        named.insert(it->str());
      }
    }
  }
  EXPECT_GE(named.size(), 10u);
  for (const std::string& n : named) EXPECT_TRUE(served.has(n)) << n << " is not served";
}

// answer_http alone: what each request is answered, byte for byte.
TEST(AnswerHttp, EachRequestGetsItsAnswer) {
  int renders = 0;
  const auto render = [&renders] {
    ++renders;
    return std::string("# HELP m h\n# TYPE m gauge\nm 1\n");
  };
  EXPECT_FALSE(server::answer_http("GET /metrics HTTP/1.1\r\nHost: x\r\n", render).complete);
  EXPECT_EQ(server::answer_http("GET /metrics?x=1 HTTP/1.0\n\n", render).bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 30\r\n"
            "Connection: close\r\n\r\n# HELP m h\n# TYPE m gauge\nm 1\n");
  EXPECT_EQ(server::answer_http("HEAD /metrics HTTP/1.1\r\n\r\n", render).bytes,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 30\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_EQ(renders, 2);
  EXPECT_EQ(server::answer_http("GET /metricsX HTTP/1.1\r\n\r\n", render).bytes,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n"
            "Connection: close\r\n\r\nNot Found\n");
  EXPECT_THAT(server::answer_http("DELETE /metrics HTTP/1.1\r\n\r\n", render).bytes,
              AllOf(StartsWith("HTTP/1.1 405 "), HasSubstr("\r\nAllow: GET, HEAD\r\n")));
  for (const char* bad : {"GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/2\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n", "\r\n\r\n"}) {
    EXPECT_THAT(server::answer_http(bad, render).bytes, StartsWith("HTTP/1.1 400 ")) << bad;
  }
  EXPECT_THAT(server::answer_http(std::string(server::MetricsHttpServer::kMaxRequest + 1, 'G'), render).bytes,
              StartsWith("HTTP/1.1 431 "));
  EXPECT_EQ(renders, 2);  // only a GET or HEAD of /metrics renders
}

}  // namespace
}  // namespace ferrite
