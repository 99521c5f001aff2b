// Test harness: real ferrited processes for the end-to-end tests. The binary's
// path comes from $FERRITED (set by tests/meson.build).
//   FerritedProcess  one ferrited run with the arguments a test gives,
//                    optional rlimits, stderr optionally in a file (log());
//                    for tests that expect a failure or send signals.
//   ServerProcess    a serving ferrited: its own pool under /dev/shm, free
//                    loopback ports (native; memcached UDP and TCP on request),
//                    start() waits until it answers, and may retry on other
//                    ports when a picked port was taken meanwhile.
// Every process is killed (SIGKILL) by its destructor if still running, and
// dies with the test (PR_SET_PDEATHSIG).
//
// Thread safety: objects belong to the test thread.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "tests/util/loopback.h"
#include "tests/util/temp_path.h"

extern char** environ;

namespace ferrite::testing {

struct ProcessLimits {
  rlim_t address_space = 0;  // RLIMIT_AS in bytes (0: inherited)
  rlim_t open_files = 0;     // RLIMIT_NOFILE (0: inherited)
};

class FerritedProcess {
 public:
  // Starts $FERRITED with args (after the binary); not started() without
  // $FERRITED. With capture_stderr its stderr goes to a file that log() reads.
  explicit FerritedProcess(std::vector<std::string> args, bool capture_stderr = true, ProcessLimits limits = {})
      : capture_(capture_stderr) {
    const char* bin = std::getenv("FERRITED");
    if (bin == nullptr) return;  // not started()
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    started_ = std::chrono::steady_clock::now();
    pid_ = ::fork();
    if (pid_ == 0) {
      // If the test dies (a failed sanitizer check exits at once), the server
      // must not outlive it holding the test runner's output pipe.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (capture_) {
        const int fd = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) ::dup2(fd, STDERR_FILENO);
      }
      if (limits.address_space != 0) {
        rlimit r{limits.address_space, limits.address_space};
        ::setrlimit(RLIMIT_AS, &r);
      }
      if (limits.open_files != 0) {
        rlimit r{limits.open_files, limits.open_files};
        ::setrlimit(RLIMIT_NOFILE, &r);
      }
      ::execve(argv[0], argv.data(), environ);
      ::_exit(127);
    }
  }
  ~FerritedProcess() { kill(SIGKILL); }
  FerritedProcess(const FerritedProcess&) = delete;
  FerritedProcess& operator=(const FerritedProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // False once the process has exited (its wait status is then kept).
  bool alive() {
    if (pid_ <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reap(st);
      return false;
    }
    return r == 0;
  }
  // The wait status once the process exited within `limit`, else nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (alive()) {
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }
  // Sends sig and waits for the exit; returns the wait status (or -1 if the
  // process was not started or already reaped).
  int kill(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reap(st);
    return st;
  }
  // Exit code (128 + signal for a signal), once exited; else -1.
  int exit_code() const {
    if (!status_) return -1;
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
  }
  // Seconds from start to the exit seen by alive(), wait_exit() or kill().
  double seconds_to_exit() const { return std::chrono::duration<double>(ran_).count(); }
  std::string log() const {
    std::ifstream f(err_.str());
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  void reap(int st) {
    status_ = st;
    pid_ = -1;
    ran_ = std::chrono::steady_clock::now() - started_;
  }

  bool capture_;
  TempPath err_{"ferrited-stderr"};
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::duration ran_{};
};

// How a ServerProcess runs ferrited.
struct ServerOptions {
  bool memcached = false;          // memcached UDP and TCP on one more free port
  std::vector<std::string> extra{};  // more ferrited arguments
  std::string pool_size = "256MiB";
  ProcessLimits limits{};
  bool capture_stderr = false;     // stderr in a file (log()) instead of the test's
  // Tries on fresh ports when the server exits during start (a picked port
  // was taken meanwhile, and ferrited refuses a taken port at once).
  int start_attempts = 1;
  int start_timeout_ms = 5000;     // per attempt, until it answers
};

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra = {}, std::string pool_size = "256MiB")
      : ServerProcess(
            ServerOptions{.memcached = false, .extra = std::move(extra), .pool_size = std::move(pool_size)}) {}
  explicit ServerProcess(ServerOptions o) : o_(std::move(o)) { pick_ports(); }
  ~ServerProcess() { stop(SIGKILL); }

  const std::string& pool_path() const { return pool_.str(); }
  uint16_t port() const { return port_; }
  uint16_t memcached_port() const { return mport_; }  // 0 without ServerOptions::memcached
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  // Exit code of a server that stopped on its own during start(), else -1.
  int exit_code() const { return exit_code_; }
  bool alive() { return proc_ && proc_->alive(); }
  // Its stderr (ServerOptions::capture_stderr), "" otherwise.
  std::string log() const { return proc_ ? proc_->log() : ""; }

  // Starts ferrited and waits until it answers a hello (and, with memcached,
  // accepts a TCP connection on the memcached port).
  bool start() {
    for (int attempt = 0; attempt < o_.start_attempts; ++attempt) {
      if (attempt > 0) pick_ports();
      if (start_once()) return true;
      if (proc_ && proc_->alive()) return false;  // running but not answering: a real failure
    }
    return false;
  }

  // Sends sig and waits; returns the wait status (or -1).
  int stop(int sig = SIGTERM) { return proc_ ? proc_->kill(sig) : -1; }

  std::unique_ptr<client::Client> client(int timeout_ms = 300) {
    client::ClientOptions o;
    o.timeout_ms = timeout_ms;
    auto c = client::Client::connect("127.0.0.1", port_, o);
    return c.is_ok() ? std::move(c).value() : nullptr;
  }

 private:
  void pick_ports() {
    port_ = free_udp_port();
    if (!o_.memcached) return;
    do {
      mport_ = free_udp_port();
    } while (mport_ == port_);
  }
  bool answers() {
    client::ClientOptions o;
    o.timeout_ms = 50;
    o.attempts = 1;
    if (!client::Client::connect("127.0.0.1", port_, o).is_ok()) return false;
    if (mport_ == 0) return true;
    const int fd = connect_loopback_tcp(mport_);
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }
  bool start_once() {
    if (std::getenv("FERRITED") == nullptr) return false;
    std::vector<std::string> args = {"--pool", pool_.str(), "--pool-size", o_.pool_size,
                                     "--port", std::to_string(port_),
                                     "--log-level", "warn"};
    if (mport_ != 0) {
      for (const char* proto : {"udp", "tcp"}) {
        const std::string key = std::string("server.memcached_") + proto + "_port=";
        args.insert(args.end(), {"--set", key + std::to_string(mport_)});
      }
    }
    args.insert(args.end(), o_.extra.begin(), o_.extra.end());
    proc_.reset();
    exit_code_ = -1;
    proc_ = std::make_unique<FerritedProcess>(args, o_.capture_stderr, o_.limits);
    if (!proc_->started()) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.start_timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers()) return true;
      if (!proc_->alive()) {
        exit_code_ = proc_->exit_code();
        return false;
      }
      if (mport_ != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  ServerOptions o_;
  TempPath pool_{"e2e"};
  uint16_t port_ = 0;
  uint16_t mport_ = 0;
  std::unique_ptr<FerritedProcess> proc_;
  int exit_code_ = -1;
};

}  // namespace ferrite::testing
