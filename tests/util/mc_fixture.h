// Test helper for the memcached tests: McEngineTest, a pool and index
// (PoolIndexTest) with a McEngine over them that allows loopback peers, one
// context, and run() feeding it requests; start_tcp() puts a McTcpServer
// over the engine (srv_) and connect_tcp() connects to it; tcp_exchange()
// sends a request on a connection and reads the reply. Reports errors as
// gtest failures.
//
// Thread safety: the fixture belongs to the test thread; srv_ runs its own
// epoll threads, stopped before the engine closes.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/memcached/engine.h"
#include "server/memcached/tcp.h"
#include "tests/util/loopback.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::testing {

class McEngineTest : public PoolIndexTest {
 protected:
  using PoolIndexTest::PoolIndexTest;
  void TearDown() override {
    srv_.reset();
    mc_.reset();
    PoolIndexTest::TearDown();
  }
  // The index (closing the TCP server, engine and index open before), then
  // the engine with one context (on index worker 0).
  void open_engine(const index::IndexOptions& io, server::McOptions mo = {}) {
    srv_.reset();
    mc_.reset();
    ASSERT_NO_FATAL_FAILURE(open_index(io));
    auto c = server::parse_cidr("127.0.0.0/8");
    ASSERT_TRUE(c.is_ok());
    mo.allow = {*c};
    mc_ = std::make_unique<server::McEngine>(*idx_, mo);
    cx_ = &mc_->add_context(0);
  }
  // Feeds in to context 0 (data blocks of refused commands swallowed, as
  // the transports do); returns every reply; *closed tells whether the
  // connection ended.
  std::string run(std::string_view in, bool* closed = nullptr) {
    std::string out;
    std::size_t swallow = 0;
    bool close = false;
    std::size_t done = 0;
    while (done < in.size()) {
      const std::size_t used = mc_->process(*cx_, in.substr(done), &out, &swallow, &close);
      done += used;
      done += std::min(swallow, in.size() - done);
      if (close || (used == 0 && swallow == 0)) break;
    }
    if (closed) *closed = close;
    return out;
  }

  // A McTcpServer over the engine on a free loopback port, started: srv_
  // (replacing the one before). Its `threads` epoll threads use index
  // workers first_index_worker.. (context 0 has worker 0), so the index
  // needs first_index_worker + threads workers.
  void start_tcp(unsigned first_index_worker, unsigned threads = 1) {
    srv_.reset();
    auto s = server::McTcpServer::create(*mc_, "127.0.0.1", 0, first_index_worker, threads);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    srv_ = std::move(s).value();
    srv_->start();
  }
  // A connection to srv_ with a receive timeout of timeout_s seconds, or -1
  // (a test failure).
  int connect_tcp(int timeout_s = 5) {
    const int fd = srv_ ? connect_loopback_tcp(srv_->port(), timeout_s) : -1;
    EXPECT_GE(fd, 0) << "no connection to the TCP server (start_tcp() first)";
    return fd;
  }

  std::unique_ptr<server::McEngine> mc_;
  server::McContext* cx_ = nullptr;
  std::unique_ptr<server::McTcpServer> srv_;  // start_tcp()
};

// Sends req on the connected socket fd, then reads until the reply ends
// with `end`, of any size (or the socket's receive timeout passes, or the
// peer closes: read_until, loopback.h).
inline std::string tcp_exchange(int fd, std::string_view req, std::string_view end) {
  if (!send_all(fd, req)) return "(send failed)";
  return read_until(fd, end, SIZE_MAX);
}

}  // namespace ferrite::testing
