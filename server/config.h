// ferrited's configuration: a TOML file (configs/default.toml is compiled in
// as the default) plus command-line overrides, all validated in one place.
// Unknown keys and bad values are rejected with the dotted key name and the
// allowed range, e.g.
//   server.port = 70000 is out of range (allowed 1..65535)
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferrite::server {

struct Config {
  struct Server {
    std::string backend = "kernel";
    std::string bind = "127.0.0.1";
    uint32_t port = 11311;
    uint32_t workers = 1;
    bool pin_cores = true;
    std::vector<std::string> allow = {"127.0.0.0/8"};
    uint32_t cookie_rotation_s = 600;  // anti-amplification cookie secret rotation (server/cookie.h)
    uint32_t metrics_port = 0;         // Prometheus /metrics over HTTP on bind (0: off; server/metrics_http.h)
    uint32_t memcached_udp_port = 0;
    uint32_t memcached_tcp_port = 0;
    uint32_t tcp_workers = 1;  // memcached TCP epoll threads, one index worker each
    uint32_t max_connections = 4096;  // memcached TCP connections open at once; more are refused (memcached's -c)
    uint32_t max_datagram = 1472;
    bool operator==(const Server&) const = default;
  } server;
  struct Pool {
    std::string path = "/dev/shm/ferrite.pool";
    uint64_t size = 1ull << 30;
    // 0 = "auto": chosen at pool creation by segment_size_for() (fixed for
    // the pool's life after that; an existing pool keeps its own).
    uint64_t segment_size = 0;
    std::string when_full = "error";   // "error" | "evict"
    double reserve = 0.10;
    bool operator==(const Pool&) const = default;
  } pool;
  struct Cleaner {
    double low_watermark = 0.10;
    double high_watermark = 0.20;
    uint32_t max_copy_mbps = 0;
    uint32_t max_wait_ms = 250;
    bool operator==(const Cleaner&) const = default;
  } cleaner;
  struct Log {
    std::string level = "info";
    bool operator==(const Log&) const = default;
  } log;
  struct Dpdk {
    std::vector<std::string> eal_args;
    uint32_t port = 0;
    std::string ip = "10.0.0.1";
    std::string mac;
    uint32_t mbufs = 8191;
    uint32_t burst = 32;
    uint32_t idle_sleep_us = 0;
    bool operator==(const Dpdk&) const = default;
  } dpdk;
  bool operator==(const Config&) const = default;
};

// The embedded default (the text of configs/default.toml).
std::string_view default_config_toml() noexcept;

// Parses TOML text on top of the built-in defaults; source names the text in
// error messages (a path, or "command line").
StatusOr<Config> parse_config(std::string_view toml_text, std::string_view source);
StatusOr<Config> load_config_file(const std::string& path);

// Parses "1GiB", "512MiB", "4096", "64k" ... into bytes.
StatusOr<uint64_t> parse_size(std::string_view s);

// The log segment size a new pool of `pool_size` bytes gets for a configured
// pool.segment_size (0 = "auto": 2 MiB below 1 GiB, where each log head and
// reserve segment is a visible share of the pool, else 4 MiB).
uint64_t segment_size_for(uint64_t configured, uint64_t pool_size) noexcept;

std::string to_toml(const Config& c);

struct ParsedArgs {
  Config config;
  bool print_config = false;
  bool exit_now = false;   // --help / --version: print message, exit with exit_code
  int exit_code = 0;
  std::string message;
};
StatusOr<ParsedArgs> config_from_args(int argc, const char* const* argv);

}  // namespace ferrite::server
