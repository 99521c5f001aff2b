// server_bench: end-to-end throughput and latency of ferrited over loopback,
// driven by the client library, beside memcached over UDP (its peer) driven
// by the same loop with a minimal memcached-UDP client, in the same run.
//
//   PMEM_IS_PMEM_FORCE=1 build/perf/server_bench [--keys 100000] [--value 32]
//       [--get-ratio 0.9] [--threads 1] [--batch 1] [--seconds 5]
//
// Closed loop: each client thread keeps one request outstanding; a request
// carries --batch ops (ferrite only; memcached's UDP protocol gets one op per
// request). Latency is per request, from send to the last reply datagram.
// Every run is bounded by --seconds and stops by itself; servers are started
// on free loopback ports and killed at the end.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/histogram.h"
#include "proto/memcached_udp.h"

extern char** environ;
using namespace ferrite;
using Clock = std::chrono::steady_clock;

namespace {

struct Opts {
  uint64_t keys = 100000;
  std::size_t value = 32;
  double get_ratio = 0.9;
  unsigned threads = 1;
  unsigned batch = 1;
  double seconds = 5;
  std::string ferrited = "build/server/ferrited";
  std::string memcached = "/usr/bin/memcached";
};

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t l = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  ::close(fd);
  return ntohs(a.sin_port);
}

pid_t spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0].c_str(), nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

std::string key_of(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof(b), "key:%012llu", static_cast<unsigned long long>(i));
  return b;
}

struct RunResult {
  double ops_per_s = 0;
  double p50_us = 0, p99_us = 0;
  uint64_t errors = 0;
};

uint64_t ns_since(Clock::time_point t0) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// Per-thread latency histograms, in ns.
RunResult summarize(const std::vector<Histogram>& lat, uint64_t ops, double secs, uint64_t errors) {
  Histogram all;
  for (const auto& h : lat) all.merge(h);
  RunResult r;
  r.ops_per_s = static_cast<double>(ops) / secs;
  r.p50_us = static_cast<double>(all.percentile(0.5)) / 1000.0;
  r.p99_us = static_cast<double>(all.percentile(0.99)) / 1000.0;
  r.errors = errors;
  return r;
}

// ---- ferrite ----
RunResult run_ferrite(const Opts& o, uint16_t port, unsigned batch) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ops{0}, errors{0};
  std::vector<Histogram> lat(o.threads);
  std::string value(o.value, 'v');
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < o.threads; ++t) {
    ts.emplace_back([&, t] {
      auto c = client::Client::connect("127.0.0.1", port);
      if (!c) {
        errors += 1;
        return;
      }
      std::mt19937_64 rng(t + 1);
      std::vector<std::string> keys(batch);
      std::vector<proto::RequestOp> req(batch);
      std::vector<client::Reply> rep;
      while (!stop.load(std::memory_order_relaxed)) {
        for (unsigned b = 0; b < batch; ++b) {
          keys[b] = key_of(rng() % o.keys);
          req[b] = proto::RequestOp{};
          req[b].key = keys[b];
          if (std::uniform_real_distribution<double>(0, 1)(rng) < o.get_ratio) {
            req[b].opcode = proto::Opcode::kGet;
          } else {
            req[b].opcode = proto::Opcode::kSet;
            req[b].value = value;
          }
        }
        auto t0 = Clock::now();
        Status s = (*c)->execute(req, &rep);
        const uint64_t ns = ns_since(t0);
        if (!s.is_ok()) {
          errors += 1;
          continue;
        }
        lat[t].record(ns);
        ops += batch;
      }
    });
  }
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& th : ts) th.join();
  return summarize(lat, ops, std::chrono::duration<double>(Clock::now() - t0).count(), errors);
}

// ---- memcached over UDP: 8-byte frame header + text protocol ----
class McUdp {
 public:
  explicit McUdp(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  ~McUdp() { ::close(fd_); }
  // Sends cmd and waits for the complete reply; false on timeout.
  bool call(const std::string& cmd, std::string* reply) {
    const uint16_t id = ++id_;
    std::string dg(proto::mc::kUdpHeaderSize, '\0');
    proto::mc::encode_udp_header({id, 0, 1, 0}, reinterpret_cast<uint8_t*>(dg.data()));
    dg += cmd;
    ::send(fd_, dg.data(), dg.size(), 0);
    reply->clear();
    char buf[2048];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) return false;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      proto::mc::UdpHeader h;
      if (n < 0 || !proto::mc::decode_udp_header(std::string_view(buf, static_cast<std::size_t>(n)), &h)) continue;
      if (h.request_id != id) continue;
      reply->append(buf + proto::mc::kUdpHeaderSize, static_cast<std::size_t>(n) - proto::mc::kUdpHeaderSize);
      if (reply->size() >= 5 && (reply->ends_with("END\r\n") || reply->ends_with("STORED\r\n"))) return true;
    }
  }

 private:
  int fd_;
  uint16_t id_ = 0;
};

RunResult run_memcached(const Opts& o, uint16_t port) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ops{0}, errors{0};
  std::vector<Histogram> lat(o.threads);
  std::string value(o.value, 'v');
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < o.threads; ++t) {
    ts.emplace_back([&, t] {
      McUdp mc(port);
      std::mt19937_64 rng(t + 1);
      std::string reply;
      while (!stop.load(std::memory_order_relaxed)) {
        const std::string k = key_of(rng() % o.keys);
        std::string cmd = std::uniform_real_distribution<double>(0, 1)(rng) < o.get_ratio
                              ? "get " + k + "\r\n"
                              : "set " + k + " 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n";
        auto t0 = Clock::now();
        if (!mc.call(cmd, &reply)) {
          errors += 1;
          continue;
        }
        lat[t].record(ns_since(t0));
        ops += 1;
      }
    });
  }
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& th : ts) th.join();
  return summarize(lat, ops, std::chrono::duration<double>(Clock::now() - t0).count(), errors);
}

bool wait_ferrite(uint16_t port) {
  for (int i = 0; i < 100; ++i) {
    client::ClientOptions co;
    co.timeout_ms = 50;
    co.attempts = 1;
    if (client::Client::connect("127.0.0.1", port, co).is_ok()) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  CLI::App app{"server_bench: ferrited vs memcached over loopback UDP"};
  app.add_option("--keys", o.keys);
  app.add_option("--value", o.value);
  app.add_option("--get-ratio", o.get_ratio);
  app.add_option("--threads", o.threads);
  app.add_option("--batch", o.batch, "ops per ferrite request (an extra row)");
  app.add_option("--seconds", o.seconds);
  app.add_option("--ferrited", o.ferrited);
  app.add_option("--memcached", o.memcached);
  CLI11_PARSE(app, argc, argv);
  std::string cmdline;
  for (int i = 0; i < argc; ++i) cmdline += std::string(i ? " " : "") + argv[i];
  std::printf("# command: PMEM_IS_PMEM_FORCE=1 %s\n", cmdline.c_str());
  std::printf("# %llu keys, %zu-byte values, %.0f%% gets, %u client thread(s), %.1f s per row, loopback UDP\n",
              static_cast<unsigned long long>(o.keys), o.value, o.get_ratio * 100, o.threads, o.seconds);

  // ferrited on a fresh pool.
  const uint16_t fport = free_port();
  const std::string pool = "/dev/shm/ferrite-bench-" + std::to_string(getpid()) + ".pool";
  ::unlink(pool.c_str());
  pid_t fpid = spawn({o.ferrited, "--pool", pool, "--pool-size", "2GiB", "--port", std::to_string(fport), "--log-level",
                      "warn"});
  if (fpid < 0 || !wait_ferrite(fport)) {
    std::fprintf(stderr, "server_bench: cannot start %s\n", o.ferrited.c_str());
    return 1;
  }
  // memcached: one thread, UDP only, loopback only.
  const uint16_t mport = free_port();
  pid_t mpid = access(o.memcached.c_str(), X_OK) == 0
                   ? spawn({o.memcached, "-U", std::to_string(mport), "-p", "0", "-l", "127.0.0.1", "-t", "1", "-m",
                            "1024", "-u", "root"})
                   : -1;

  // Preload every key in both, so gets hit.
  {
    auto c = client::Client::connect("127.0.0.1", fport);
    std::string v(o.value, 'v');
    std::vector<std::string> ks;
    std::vector<proto::RequestOp> batch;
    std::vector<client::Reply> rep;
    for (uint64_t i = 0; i < o.keys; i += 32) {
      ks.clear();
      batch.clear();
      for (uint64_t j = i; j < std::min(o.keys, i + 32); ++j) ks.push_back(key_of(j));
      for (auto& k : ks) {
        proto::RequestOp op;
        op.opcode = proto::Opcode::kSet;
        op.key = k;
        op.value = v;
        batch.push_back(op);
      }
      if (!c || !(*c)->execute(batch, &rep).is_ok()) {
        std::fprintf(stderr, "server_bench: preload of ferrited failed\n");
        return 1;
      }
    }
  }
  if (mpid > 0) {
    usleep(200000);
    McUdp mc(mport);
    std::string v(o.value, 'v'), reply;
    for (uint64_t i = 0; i < o.keys; ++i) {
      (void)mc.call("set " + key_of(i) + " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n", &reply);
    }
  }

  std::printf("\n| system | ops/request | ops/s | p50 us/request | p99 us/request | ratio to memcached | errors |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  RunResult m{};
  if (mpid > 0) {
    m = run_memcached(o, mport);
    std::printf("| memcached 1.6 UDP (peer) | 1 | %.0f | %.1f | %.1f | 1.00 | %llu |\n", m.ops_per_s, m.p50_us, m.p99_us,
                static_cast<unsigned long long>(m.errors));
  }
  auto row = [&](unsigned batch) {
    RunResult f = run_ferrite(o, fport, batch);
    std::printf("| ferrited kernel UDP | %u | %.0f | %.1f | %.1f | %s | %llu |\n", batch, f.ops_per_s, f.p50_us, f.p99_us,
                m.ops_per_s > 0 ? std::to_string(f.ops_per_s / m.ops_per_s).substr(0, 4).c_str() : "n/a",
                static_cast<unsigned long long>(f.errors));
  };
  row(1);
  if (o.batch > 1) row(o.batch);

  ::kill(fpid, SIGTERM);
  ::waitpid(fpid, nullptr, 0);
  if (mpid > 0) {
    ::kill(mpid, SIGTERM);
    ::waitpid(mpid, nullptr, 0);
  }
  ::unlink(pool.c_str());
  return 0;
}
