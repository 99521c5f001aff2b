// ferrited: the Ferrite server. Checks that every port it will serve is free
// (net/port_claim.h), then wires config -> pool -> index -> engine ->
// network backend, then waits for SIGINT/SIGTERM/SIGQUIT and shuts down
// gracefully: stop receiving, let the workers finish their bursts (every
// reply sent was already durable), close the index cleanly (counters, log
// tails), mark the pool clean, exit 0. SIGHUP is logged and ignored (the log
// goes to stderr: nothing to reopen), SIGUSR1 logs the counters, SIGPIPE is
// ignored (docs/operations.md, "Signals"). A startup failure once the index
// is open closes it and the pool the same way, so the next start is clean.
// Under a Type=notify systemd unit it reports READY=1 once every port serves
// and STOPPING=1 when shutdown begins (server/notify.h).
//
// Threads: main() alone handles signals (they are blocked in every thread,
// sigwait here); the housekeeping thread sweeps expired keys and rotates the
// cookie secret; the backends own their worker threads; the metrics
// endpoint (server.metrics_port) has its own.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "common/log.h"
#include "common/stats.h"
#include "index/index.h"
#include "net/kernel_backend.h"
#include "net/port_claim.h"
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
#include "net/dpdk_backend.h"
#endif
#include "pmem/pool.h"
#include "server/config.h"
#include "server/engine.h"
#include "server/memcached/items.h"
#include "server/memcached/tcp.h"
#include "server/memcached/udp.h"
#include "server/metrics_http.h"
#include "server/notify.h"
#if defined(FERRITE_PFSIM) && FERRITE_PFSIM
#include "server/pfsim_hook.h"  // test build ferrited-pfsim only
#endif

using namespace ferrite;

namespace {

int fail(const Status& s, int code = 1) {
  std::fprintf(stderr, "ferrited: %s\n", s.to_string().c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals first, before any thread exists (threads inherit the mask): the
  // handled ones are blocked everywhere and taken by sigwait below; a write
  // to a closed socket or pipe is an EPIPE error, never a signal.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto parsed = server::config_from_args(argc, argv);
  if (!parsed) return fail(parsed.status(), 2);
  if (parsed->exit_now) {
    std::fputs(parsed->message.c_str(), parsed->exit_code == 0 ? stdout : stderr);
    return parsed->exit_code;
  }
  const server::Config& cfg = parsed->config;
  if (parsed->print_config) {
    std::fputs(server::to_toml(cfg).c_str(), stdout);
    return 0;
  }
  LogLevel lvl = LogLevel::kInfo;
  (void)parse_log_level(cfg.log.level, &lvl);
  set_log_level(lvl);
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  const bool use_dpdk = cfg.server.backend == "dpdk";
#else
  const bool use_dpdk = false;
  if (cfg.server.backend != "kernel") {
    return fail(Status::invalid_argument("server.backend = \"" + cfg.server.backend +
                                         "\" is not available in this build (built without libdpdk; allowed: \"kernel\")"),
                2);
  }
#endif

  if (cfg.server.metrics_port != 0 && cfg.server.metrics_port == cfg.server.memcached_tcp_port) {
    return fail(Status::invalid_argument("server.metrics_port = " + std::to_string(cfg.server.metrics_port) +
                                         " is server.memcached_tcp_port: the metrics port must differ"),
                2);
  }
  if (cfg.server.memcached_udp_port != 0 && cfg.server.memcached_udp_port == cfg.server.port) {
    return fail(Status::invalid_argument("server.memcached_udp_port = " + std::to_string(cfg.server.memcached_udp_port) +
                                         " is server.port: the memcached UDP port must differ"),
                2);
  }

  server::EngineOptions eo;
  eo.max_datagram = cfg.server.max_datagram;
  eo.cookie_rotation = std::chrono::seconds(cfg.server.cookie_rotation_s);
  for (const std::string& c : cfg.server.allow) {
    auto cidr = server::parse_cidr(c);
    if (!cidr) return fail(cidr.status(), 2);
    eo.allow.push_back(*cidr);
  }

  // Every port this ferrited will serve must be free, checked before the
  // pool opens so "address in use" is the first and immediate error and the
  // pool is left alone. The binds below check again under the port's lock
  // (net/port_claim.h): a port taken in between is still refused.
  const bool mc_udp = cfg.server.memcached_udp_port != 0, mc_tcp = cfg.server.memcached_tcp_port != 0;
  constexpr const char* kNativeRole = "native UDP port (server.port)";
  constexpr const char* kMcUdpRole = "memcached UDP port (server.memcached_udp_port)";
  constexpr const char* kMcTcpRole = "memcached TCP port (server.memcached_tcp_port)";
  constexpr const char* kMetricsRole = "metrics HTTP port (server.metrics_port)";
  {
    Status st;
    if (!use_dpdk) {
      st = net::check_port_free(net::PortProto::kUdp, cfg.server.bind, static_cast<uint16_t>(cfg.server.port),
                                kNativeRole);
      if (st.is_ok() && mc_udp) {
        st = net::check_port_free(net::PortProto::kUdp, cfg.server.bind,
                                  static_cast<uint16_t>(cfg.server.memcached_udp_port), kMcUdpRole);
      }
    }
    if (st.is_ok() && mc_tcp) {
      st = net::check_port_free(net::PortProto::kTcp, cfg.server.bind,
                                static_cast<uint16_t>(cfg.server.memcached_tcp_port), kMcTcpRole);
    }
    if (st.is_ok() && cfg.server.metrics_port != 0) {
      st = net::check_port_free(net::PortProto::kTcp, cfg.server.bind, static_cast<uint16_t>(cfg.server.metrics_port),
                                kMetricsRole);
    }
    if (!st.is_ok()) return fail(st);
  }

  auto pool = pmem::Pool::open_or_create(cfg.pool.path, cfg.pool.size,
                                         server::segment_size_for(cfg.pool.segment_size, cfg.pool.size),
                                         {.probe_in_child = true});  // pmem/open_probe.h
  if (!pool) return fail(pool.status());
  // Index workers: the native workers, then one per memcached UDP worker,
  // then one per memcached TCP thread (each thread owns its worker; the
  // config allows at most 63 together, server/config.cc).
  const unsigned tcp_threads = mc_tcp ? cfg.server.tcp_workers : 0u;
  const unsigned index_workers = cfg.server.workers * (mc_udp ? 2u : 1u) + tcp_threads;
  index::IndexOptions iopts;
  iopts.workers = index_workers;
  iopts.space.background_cleaner = true;
  iopts.space.low_watermark = cfg.cleaner.low_watermark;
  iopts.space.high_watermark = cfg.cleaner.high_watermark;
  iopts.space.reserve = cfg.pool.reserve;
  iopts.space.evict = cfg.pool.when_full == "evict";
  iopts.space.max_wait_ms = cfg.cleaner.max_wait_ms;
  iopts.space.max_copy_mbps = cfg.cleaner.max_copy_mbps;
  // Items per memcached slab class (stats items / slabs), counted whether or
  // not a memcached port is open: a session that did not count would leave
  // the next one a recount (index/census.h).
  iopts.size_classes = server::memcached_size_classes();
#if defined(FERRITE_PFSIM) && FERRITE_PFSIM
  iopts.space.start_at_open = false;  // started once the simulator runs (below)
#endif
  auto idx = index::Index::open(**pool, iopts);
  if (!idx) {
    // Leave the pool's flag as it was: a pool that needed a crash repair still does.
    if ((*pool)->opened_after_clean_shutdown()) (*pool)->mark_clean_on_close();
    return fail(idx.status());
  }
  // From here on every return, a startup failure included, closes the index
  // cleanly and marks the pool clean, as the shutdown below does. Declared
  // before the engine and backends, so it runs after their destructors.
  struct CloseCleanly {
    decltype(pool)& p;
    decltype(idx)& i;
    ~CloseCleanly() {
      if (p.value() == nullptr) return;  // already closed by the shutdown path
      i.value().reset();
      p.value()->mark_clean_on_close();
      p.value().reset();
      log_info("pool closed cleanly after a failed start");
    }
  } close_cleanly{pool, idx};
  {
    // After a crash the index serves at once and repairs table segments on
    // first touch and in the background; the index logs when that is done.
    const index::IndexStats ist = (*idx)->stats();
    log_info("pool {} opened ({} MiB, {}, after {} shutdown); index opened in {:.1f} ms: {}", cfg.pool.path,
             (*pool)->size() >> 20, (*pool)->is_pmem() ? "flush+fence persistence" : "msync persistence",
             (*pool)->opened_after_clean_shutdown() ? "a clean" : "an unclean", ist.open_ms,
             ist.repair_done ? fmt::format("{} keys", (*idx)->count())
                             : fmt::format("crash repair of {} table segments runs in the background",
                                           ist.recovery_pending_segments));
    // pool.size (--pool-size, memcached's -m) sizes a new pool only.
    if ((*pool)->size() != cfg.pool.size) {
      log_warn("pool {} keeps its size of {} MiB; pool.size = {} MiB applies to a new pool only (to resize: ferritectl "
               "dump, stop, remove the pool file, start, ferritectl load)",
               cfg.pool.path, (*pool)->size() >> 20, cfg.pool.size >> 20);
    }
  }

#if defined(FERRITE_PFSIM) && FERRITE_PFSIM
  // ferrited-pfsim (test build): the power-failure simulator, started before
  // any thread persists (server/pfsim_hook.h). Absent from ferrited.
  auto pfsim = server::start_pfsim_from_env(**pool, **idx);
  if (!pfsim) return fail(pfsim.status());
  (*idx)->start_cleaner();  // only now: the simulator's copy must not miss its writes
#endif

  // DPDK: the polling cores run nothing but their workers, so the expiry
  // sweep happens in the workers' idle time, 64 slots (a few microseconds)
  // per idle millisecond, instead of 64 Ki slots (milliseconds) at once on
  // the housekeeping thread, which shares a core with something.
  if (use_dpdk) eo.idle_sweep_slots = 64;
  server::Engine engine(**idx, eo);
  // memcached over UDP: worker w of either backend calls the handler with
  // index worker workers + w (docs/memcached.md).
  server::McEngine mc(**idx, server::McOptions{.allow = eo.allow, .pool_bytes = (*pool)->size()});
  std::unique_ptr<server::McUdpHandler> mc_udp_handler;
  if (mc_udp) mc_udp_handler = std::make_unique<server::McUdpHandler>(mc, cfg.server.workers, cfg.server.workers);

  // One of the two backends; both drive the same engine through net::PacketHandler.
  std::unique_ptr<net::KernelBackend> kernel;
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  std::unique_ptr<net::DpdkBackend> dpdk;
  if (use_dpdk) {
    net::DpdkBackendOptions dopt;
    dopt.eal_args = cfg.dpdk.eal_args;
    dopt.log_level = cfg.log.level;
    dopt.port_id = static_cast<uint16_t>(cfg.dpdk.port);
    dopt.ip = cfg.dpdk.ip;
    dopt.mac = cfg.dpdk.mac;
    dopt.udp_port = static_cast<uint16_t>(cfg.server.port);
    dopt.workers = cfg.server.workers;
    dopt.pin_cores = cfg.server.pin_cores;
    dopt.mbufs = cfg.dpdk.mbufs;
    dopt.burst = cfg.dpdk.burst;
    dopt.max_datagram = cfg.server.max_datagram;
    dopt.idle_sleep_us = cfg.dpdk.idle_sleep_us;
    if (mc_udp_handler) {
      dopt.second_udp_port = static_cast<uint16_t>(cfg.server.memcached_udp_port);
      dopt.second_handler = mc_udp_handler.get();
    }
    auto b = net::DpdkBackend::create(dopt, engine);
    if (!b) return fail(b.status());
    dpdk = std::move(b).value();
  }
#endif
  net::KernelBackendOptions ko;
  ko.bind = cfg.server.bind;
  ko.port = static_cast<uint16_t>(cfg.server.port);
  ko.workers = cfg.server.workers;
  ko.pin_cores = cfg.server.pin_cores;
  ko.role = kNativeRole;
  if (!use_dpdk) {
    auto b = net::KernelBackend::create(ko, engine);
    if (!b) return fail(b.status());
    kernel = std::move(b).value();
  }
  // The stats op's entries after the engine's and the index's: the pool, then the backend.
  stats::Registry& reg = engine.stats_registry();
  reg.gauge("pool_bytes", "pool file size", [&pool] { return (*pool)->size(); });
  reg.gauge("pool_allocated_bytes", "bytes of the pool's heap allocated", [&pool] { return (*pool)->allocated_bytes(); });
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  if (dpdk) dpdk->add_stats(reg);
#endif
  if (kernel) kernel->add_stats(reg);

  // memcached (docs/memcached.md): UDP on its own port and workers, TCP on
  // server.tcp_workers epoll threads; both share the index and the allowlist.
  std::unique_ptr<net::KernelBackend> mc_udp_backend;
  std::unique_ptr<server::McTcpServer> mc_tcp_server;
  if (mc_udp && !use_dpdk) {
    net::KernelBackendOptions mo = ko;
    mo.port = static_cast<uint16_t>(cfg.server.memcached_udp_port);
    mo.role = kMcUdpRole;
    auto b = net::KernelBackend::create(mo, *mc_udp_handler);
    if (!b) return fail(b.status());
    mc_udp_backend = std::move(b).value();
  }
  if (mc_tcp) {
    auto t = server::McTcpServer::create(mc, cfg.server.bind, static_cast<uint16_t>(cfg.server.memcached_tcp_port),
                                         index_workers - tcp_threads, tcp_threads, cfg.server.max_connections);
    if (!t) return fail(t.status().with_context(kMcTcpRole));
    mc_tcp_server = std::move(t).value();
  }
  // The native engine's entries, prefixed, after memcached's own.
  mc.stats_registry().include(engine.stats_registry(), "ferrite_");
  // Prometheus /metrics (off by default): both registries, read on the
  // endpoint's own thread.
  std::unique_ptr<server::MetricsHttpServer> metrics;
  if (cfg.server.metrics_port != 0) {
    auto m = server::MetricsHttpServer::create(cfg.server.bind, static_cast<uint16_t>(cfg.server.metrics_port),
                                               [&engine, &mc] {
                                                 return server::render_metrics(engine.stats_registry(),
                                                                               mc.memcached_registry());
                                               });
    if (!m) return fail(m.status().with_context(kMetricsRole));
    metrics = std::move(m).value();
  }

#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  if (dpdk) {
    dpdk->start();
    log_info("ferrited serving udp {}:{} with {} worker lcore(s), dpdk backend: {}; pid {}", cfg.dpdk.ip,
             cfg.server.port, cfg.server.workers, dpdk->describe(), static_cast<long>(getpid()));
    if (mc_udp_handler) log_info("memcached protocol on udp {}:{} (dpdk)", cfg.dpdk.ip, cfg.server.memcached_udp_port);
  }
#endif
  if (kernel) {
    kernel->start();
    log_info("ferrited listening on udp {}:{} with {} worker(s), kernel backend; pid {}", cfg.server.bind,
             kernel->port(), cfg.server.workers, static_cast<long>(getpid()));
  }
  if (mc_udp_backend) {
    mc_udp_backend->start();
    log_info("memcached protocol on udp {}:{}", cfg.server.bind, mc_udp_backend->port());
  }
  if (mc_tcp_server) {
    mc_tcp_server->start();
    log_info("memcached protocol on tcp {}:{} with {} thread(s)", cfg.server.bind, mc_tcp_server->port(),
             mc_tcp_server->threads());
  }
  if (metrics) {
    metrics->start();
    log_info("metrics on http://{}:{}/metrics", cfg.server.bind, metrics->port());
  }

  // Every port answers from here on: a Type=notify unit's start completes
  // (server/notify.h; nothing without NOTIFY_SOCKET).
  (void)server::notify_service_manager(fmt::format("READY=1\nSTATUS=serving udp {}:{}", use_dpdk ? cfg.dpdk.ip : cfg.server.bind,
                                                   cfg.server.port));

  // Housekeeping: the expiry sweep, bounded per round. (Log cleaning is the
  // index's own cleaner thread, driven by free space: index/space.h.)
  std::atomic<bool> stopping{false};
  std::thread house([&] {
    while (!stopping.load(std::memory_order_relaxed)) {
      if (eo.idle_sweep_slots == 0) (void)(*idx)->sweep_expired(1 << 16);
      if (engine.maybe_rotate_cookie_secret(std::chrono::steady_clock::now())) {
        log_debug("cookie secret rotated (every {} s; the previous one is still accepted)", cfg.server.cookie_rotation_s);
      }
      for (int i = 0; i < 10 && !stopping.load(std::memory_order_relaxed); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });

  int sig = 0;
  for (;;) {
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      log_info("SIGHUP received: ignored (the log goes to stderr, there is no log file to reopen)");
    } else if (sig == SIGUSR1) {
      log_info("SIGUSR1 received: {}", stats::render_logfmt(engine.stats_registry().sample()));
    } else {
      break;  // SIGINT, SIGTERM, SIGQUIT
    }
  }
  log_info("signal {} ({}) received: shutting down", sig, sig == SIGQUIT ? "SIGQUIT" : sig == SIGINT ? "SIGINT" : "SIGTERM");
  (void)server::notify_service_manager("STOPPING=1");
  stopping.store(true);
  house.join();
  if (metrics) metrics->stop();
  // Workers finish their current burst and exit.
  if (kernel) kernel->stop();
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  if (dpdk) dpdk->stop();
#endif
  if (mc_udp_backend) mc_udp_backend->stop();
  if (mc_tcp_server) mc_tcp_server->stop();
  idx.value().reset();  // clean index close: counters and log tails
  (*pool)->mark_clean_on_close();
  pool.value().reset();
#if defined(FERRITE_HAVE_DPDK) && FERRITE_HAVE_DPDK
  dpdk.reset();  // port closed, EAL cleaned up (hugepage files of --file-prefix removed)
#endif
  log_info("ferrited stopped cleanly");
  return 0;
}
