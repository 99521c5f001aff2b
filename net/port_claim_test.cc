// Port exclusivity unit tests (net/port_claim.h): the probe sees sockets the
// kernel would let us share the port with, the bind lock is exclusive and
// released with its fd, and KernelBackend binds only under the lock and only
// a port nobody serves. Loopback only; threads are joined by each test.
#include "net/port_claim.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "net/kernel_backend.h"
#include "tests/util/loopback.h"

namespace ferrite::net {
namespace {

using namespace std::chrono_literals;

using testing::bind_loopback;
using testing::port_of;

// A lock name of our own: ports are per pid, so parallel runs do not meet
// (the lock is only a name; nothing binds this port).
uint16_t lock_port() { return static_cast<uint16_t>(20000 + ::getpid() % 20000); }

class NullHandler : public PacketHandler {
 public:
  void on_burst(unsigned, std::span<const Datagram>, TxQueue&) override {}
};

TEST(PortClaim, ProbeSeesAReuseportGroupTheKernelWouldLetUsJoin) {
  const int group = bind_loopback(SOCK_DGRAM, 0, /*reuseport=*/true);
  ASSERT_GE(group, 0);
  const uint16_t port = port_of(group);
  // Why the probe exists: the kernel lets a second reuseport socket of this uid join.
  const int joiner = bind_loopback(SOCK_DGRAM, port, /*reuseport=*/true);
  EXPECT_GE(joiner, 0);
  if (joiner >= 0) ::close(joiner);
  const Status st = probe_port_free(PortProto::kUdp, "127.0.0.1", port, "test UDP port (x.y)");
  EXPECT_EQ(st.code(), Status::Code::kBusy);
  EXPECT_NE(st.message().find("address in use"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("test UDP port (x.y)"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << st.to_string();
  ::close(group);
  EXPECT_TRUE(probe_port_free(PortProto::kUdp, "127.0.0.1", port, "x").is_ok()) << "free again once closed";
}

TEST(PortClaim, ProbeSeesATcpListenerButNotTheUdpPortOfTheSameNumber) {
  const int l = bind_loopback(SOCK_STREAM, 0, false);
  ASSERT_GE(l, 0);
  ASSERT_EQ(::listen(l, 4), 0);
  const uint16_t port = port_of(l);
  EXPECT_EQ(probe_port_free(PortProto::kTcp, "127.0.0.1", port, "x").code(), Status::Code::kBusy);
  EXPECT_TRUE(probe_port_free(PortProto::kUdp, "127.0.0.1", port, "x").is_ok());
  ::close(l);
}

TEST(PortClaim, BindLockIsExclusiveAndReleasedWithItsFd) {
  auto a = PortBindLock::acquire(PortProto::kUdp, lock_port(), "x", 0ms);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  const auto t0 = std::chrono::steady_clock::now();
  auto b = PortBindLock::acquire(PortProto::kUdp, lock_port(), "test role", 100ms);
  EXPECT_EQ(b.status().code(), Status::Code::kBusy);
  EXPECT_NE(b.status().message().find("test role"), std::string::npos);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms) << "it waited for the holder";
  EXPECT_TRUE(PortBindLock::acquire(PortProto::kTcp, lock_port(), "x", 0ms).is_ok()) << "per protocol";
  const auto next = static_cast<uint16_t>(lock_port() + 1);
  EXPECT_TRUE(PortBindLock::acquire(PortProto::kUdp, next, "x", 0ms).is_ok()) << "per port";
  a = StatusOr<PortBindLock>(PortBindLock());  // released
  EXPECT_TRUE(PortBindLock::acquire(PortProto::kUdp, lock_port(), "x", 0ms).is_ok());
}

TEST(PortClaim, SecondBackendOnAPortIsRefusedAndTheFirstKeepsItsGroup) {
  NullHandler h;
  KernelBackendOptions o;
  o.port = 0;  // a fresh port, picked without SO_REUSEPORT
  o.workers = 2;
  o.pin_cores = false;
  o.role = "first UDP port";
  auto first = KernelBackend::create(o, h);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ((*first)->workers(), 2u) << "one process's workers still share the port";
  o.port = (*first)->port();
  o.role = "second UDP port";
  auto second = KernelBackend::create(o, h);
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  EXPECT_NE(second.status().message().find("second UDP port"), std::string::npos) << second.status().to_string();
  first.value().reset();
  EXPECT_TRUE(KernelBackend::create(o, h).is_ok()) << "the port is free once the first is gone";
}

TEST(PortClaim, BackendBindsOnlyUnderTheLock) {
  NullHandler h;
  const int pick = bind_loopback(SOCK_DGRAM, 0, false);
  const uint16_t port = port_of(pick);
  ::close(pick);
  auto held = PortBindLock::acquire(PortProto::kUdp, port, "x", 0ms);
  ASSERT_TRUE(held.is_ok());
  KernelBackendOptions o;
  o.port = port;
  o.pin_cores = false;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);
    held = StatusOr<PortBindLock>(PortBindLock());
  });
  auto b = KernelBackend::create(o, h);
  const auto waited = std::chrono::steady_clock::now() - t0;
  releaser.join();
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_GE(waited, 250ms) << "create() bound while another holder had the port's lock";
}

}  // namespace
}  // namespace ferrite::net
