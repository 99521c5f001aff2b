// ferrite-crashtest: a crash campaign runner for users (issue 5).
//
//   ferrite-crashtest --mode inprocess --pf random --cycles 1000 --seconds 600
//   ferrite-crashtest --mode server --pf off --cycles 100
//
// Runs cycles of write -> kill -9 (optionally a simulated power failure) ->
// offline check -> recover -> verify every key against the writers' journal,
// shows progress on stderr, and prints a summary on stdout. Exit codes: 0
// every cycle verified clean; 1 a loss, torn record, unexpected value,
// duplicate key, bad live read, checker problem or failed recovery; 2 usage
// or setup error (the harness, not the store); 3 the time bound ended the
// campaign before --min-cycles cycles; 4 an evict campaign in which no key
// was ever found evicted (it did not test eviction); 5 the store stopped
// serving writes (the writers' first batch of a cycle got no answer within
// 30 s in-process, 20 s against ferrited; the cycle is still verified). See
// docs/durability.md and recovery/crashtest.h.
//
// Space campaigns (issue 14: the background cleaner, writers waiting for
// room, eviction) on an overwrite-heavy small pool: 64 MiB of 2 MiB
// segments (capacity 60 MiB; with 2 writers the live-data limit is about
// 40-44 MiB in error mode, 46-50 MiB in evict mode, lower while more log
// heads are open), ~1 KB values, every key written once before the first
// cycle, so from cycle 0 on each cycle's writes need the cleaner (a few
// hundred ms of writes turn a good part of the pool over):
//   error, live data ~50% of the pool (~75% of the limit; no write should
//   be refused):
//     ferrite-crashtest --space error --keys 32000 --value-min 900
//       --value-max 1100 --pool-size 64MiB --segment-size 2MiB
//       --kill-after-ms-min 50 --kill-after-ms-max 400
//       --mode inprocess --pf random --cycles 100
//   evict, live data 150% of the pool (eviction must happen): the same with
//     --space evict --keys 96000
//   and both with --mode server (--pf off: see crashtest_server.cc).
// -v prints a line per cycle with the space counters at the kill (live
// data, the limit, free space), the summary their sums.
// The summary prints the acknowledged bytes per cycle against the pool's
// size and the cleaner's counters sampled just before each kill.
//
// Single-threaded apart from the runners' writer threads.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/histogram.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/version.h"
#include "recovery/crashtest.h"

using namespace ferrite;
using namespace ferrite::recovery;
using namespace ferrite::recovery::crashtest;

namespace {

std::atomic<bool> g_interrupted{false};
void on_signal(int) { g_interrupted.store(true); }

struct Totals {
  uint64_t cycles = 0, killed_writing = 0, killed_early = 0, ended_on_own = 0, clean_closes = 0;
  uint64_t issued = 0, acked = 0, no_space = 0, live_full = 0, keys_checked = 0;
  uint64_t lost = 0, torn = 0, unexpected = 0, duplicates = 0, check_problems = 0, recovery_failures = 0;
  uint64_t absent_evictable = 0, bad_reads = 0, keys_present = 0;
  uint64_t stalled = 0;  // cycles killed writing in which more writes were refused than acknowledged
  uint64_t acked_bytes = 0, acked_bytes_max = 0;
  // --space: the cleaner's counters of each killed process, summed over the
  // cycles that sampled them (each process counts from its own open).
  uint64_t sampled = 0, cycles_cleaned = 0, cycles_evicted = 0;
  uint64_t segments_freed = 0, bytes_copied = 0, evictions = 0, bytes_appended = 0, waits = 0, wait_us = 0;
  uint64_t refused_live_full = 0, refused_behind = 0;
  uint64_t corrupted = 0;
  uint64_t leaks = 0, leak_bytes = 0, leak_cycles = 0, leaks_after_recovery = 0;
  std::map<std::string, uint64_t> leak_classes;
  Histogram recovery_ns, start_ns;  // per cycle
  double write_ms = 0, check_ms = 0, verify_ms = 0;

  void add(const CycleOutcome& c) {
    ++cycles;
    if (!c.killed) ++ended_on_own;
    else if (c.killed_early) ++killed_early;
    else ++killed_writing;
    clean_closes += c.clean_close ? 1 : 0;
    issued += c.issued;
    acked += c.acked;
    no_space += c.no_space;
    live_full += c.live_full;
    stalled += c.killed && !c.killed_early && c.no_space + c.live_full > c.acked ? 1 : 0;
    keys_checked += c.verify.keys_checked;
    absent_evictable += c.verify.absent_evictable;
    bad_reads += c.bad_reads;
    keys_present += c.keys_present;
    acked_bytes += c.acked_bytes;
    acked_bytes_max = std::max(acked_bytes_max, c.acked_bytes);
    if (c.space.sampled) {
      ++sampled;
      cycles_cleaned += c.space.segments_freed > 0 ? 1 : 0;
      cycles_evicted += c.space.evictions > 0 ? 1 : 0;
      segments_freed += c.space.segments_freed;
      bytes_copied += c.space.bytes_copied;
      evictions += c.space.evictions;
      bytes_appended += c.space.bytes_appended;
      waits += c.space.waits;
      wait_us += c.space.wait_us;
      refused_live_full += c.space.refused_live_full;
      refused_behind += c.space.refused_behind;
    }
    lost += c.verify.lost;
    torn += c.verify.torn;
    unexpected += c.verify.unexpected;
    duplicates += c.verify.duplicates;
    check_problems += c.check_problems;
    leaks += c.check_leaks;
    leak_bytes += c.leak_bytes;
    leak_cycles += c.check_leaks > 0 ? 1 : 0;
    leaks_after_recovery += c.leaks_after_recovery;
    for (const auto& [cls, n] : c.leak_classes) leak_classes[cls] += n;
    recovery_failures += c.recovery_error.empty() ? 0 : 1;
    corrupted += c.corrupted_key.empty() ? 0 : 1;
    if (c.recovery_ms >= 0) recovery_ns.record(static_cast<uint64_t>(c.recovery_ms * 1e6));
    if (c.start_ms >= 0) start_ns.record(static_cast<uint64_t>(c.start_ms * 1e6));
    write_ms += c.write_ms;
    check_ms += c.check_ms;
    verify_ms += c.verify_ms;
  }
  bool clean() const {
    return lost == 0 && torn == 0 && unexpected == 0 && duplicates == 0 && check_problems == 0 &&
           leaks_after_recovery == 0 && recovery_failures == 0 && bad_reads == 0;
  }
};

double ms_of(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string si(uint64_t n) {
  if (n >= 10'000'000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  if (n >= 10'000) return fmt::format("{:.1f}k", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

// Progress on stderr: a redrawn bar on a terminal, a line every tenth of the
// campaign otherwise, nothing with --quiet.
class Progress {
 public:
  Progress(const Options& o) : o_(o), tty_(::isatty(2) != 0) {}
  void update(const Totals& t, double elapsed_s) {
    if (o_.quiet) return;
    const uint64_t total = o_.cycles;
    double frac = static_cast<double>(t.cycles) / static_cast<double>(total);
    if (o_.seconds > 0) frac = std::max(frac, std::min(1.0, elapsed_s / o_.seconds));
    std::string stats =
        fmt::format("{}/{} cycles  acked {}  lost {}  torn {}", t.cycles, total, si(t.acked), t.lost, t.torn);
    if (o_.space == SpaceMode::kEvict) stats += fmt::format("  evicted {}", si(t.absent_evictable));
    stats += fmt::format("  {:.0f} s", elapsed_s);
    if (tty_) {
      constexpr int kWidth = 30;
      const int fill = static_cast<int>(frac * kWidth);
      std::fprintf(stderr, "\r[%s%s] %s ", std::string(static_cast<std::size_t>(fill), '#').c_str(),
                   std::string(static_cast<std::size_t>(kWidth - fill), '.').c_str(), stats.c_str());
      drawn_ = true;
    } else {
      const uint64_t every = std::max<uint64_t>(1, total / 10);
      if (t.cycles % every == 0) std::fprintf(stderr, "ferrite-crashtest: %s\n", stats.c_str());
    }
  }
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  const Options& o_;
  bool tty_;
  bool drawn_ = false;
};

bool parse_size(const std::string& s, std::size_t* out) {
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(s, &pos);
  } catch (...) {
    return false;
  }
  std::string suf = s.substr(pos);
  if (suf.ends_with("iB")) suf.resize(suf.size() - 2);
  else if (suf.ends_with("B")) suf.resize(suf.size() - 1);
  unsigned shift = 0;
  if (suf.empty()) shift = 0;
  else if (suf == "K" || suf == "k") shift = 10;
  else if (suf == "M") shift = 20;
  else if (suf == "G") shift = 30;
  else return false;
  *out = static_cast<std::size_t>(n) << shift;
  return true;
}

void remove_tree(const std::string& dir) {
  // Only our own flat work directory: its files, then the directory.
  for (const char* f : {"pool", "shadow", "shadow.pending", "pool.crash"}) ::unlink((dir + "/" + f).c_str());
  for (unsigned t = 0; t < 64; ++t) ::unlink(fmt::format("{}/journal.{}", dir, t).c_str());
  ::rmdir(dir.c_str());
}

void print_failure(uint64_t n, const CycleOutcome& c) {
  std::fprintf(stderr, "ferrite-crashtest: cycle %llu FAILED%s\n", static_cast<unsigned long long>(n),
               c.corrupted_key.empty() ? "" : (" (test-only damage to " + c.corrupted_key + ")").c_str());
  if (!c.recovery_error.empty()) std::fprintf(stderr, "  recovery: %s\n", c.recovery_error.c_str());
  if (c.check_problems > 0) {
    std::fprintf(stderr, "  checker: %llu corruption problem(s) in the crash image\n",
                 static_cast<unsigned long long>(c.check_problems));
  }
  if (c.leaks_after_recovery > 0) {
    std::fprintf(stderr, "  checker: %llu leak(s) left after recovery (%llu in the crash image)\n",
                 static_cast<unsigned long long>(c.leaks_after_recovery), static_cast<unsigned long long>(c.check_leaks));
  }
  for (const std::string& e : c.check_examples) std::fprintf(stderr, "    %s\n", e.c_str());
  const VerifyReport& v = c.verify;
  if (c.bad_reads > 0) {
    std::fprintf(stderr, "  live reads: %llu get(s) by the writers returned a value not of their key, or an error\n",
                 static_cast<unsigned long long>(c.bad_reads));
  }
  if (!v.ok()) {
    std::fprintf(stderr, "  verify: lost %llu, torn %llu, unexpected %llu, duplicates %llu\n",
                 static_cast<unsigned long long>(v.lost), static_cast<unsigned long long>(v.torn),
                 static_cast<unsigned long long>(v.unexpected), static_cast<unsigned long long>(v.duplicates));
  }
  for (const std::string& e : v.examples) std::fprintf(stderr, "    %s\n", e.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Emulated PMEM: libpmem reads the variable once, so set it before any
  // pool is opened, for this process and every child (writers, ferrited).
  if (std::getenv("PMEM_IS_PMEM_FORCE") == nullptr) ::setenv("PMEM_IS_PMEM_FORCE", "1", 1);

  Options o;
  std::string mode = "inprocess", pf = "off", pool_size = "128MiB", segment_size = "4MiB", space = "off";
  CLI::App app{"ferrite-crashtest: crash campaigns against a Ferrite pool (kill -9 and simulated power failures); "
               "exit 0 only if every acknowledged write survived every cycle",
               "ferrite-crashtest"};
  app.add_option("--mode", mode, "inprocess (forked writer using the index) | server (ferrited over UDP)")
      ->check(CLI::IsMember({"inprocess", "server"}))
      ->capture_default_str();
  app.add_option("--pf", pf,
                 "power-failure simulation: off (a SIGKILL only: every store survives in the page cache) | "
                 "fenced (only flushed+fenced lines survive) | random (plus a random subset of flushed, unfenced "
                 "lines)")
      ->check(CLI::IsMember({"off", "fenced", "random"}))
      ->capture_default_str();
  app.add_option("--space", space,
                 "log space management: off (in-process: the writer child calls clean() itself; server: ferrited's "
                 "defaults) | error (the index's background cleaner; writes wait for room, refused only when live data "
                 "is above the limit) | evict (the cleaner evicts cold keys when full: an absent key is not a loss, a "
                 "stale one is). error/evict write every key once before the first cycle. Recommended (~1 KB values, "
                 "a small pool): --value-min 900 --value-max 1100 --pool-size 64MiB --segment-size 2MiB "
                 "--kill-after-ms-min 50 --kill-after-ms-max 400 with --keys 32000 for error (~50% of the pool live), "
                 "--keys 96000 for evict (150%)")
      ->check(CLI::IsMember({"off", "error", "evict"}))
      ->capture_default_str();
  app.add_option("--cycles", o.cycles, "kill cycles to run")->capture_default_str();
  app.add_option("--seconds", o.seconds, "overall time bound: no cycle starts after it (0 = none)")
      ->capture_default_str();
  app.add_option("--min-cycles", o.min_cycles, "exit 3 if the time bound stopped the campaign before this many")
      ->capture_default_str();
  app.add_option("--keys", o.keys, "key space (ck-00000000 ...)")->capture_default_str();
  app.add_option("--value-min", o.value_min, "smallest value (bytes)")->capture_default_str();
  app.add_option("--value-max", o.value_max, "largest value (bytes)")->capture_default_str();
  app.add_option("--workers", o.workers, "writer threads, each owning the keys id % workers (and as many index/server workers)")
      ->capture_default_str();
  app.add_option("--ops-per-cycle", o.ops_per_cycle,
                 "in-process: each writer thread stops after this many ops (0 = until killed)")
      ->capture_default_str();
  app.add_option("--kill-after-ms-min", o.kill_min_ms, "shortest kill delay after the writers started")
      ->capture_default_str();
  app.add_option("--kill-after-ms-max", o.kill_max_ms, "longest kill delay")->capture_default_str();
  app.add_option("--early-kill-pct", o.early_kill_pct,
                 "percent of cycles killed early instead of after the first acknowledged write: in-process while the "
                 "writer opens and repairs the pool (pf off) or before its first write (pf on); server during the "
                 "first writes after a restart")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "random seed (0 = pick one; the summary prints it)")->capture_default_str();
  app.add_option("--pool", o.pool, "pool file to create (must not exist; default: a fresh file under /dev/shm)");
  app.add_option("--pool-size", pool_size, "pool size, e.g. 128MiB")->capture_default_str();
  app.add_option("--segment-size", segment_size, "log segment size of the new pool: a power of two, 2MiB..256MiB")
      ->capture_default_str();
  app.add_option("--ferrited", o.ferrited, "server mode: the server binary (default: ferrited, or ferrited-pfsim with "
                                           "--pf, found beside this binary: the build tree's server/, or the "
                                           "installed sbin directory)");
  app.add_flag("--keep", o.keep, "keep the pool, journals and crash image after a failure (for ferrite-check)");
  app.add_flag("-q,--quiet", o.quiet, "no progress output");
  app.add_flag("-v,--verbose", o.verbose, "a line per cycle on stderr (acknowledged ops and bytes, refusals, the cleaner's "
                                          "counters at the kill, keys present and absent after recovery)");
  app.add_flag("--corrupt-acked", o.corrupt_acked,
               "TEST ONLY: damage one acknowledged value on media after each kill (the campaign must fail)")
      ->group("");  // hidden
  app.set_version_flag("--version", fmt::format("ferrite-crashtest {}", ferrite::kVersion));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.mode = mode == "server" ? Mode::kServer : Mode::kInProcess;
  o.pf = pf == "off" ? Pf::kOff : pf == "fenced" ? Pf::kFenced : Pf::kRandom;
  o.space = space == "error" ? SpaceMode::kError : space == "evict" ? SpaceMode::kEvict : SpaceMode::kOff;
  auto usage = [](const std::string& m) {
    std::fprintf(stderr, "ferrite-crashtest: %s\n", m.c_str());
    return 2;
  };
  if (!parse_size(pool_size, &o.pool_size)) return usage("--pool-size " + pool_size + ": not a size");
  if (!parse_size(segment_size, &o.segment_size) || o.segment_size < (2u << 20) || o.segment_size > (256u << 20) ||
      (o.segment_size & (o.segment_size - 1)) != 0) {
    return usage("--segment-size " + segment_size + ": need a power of two in 2MiB..256MiB");
  }
  if (o.cycles == 0) return usage("--cycles must be at least 1");
  if (o.keys == 0) return usage("--keys must be at least 1");
  if (o.value_min == 0 || o.value_max < o.value_min || o.value_max > limits::kMaxValueLen) {
    return usage(fmt::format("need 1 <= --value-min <= --value-max <= {}", limits::kMaxValueLen));
  }
  // Threads that flush while the simulator runs: the writers, the cleaner
  // (in-process) or housekeeping thread (server), and a spare; in-process
  // with --space the simulator starts before the index opens, so also the
  // opening thread and the one crash repair thread.
  const unsigned pf_others = o.mode == Mode::kServer ? 4 : o.space != SpaceMode::kOff ? 3 : 2;
  const unsigned max_workers = o.pf == Pf::kOff ? 32 : PowerFailSim::kMaxThreads - pf_others;
  if (o.workers == 0 || o.workers > max_workers) return usage(fmt::format("--workers must be 1..{}", max_workers));
  if (o.workers > o.keys) return usage("--workers must not exceed --keys");
  if (o.kill_min_ms > o.kill_max_ms) return usage("--kill-after-ms-min must not exceed --kill-after-ms-max");
  if (o.seed == 0) o.seed = std::random_device{}() | 1;

  char tmpl[] = "/dev/shm/ferrite-crashtest-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return usage(fmt::format("mkdtemp /dev/shm: {}", std::strerror(errno)));
  o.work_dir = tmpl;
  const bool own_pool = o.pool.empty();
  if (own_pool) o.pool = o.work_dir + "/pool";
  else if (::access(o.pool.c_str(), F_OK) == 0) {
    ::rmdir(o.work_dir.c_str());
    return usage("--pool " + o.pool + " exists; a campaign starts from a fresh pool");
  }

  set_log_level(LogLevel::kError);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::unique_ptr<Runner> runner = o.mode == Mode::kServer ? make_server_runner(o) : make_inprocess_runner(o);
  Totals t;
  Progress progress(o);
  std::mt19937_64 rng(o.seed);
  const uint64_t t0 = mono_now_ns();
  int rc = 0;
  std::string stop_reason;
  if (Status s = runner->setup(); !s.is_ok()) {
    std::fprintf(stderr, "ferrite-crashtest: setup: %s\n", s.to_string().c_str());
    rc = 2;
  }
  for (uint64_t n = 0; rc == 0 && n < o.cycles; ++n) {
    if (g_interrupted.load()) {
      stop_reason = "interrupted";
      break;
    }
    if (o.seconds > 0 && ms_since(t0) >= o.seconds * 1e3) {
      stop_reason = fmt::format("time bound of {} s reached", o.seconds);
      break;
    }
    CycleOutcome c;
    if (Status s = runner->cycle(n, rng, &c); !s.is_ok()) {
      progress.finish();
      std::fprintf(stderr, "ferrite-crashtest: cycle %llu: harness error: %s\n", static_cast<unsigned long long>(n),
                   s.to_string().c_str());
      rc = 2;
      break;
    }
    t.add(c);
    if (o.verbose) {
      progress.finish();
      std::fprintf(stderr,
                   "ferrite-crashtest: cycle %llu: %s, acked %llu (%.1f MiB), refused %llu+%llu, present %llu, "
                   "absent-evictable %llu%s\n",
                   static_cast<unsigned long long>(n), !c.killed ? "ended on its own" : c.killed_early ? "killed early" : "killed writing",
                   static_cast<unsigned long long>(c.acked), static_cast<double>(c.acked_bytes) / 1048576.0,
                   static_cast<unsigned long long>(c.no_space), static_cast<unsigned long long>(c.live_full),
                   static_cast<unsigned long long>(c.keys_present), static_cast<unsigned long long>(c.verify.absent_evictable),
                   !c.space.sampled ? ""
                                    : fmt::format("; at the kill: segments freed {}, copied {} MiB, evictions {}, "
                                                  "appended {} MiB, waits {} ({} ms), refused {} live full + {} behind; "
                                                  "live {} MiB (limit {}), free {} MiB",
                                                  c.space.segments_freed, c.space.bytes_copied >> 20, c.space.evictions,
                                                  c.space.bytes_appended >> 20, c.space.waits, c.space.wait_us / 1000,
                                                  c.space.refused_live_full, c.space.refused_behind, c.space.live >> 20,
                                                  c.space.limit >> 20, c.space.free >> 20)
                                          .c_str());
    }
    progress.update(t, ms_since(t0) / 1e3);
    if (!c.ok()) {
      progress.finish();
      print_failure(n, c);
      rc = 1;
      break;
    }
    if (c.hung) {
      progress.finish();
      std::fprintf(stderr,
                   "ferrite-crashtest: cycle %llu: the store stopped serving writes: the writers' first batch got no "
                   "answer within %d s (the cycle verified clean; the campaign stops)\n",
                   static_cast<unsigned long long>(n), o.mode == Mode::kServer ? 20 : 30);
      rc = 5;
      break;
    }
  }
  progress.finish();
  runner->teardown();
  const Runner::Preload runner_preload = runner->preload();
  runner.reset();
  const double elapsed = ms_since(t0) / 1e3;
  if (rc == 0 && t.cycles < o.min_cycles) rc = 3;
  // An evict campaign must have seen evictions: keys absent after recovery
  // whose journal had a value (the verifier's count; the index's own
  // counters are per process and die with it).
  if (rc == 0 && o.space == SpaceMode::kEvict && t.absent_evictable == 0) rc = 4;

  const bool pf_on = o.pf != Pf::kOff;
  const char* pf_text = o.pf == Pf::kOff      ? "off (SIGKILL: the page cache keeps every store)"
                        : o.pf == Pf::kFenced ? "fenced (only flushed+fenced lines survive)"
                                              : "random (flushed+fenced lines and a random subset of unfenced ones)";
  std::string out;
  out += fmt::format("ferrite-crashtest: mode {}, power failure {}\n", to_string(o.mode), pf_text);
  out += fmt::format("  seed                {}\n", o.seed);
  out += fmt::format("  workers, keys       {} writer thread(s), {} keys, values {}..{} bytes, pool {} MiB{}\n", o.workers,
                     o.keys, o.value_min, o.value_max, o.pool_size >> 20,
                     o.segment_size == (4u << 20) ? "" : fmt::format(" ({} MiB segments)", o.segment_size >> 20));
  const bool space_on = o.space != SpaceMode::kOff;
  if (space_on) {
    uint64_t all = 0;
    for (uint32_t id = 0; id < o.keys; ++id) all += record_bytes(id, preload_seq(id), o);
    out += fmt::format("  space               when_full = {}: background cleaner{}; every key once = {} MiB = {:.0f}% of "
                       "the pool\n",
                       to_string(o.space), o.mode == Mode::kInProcess ? " in the writer child (the verifier opens without it)" : " (ferrited)",
                       all >> 20, 100.0 * static_cast<double>(all) / static_cast<double>(o.pool_size));
    const Runner::Preload& pl = runner_preload;
    if (pl.done) {
      out += fmt::format("  preload             {} sets acknowledged ({} MiB), {} refused, in {:.0f} ms; then {} keys present{}\n",
                         pl.acked, pl.bytes >> 20, pl.refused, pl.ms, pl.present,
                         o.space == SpaceMode::kEvict ? fmt::format(", {} evicted", pl.absent_evictable) : "");
    }
  }
  out += fmt::format("  cycles              {} of {}{}\n", t.cycles, o.cycles,
                     stop_reason.empty() ? "" : " (" + stop_reason + ")");
  out += fmt::format("  kill cycles         {}\n", pf_on ? 0 : t.cycles);
  out += fmt::format("  power-fail cycles   {}\n", pf_on ? t.cycles : 0);
  out += fmt::format("    killed writing    {}\n", t.killed_writing);
  out += fmt::format("    killed early      {} ({})\n", t.killed_early,
                     o.mode == Mode::kInProcess ? "in open/crash repair, or before the first write"
                                                : "during the first writes after a restart");
  if (o.mode == Mode::kInProcess) {
    out += fmt::format("    ended on its own  {}\n", t.ended_on_own);
    out += fmt::format("    clean closes      {} (the others were abandoned as at a crash)\n", t.clean_closes);
  }
  out += fmt::format("  ops issued          {}\n", t.issued);
  out += fmt::format("  ops acknowledged    {}\n", t.acked);
  out += fmt::format("  refused: no space   {}{}\n", t.no_space,
                     o.mode == Mode::kInProcess ? " (kNoSpace: the cleaner freed no room in time)" : " (out of memory replies)");
  if (space_on && o.mode == Mode::kInProcess) out += fmt::format("  refused: live full  {} (kLiveFull: live data above the limit)\n", t.live_full);
  if (o.space == SpaceMode::kError && t.no_space + t.live_full > 0) {
    out += "  note                writes were refused in error mode: live full means live data above the limit "
           "(fewer --keys); no space means the cleaner freed no room within max_wait_ms (load, or the simulator's cost)\n";
  }
  if (space_on && t.stalled > 0) {
    out += fmt::format("  stalled cycles      {} (more writes refused than acknowledged: the store made no room; "
                       "not a durability failure, but those cycles tested little)\n",
                       t.stalled);
  }
  if (space_on) {
    const double nc0 = static_cast<double>(std::max<uint64_t>(1, t.cycles));
    out += fmt::format("  acked bytes/cycle   mean {:.1f} MiB ({:.0f}% of the pool), max {:.1f} MiB ({:.0f}%)\n",
                       static_cast<double>(t.acked_bytes) / nc0 / 1048576.0,
                       100.0 * static_cast<double>(t.acked_bytes) / nc0 / static_cast<double>(o.pool_size),
                       static_cast<double>(t.acked_bytes_max) / 1048576.0,
                       100.0 * static_cast<double>(t.acked_bytes_max) / static_cast<double>(o.pool_size));
    out += fmt::format("  cleaner at kills    sampled in {} cycle(s): segments freed {} (in {} cycles), copied {} MiB, "
                       "evictions {} (in {} cycles), appended {} MiB, backpressure waits {} ({:.0f} ms in all), refused {} live "
                       "full + {} cleaner behind\n",
                       t.sampled, t.segments_freed, t.cycles_cleaned, t.bytes_copied >> 20, t.evictions, t.cycles_evicted,
                       t.bytes_appended >> 20, t.waits, static_cast<double>(t.wait_us) / 1e3, t.refused_live_full,
                       t.refused_behind);
    out += fmt::format("  keys present        {:.0f} per cycle after recovery (mean)\n",
                       static_cast<double>(t.keys_present) / nc0);
  }
  out += fmt::format("  keys checked        {}\n", t.keys_checked);
  out += fmt::format("  lost                {}\n", t.lost);
  out += fmt::format("  torn                {}\n", t.torn);
  out += fmt::format("  unexpected          {}\n", t.unexpected);
  out += fmt::format("  duplicates          {}\n", t.duplicates);
  if (o.space == SpaceMode::kEvict) {
    out += fmt::format("  absent (evictable)  {} (absent where the journal had a value: evicted, not lost)\n",
                       t.absent_evictable);
  }
  if (space_on) out += fmt::format("  bad live reads      {}\n", t.bad_reads);
  out += fmt::format("  checker problems    {}\n", t.check_problems);
  std::string classes;
  for (const auto& [cls, n] : t.leak_classes) classes += fmt::format("{}{} {}", classes.empty() ? "" : ", ", cls, n);
  out += fmt::format("  leaks at crash      {} finding(s) in {} cycle(s), {} KiB{}\n", t.leaks, t.leak_cycles,
                     t.leak_bytes >> 10, classes.empty() ? "" : " (" + classes + ")");
  if (o.mode == Mode::kInProcess) {
    out += fmt::format("  leaks after recov.  {} (the checker re-run after recovery and close)\n", t.leaks_after_recovery);
  }
  out += fmt::format("  recovery failures   {}\n", t.recovery_failures);
  if (o.corrupt_acked) out += fmt::format("  test damage         {} value(s) corrupted on purpose\n", t.corrupted);
  out += fmt::format("  recovery ms         p50 {:.2f}  p99 {:.2f}  max {:.2f}  ({})\n", ms_of(t.recovery_ns.percentile(0.5)),
                     ms_of(t.recovery_ns.percentile(0.99)), ms_of(t.recovery_ns.max()),
                     o.mode == Mode::kServer ? "restart of ferrited until the first get is answered"
                                             : "pool + index open until the first get is answered");
  if (t.start_ns.count() != 0) {
    out += fmt::format("  first write ms      p50 {:.2f}  p99 {:.2f}  (writers started until the first write was acknowledged)\n",
                       ms_of(t.start_ns.percentile(0.5)), ms_of(t.start_ns.percentile(0.99)));
  }
  const double nc = static_cast<double>(std::max<uint64_t>(1, t.cycles));
  out += fmt::format("  per cycle (mean)    write+kill {:.0f} ms, power-fail image+check {:.0f} ms, recover+verify {:.0f} ms\n",
                     t.write_ms / nc, t.check_ms / nc, t.verify_ms / nc);
  out += fmt::format("  elapsed             {:.1f} s\n", elapsed);
  const char* verdict = rc == 0 ? "PASS: every cycle verified clean"
                        : rc == 1 ? "FAIL: durability violation (see above)"
                        : rc == 3 ? "FAIL: too few cycles within the time bound (--min-cycles)"
                        : rc == 4 ? "FAIL: evict mode, but no key was ever evicted: the campaign did not test eviction "
                                    "(more --keys, a smaller --pool-size or longer kill delays)"
                        : rc == 5 ? "FAIL: the store stopped serving writes (see above)"
                                  : "ERROR: setup or harness failure";
  out += fmt::format("  result              {}\n", verdict);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);

  if (rc != 0 && o.keep) {
    std::fprintf(stderr, "ferrite-crashtest: files kept in %s (pool %s); check with: ferrite-check %s\n",
                 o.work_dir.c_str(), o.pool.c_str(), o.pool.c_str());
  } else {
    if (!own_pool) ::unlink(o.pool.c_str());
    remove_tree(o.work_dir);
  }
  return rc;
}
