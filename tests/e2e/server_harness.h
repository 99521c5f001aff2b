// Test harness: runs a real ferrited process on a free loopback port with its
// own pool under /dev/shm, and stops it (SIGTERM, or SIGKILL to simulate a
// crash). The binary's path comes from $FERRITED (set by tests/meson.build).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/util/temp_path.h"

extern char** environ;

namespace ferrite::testing {

// A loopback port nobody holds now (type: SOCK_DGRAM or SOCK_STREAM). Free
// when picked, not reserved: a caller's server may still find it taken.
inline uint16_t free_port(int type) {
  int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}
inline uint16_t free_udp_port() { return free_port(SOCK_DGRAM); }
inline uint16_t free_tcp_port() { return free_port(SOCK_STREAM); }

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra = {}, std::string pool_size = "256MiB")
      : extra_(std::move(extra)), pool_size_(std::move(pool_size)), port_(free_udp_port()) {}
  ~ServerProcess() { stop(SIGKILL); }

  const std::string& pool_path() const { return pool_.str(); }
  uint16_t port() const { return port_; }
  // Exit code of a server that stopped on its own during start(), else -1.
  int exit_code() const { return exit_code_; }

  // Starts ferrited and waits until it answers a hello.
  bool start() {
    const char* bin = std::getenv("FERRITED");
    if (bin == nullptr) return false;
    std::vector<std::string> args = {bin, "--pool", pool_.str(), "--pool-size", pool_size_, "--port", std::to_string(port_),
                                     "--log-level", "warn"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      // If the test dies (a failed sanitizer check exits at once), the server
      // must not outlive it holding the test runner's output pipe.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execve(bin, argv.data(), environ);
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      client::ClientOptions o;
      o.timeout_ms = 50;
      o.attempts = 1;
      if (client::Client::connect("127.0.0.1", port_, o).is_ok()) return true;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return false;
      }
    }
    return false;
  }

  // Sends sig and waits; returns the exit status (or -1).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }

  std::unique_ptr<client::Client> client(int timeout_ms = 300) {
    client::ClientOptions o;
    o.timeout_ms = timeout_ms;
    auto c = client::Client::connect("127.0.0.1", port_, o);
    return c.is_ok() ? std::move(c).value() : nullptr;
  }

 private:
  TempPath pool_{"e2e"};
  std::vector<std::string> extra_;
  std::string pool_size_;
  uint16_t port_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace ferrite::testing
