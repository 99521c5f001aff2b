// ferrite-bench: a load generator for ferrited (native protocol) and for
// memcached-compatible servers (memcached UDP protocol), over kernel UDP or,
// with --transport dpdk (DPDK builds), over one DPDK port such as net_memif.
//
//   ferrite-bench --port 11311 --protocol native --flows 4 --depth 32 --duration 10 --preload
//   ferrite-bench --port 11211 --protocol memcached --mode open --rate 200000 --duration 10
//
// Closed loop: --depth requests outstanding per flow. Open loop: Poisson
// arrivals at --rate ops/s, latency from each request's intended send time.
// Lost requests (no reply within --timeout-ms) are counted, never resent.
// A live progress line goes to stderr every second; the result goes to stdout
// as a table, CSV or JSON (--format), or is appended to --out.
// Every run stops by itself: warmup + duration (+ one timeout to drain), or
// earlier at --ops.
//
// --timeline FILE writes one CSV row per second of the measured window
// (perf/bench/timeline.h); --fill-on-miss makes the generator a cache-aside
// client (each get miss is followed by a set of that key on the same flow)
// and the hit ratio is the figure to read (hit_ratio, the last CSV column).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include "common/address.h"
#include "common/limits.h"
#include "common/version.h"
#include "perf/bench/report.h"
#include "perf/bench/runner.h"
#include "perf/bench/transport.h"
#ifdef FERRITE_BENCH_DPDK
#include "perf/bench/dpdk_transport.h"
#endif

using namespace ferrite;
using namespace ferrite::bench;

namespace {

struct Cli {
  std::string server = "127.0.0.1";
  uint16_t port = 11311;
  std::string protocol = "native";
  std::string mode = "closed";
  std::string transport = "kernel";
  unsigned threads = 1;
  unsigned flows = 4;
  bool preload = false;
  bool preload_only = false;
  std::string format = "table";
  std::string out;
  std::string label;
  std::string timeline;
  bool quiet = false;
  // --transport dpdk
  std::string eal;
  uint16_t dpdk_port = 0;
  std::string ip = "10.78.0.2";
  std::string mac;
  uint16_t src_port = 40000;
};

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

RunLabel run_label(const Cli& cli) { return RunLabel{cli.label, cli.protocol, cli.mode, cli.threads, cli.flows}; }

std::string table(const Cli& cli, const RunConfig& c, const RunResult& r) {
  const auto& h = r.latency;
  std::string s;
  s += fmt::format("# {} {} {} loop, {} thread(s) x {} flow(s), {}, {} op(s)/datagram, {} keys ({} B), {} B values, "
                   "{:.0f}% gets, {}{}\n",
                   cli.label.empty() ? "run" : cli.label, cli.protocol, cli.mode, cli.threads, cli.flows / cli.threads,
                   c.mode == Mode::kOpen ? fmt::format("target {:.0f} ops/s", c.rate)
                                         : fmt::format("depth {}", c.depth),
                   c.batch, c.keys, c.key_size, c.value_size, c.get_ratio * 100,
                   c.zipf_theta > 0 ? fmt::format("zipf {}", c.zipf_theta) : std::string("uniform keys"),
                   c.fill_on_miss ? ", fill on miss" : "");
  s += "| ops/s | p50 us | p90 us | p99 us | p99.9 us | max us | lost | errors | get hits | get misses | hit ratio |\n";
  s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
  s += fmt::format("| {:.0f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {} ({:.3f}%) | {} | {} | {} | {} |\n",
                   r.ops_per_s(), us(h.percentile(0.5)), us(h.percentile(0.9)), us(h.percentile(0.99)),
                   us(h.percentile(0.999)), us(h.max()), r.lost, r.loss_ratio() * 100, r.errors, r.get_hits,
                   r.get_misses, r.hit_ratio() < 0 ? std::string("-") : fmt::format("{:.4f}", r.hit_ratio()));
  if (r.sets_failed != 0 || r.fills != 0) {
    s += fmt::format("# sets ok {}, sets failed {}{}\n", r.sets_ok, r.sets_failed,
                     c.fill_on_miss ? fmt::format(", fills after a miss {}", r.fills) : std::string());
  }
  if (c.mode == Mode::kOpen) s += fmt::format("# worst send lag behind schedule: {:.1f} us\n", us(r.max_send_lag_ns));
  return s;
}

// Runs cfg on cli.threads threads (flows, rate and preload keys split among
// them) and merges the results. Returns false (after printing why) on a
// transport or handshake failure.
bool run_all(const Cli& cli, const RunConfig& cfg, bool show_progress, RunResult* out) {
  std::vector<std::unique_ptr<Transport>> ts;
  std::vector<std::unique_ptr<Runner>> rs;
  Progress progress;
  for (unsigned i = 0; i < cli.threads; ++i) {
    StatusOr<std::unique_ptr<Transport>> t = Status::invalid_argument("transport " + cli.transport);
    if (cli.transport == "dpdk") {
#ifdef FERRITE_BENCH_DPDK
      DpdkOptions d;
      d.eal = cli.eal;
      d.port_id = cli.dpdk_port;
      d.mac = cli.mac;
      d.ip = cli.ip;
      d.server_ip = cli.server;
      d.server_port = cli.port;
      d.src_port = cli.src_port;
      d.flows = std::max(1u, cli.flows);
      t = make_dpdk_transport(d);
#endif
    } else {
      KernelUdpOptions ko;
      ko.server = cli.server;
      ko.port = cli.port;
      ko.flows = std::max(1u, cli.flows / cli.threads);
      t = make_kernel_udp_transport(ko);
    }
    if (!t) {
      std::fprintf(stderr, "ferrite-bench: %s\n", t.status().to_string().c_str());
      return false;
    }
    RunConfig c = cfg;
    c.seed = cfg.seed * 1000003 + i;
    c.rate = cfg.rate / cli.threads;
    if (c.preload) {
      const uint64_t per = (cfg.key_end - cfg.key_begin + cli.threads - 1) / cli.threads;
      c.key_begin = cfg.key_begin + per * i;
      c.key_end = std::min(cfg.key_end, c.key_begin + per);
      if (c.key_end <= c.key_begin) continue;
    }
    rs.push_back(std::make_unique<Runner>(c, **t, &progress));
    ts.push_back(std::move(t).value());
    Status s = rs.back()->handshake();
    if (!s.is_ok()) {
      std::fprintf(stderr, "ferrite-bench: %s\n", s.to_string().c_str());
      return false;
    }
  }
  std::vector<RunResult> results(rs.size());
  std::atomic<unsigned> done{0};
  std::vector<std::thread> th;
  for (std::size_t i = 0; i < rs.size(); ++i) {
    th.emplace_back([&, i] {
      results[i] = rs[i]->run();
      done.fetch_add(1);
    });
  }
  const bool tty = isatty(2) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto last = t0;
  uint64_t tot_ops = 0, tot_lost = 0;
  while (done.load() < rs.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) continue;
    uint64_t ops = 0, lost = 0;
    Histogram h;
    progress.take(&ops, &lost, &h);
    tot_ops += ops;
    tot_lost += lost;
    const double dt = std::chrono::duration<double>(now - last).count();
    last = now;
    if (show_progress) {
      std::fprintf(stderr, "%s[%5.1f s] %9.0f ops/s  lost %llu (total %llu)  p99 %.1f us  max %.1f us%s",
                   tty ? "\r" : "", std::chrono::duration<double>(now - t0).count(), static_cast<double>(ops) / dt,
                   static_cast<unsigned long long>(lost), static_cast<unsigned long long>(tot_lost),
                   us(h.percentile(0.99)), us(h.max()), tty ? "   " : "\n");
    }
  }
  for (auto& t : th) t.join();
  if (show_progress && tty) std::fputc('\n', stderr);
  *out = RunResult{};
  for (auto& r : results) out->merge(r);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  RunConfig cfg;
  CLI::App app{"ferrite-bench: load generator for ferrited (native) and memcached (UDP) over loopback or LAN",
               "ferrite-bench"};
  app.set_version_flag("--version", fmt::format("ferrite-bench {}", ferrite::kVersion));
  app.add_option("--server", cli.server, "server address HOST:PORT (as ferritectl's), or HOST with --port")
      ->capture_default_str();
  CLI::Option* o_port =
      app.add_option("--port", cli.port, "server UDP port when --server gives none")->capture_default_str();
  app.add_option("--protocol", cli.protocol, "native | memcached")->check(CLI::IsMember({"native", "memcached"}));
  app.add_option("--mode", cli.mode, "closed (depth outstanding per flow) | open (Poisson at --rate)")
      ->check(CLI::IsMember({"closed", "open"}));
#ifdef FERRITE_BENCH_DPDK
  app.add_option("--transport", cli.transport, "kernel (UDP sockets) | dpdk (one DPDK port, see --eal)")
      ->check(CLI::IsMember({"kernel", "dpdk"}));
  app.add_option("--eal", cli.eal, "dpdk: EAL arguments (one string), e.g. a --vdev=net_memif0,role=client,...");
  app.add_option("--dpdk-port", cli.dpdk_port, "dpdk: port id");
  app.add_option("--ip", cli.ip, "dpdk: our IPv4 address (--server is the server's)");
  app.add_option("--mac", cli.mac, "dpdk: our MAC (default: the port's)");
  app.add_option("--src-port", cli.src_port, "dpdk: flow f sends from this UDP port + f");
#else
  app.add_option("--transport", cli.transport, "kernel (UDP sockets; this build has no DPDK)")
      ->check(CLI::IsMember({"kernel"}));
#endif
  app.add_option("--threads", cli.threads, "generator threads (flows, rate and preload split among them)")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--flows", cli.flows, "UDP flows (source ports) in total")->check(CLI::Range(1u, 4096u));
  app.add_option("--depth", cfg.depth, "closed loop: requests outstanding per flow; open: most in flight per flow");
  app.add_option("--rate", cfg.rate, "open loop: target ops/s (all threads)");
  app.add_option("--keys", cfg.keys, "key count");
  app.add_option("--key-size", cfg.key_size, fmt::format("key bytes (8..{})", limits::kMaxKeyLen));
  app.add_option("--value-size", cfg.value_size, "value bytes");
  app.add_option("--get-ratio", cfg.get_ratio, "fraction of gets (the rest are sets)");
  app.add_option("--zipf", cfg.zipf_theta, "Zipf theta in (0,1) for skewed keys; 0 = uniform");
  app.add_option("--batch", cfg.batch, "ops per request datagram (native protocol only)");
  app.add_option("--duration", cfg.duration_s, "measured seconds");
  app.add_option("--warmup", cfg.warmup_s, "seconds of load before measuring");
  app.add_option("--ops", cfg.max_ops, "stop after this many ops (0 = time bound only)");
  app.add_option("--timeout-ms", cfg.timeout_ms, "a request with no reply after this long is lost");
  app.add_option("--seed", cfg.seed, "random seed");
  app.add_flag("--preload", cli.preload, "set every key once before the run");
  app.add_flag("--preload-only", cli.preload_only, "set every key once, then exit");
  app.add_option("--format", cli.format, "table | csv | json")->check(CLI::IsMember({"table", "csv", "json"}));
  app.add_option("--out", cli.out, "append the result (CSV rows with a header when new, or JSON lines) to FILE");
  app.add_option("--label", cli.label, "a name for this run in the output");
  app.add_option("--timeline", cli.timeline,
                 "write one CSV row per second of the measured window to FILE (second,ops,ops_per_s,sets_ok,"
                 "sets_failed,get_hits,get_misses,lost,errors)");
  app.add_flag("--fill-on-miss", cfg.fill_on_miss,
               "cache-aside: each get that misses is followed (same flow, next request) by a set of that key");
  app.add_flag("--quiet", cli.quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);
  {
    auto addr = ferrite::parse_host_port(cli.server, cli.port);
    if (!addr) {
      std::fprintf(stderr, "ferrite-bench: --server: %s\n", std::string(addr.status().message()).c_str());
      return 2;
    }
    if (o_port->count() != 0 && addr->port != cli.port) {
      std::fprintf(stderr, "ferrite-bench: --server %s and --port %u name different ports: give one\n",
                   cli.server.c_str(), static_cast<unsigned>(cli.port));
      return 2;
    }
    cli.server = addr->host;
    cli.port = addr->port;
  }
  cfg.protocol = cli.protocol == "native" ? Protocol::kNative : Protocol::kMemcached;
  cfg.mode = cli.mode == "open" ? Mode::kOpen : Mode::kClosed;
  if (cli.flows < cli.threads) cli.flows = cli.threads;
#ifdef FERRITE_BENCH_DPDK
  struct DpdkShutdown {  // the port and EAL outlive run_all's transports (preload, then the run)
    ~DpdkShutdown() { dpdk_transport_shutdown(); }
  } dpdk_shutdown;
#endif
  if (cli.transport == "dpdk" && cli.threads != 1) {
    std::fprintf(stderr, "ferrite-bench: --transport dpdk runs one generator thread (one port queue)\n");
    return 2;
  }
  if (std::string e = check_config(cfg); !e.empty()) {
    std::fprintf(stderr, "ferrite-bench: %s\n", e.c_str());
    return 2;
  }

  if (cli.preload || cli.preload_only) {
    RunConfig p = cfg;
    p.preload = true;
    p.mode = Mode::kClosed;
    p.batch = cfg.protocol == Protocol::kNative ? std::min(16u, max_batch(cfg))
                                                : 1;
    p.key_begin = 0;
    p.key_end = cfg.keys;
    p.warmup_s = 0;
    p.duration_s = 600;
    p.max_ops = 0;
    p.depth = std::min(cfg.depth, 64u);
    RunResult r;
    const auto t0 = std::chrono::steady_clock::now();
    if (!run_all(cli, p, false, &r)) return 1;
    std::fprintf(stderr, "ferrite-bench: preload: %llu sets ok, %llu failed, %llu lost, %llu errors in %.2f s\n",
                 static_cast<unsigned long long>(r.sets_ok), static_cast<unsigned long long>(r.sets_failed),
                 static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.errors),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (cli.preload_only) return r.sets_ok == cfg.keys ? 0 : 1;
  }

  RunResult r;
  if (!run_all(cli, cfg, !cli.quiet, &r)) return 1;
  std::string text;
  if (cli.format == "csv") {
    text = csv_header() + csv_row(run_label(cli), cfg, r);
  } else if (cli.format == "json") {
    text = json_row(run_label(cli), cfg, r);
  } else {
    text = table(cli, cfg, r);
  }
  std::fputs(text.c_str(), stdout);
  if (!cli.timeline.empty()) {
    std::ofstream f(cli.timeline, std::ios::trunc);
    f << timeline_csv(r.timeline);
    f.close();
    if (!f) {
      std::fprintf(stderr, "ferrite-bench: cannot write %s\n", cli.timeline.c_str());
      return 1;
    }
  }
  if (!cli.out.empty()) {
    struct stat st{};
    const bool fresh = ::stat(cli.out.c_str(), &st) != 0 || st.st_size == 0;
    // A file begun by an older ferrite-bench keeps its columns: rows for it
    // leave out the columns added since (hit_ratio).
    std::size_t columns = 0;
    if (!fresh && cli.format != "json") {
      std::ifstream in(cli.out);
      std::string header;
      std::getline(in, header);
      columns = csv_columns(header);
    }
    std::ofstream f(cli.out, std::ios::app);
    if (cli.format == "json") {
      f << json_row(run_label(cli), cfg, r);
    } else {
      if (fresh) f << csv_header();
      f << csv_prefix(csv_row(run_label(cli), cfg, r), columns);
    }
    if (!f) {
      std::fprintf(stderr, "ferrite-bench: cannot write %s\n", cli.out.c_str());
      return 1;
    }
  }
  return r.requests_done > 0 ? 0 : 1;
}
