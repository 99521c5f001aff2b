// recovery_bench: how fast a restarted Ferrite answers its first request, and
// how long the crash repair takes, after a clean shutdown and after a crash,
// beside the eager recount that open did before lazy repair (the peer), in
// one run, on one pool.
//
//   PMEM_IS_PMEM_FORCE=1 build/perf/recovery_bench                     # 10M keys, /dev/shm, 4 GiB pool
//   PMEM_IS_PMEM_FORCE=1 build/perf/recovery_bench --keys 1000000 --pool-size 1024
//
// Build phase: N keys (16-byte keys, 32-byte values) written by --fill-threads
// workers in bursts of 64, then a clean close. Scenarios, each --repeat times
// (medians reported):
//  clean      clean close, then reopen: no repair at all.
//  crash      a session overwrites --dirty-keys keys, then abandons the index
//             (TEST_abandon: the media as a crash leaves it) and the pool
//             (no clean flag); reopen: lazy repair + background pass.
//  crash-1t   the same with one background repair thread.
//  eager      (peer) the same crash, then the pre-issue-5 open: a
//             single-threaded pass over every slot (Index::TEST_eager_recount)
//             before the first request is served.
// Columns: pool open (pmem::Pool::open), index open (Index::open, + the
// eager pass for the peer), first get (a real get through Worker::execute,
// measured from the start of the pool open), repair done (from the start of
// the index open until every segment is repaired; IndexStats::repair_ms).
// The pool file is deleted at the end.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/histogram.h"
#include "index/index.h"
#include "pmem/pool.h"

using namespace ferrite;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kKeyLen = 16;
constexpr std::size_t kBurst = 64;

std::string key_of(uint64_t i) {
  char b[kKeyLen + 1];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ull));
  return std::string(b, kKeyLen);
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "recovery_bench: %s\n", what.c_str());
  std::exit(1);
}

// Writes keys [0, n) (value tagged with round) with `threads` workers.
void write_keys(index::Index& idx, uint64_t n, unsigned threads, std::size_t value_len, char round) {
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      index::Worker& w = idx.worker(t);
      const std::string value(value_len, round);
      std::vector<std::string> keys(kBurst);
      std::vector<index::Op> ops(kBurst);
      for (uint64_t base = t * kBurst; base < n; base += threads * kBurst) {
        const std::size_t m = static_cast<std::size_t>(std::min<uint64_t>(kBurst, n - base));
        for (std::size_t i = 0; i < m; ++i) {
          keys[i] = key_of(base + i);
          ops[i] = index::Op::set(keys[i], value);
        }
        w.execute(std::span<index::Op>(ops.data(), m));
        for (std::size_t i = 0; i < m; ++i) {
          if (ops[i].result != Result::kOk) die("fill: a set failed (pool too small? use --pool-size)");
        }
      }
    });
  }
  for (auto& t : ts) t.join();
}

struct Sample {
  double pool_open_ms = 0;
  double index_open_ms = 0;
  double first_get_ms = 0;    // from the start of the pool open
  double repair_ms = 0;       // from the start of the index open
};

struct Row {
  std::string name;
  std::vector<Sample> samples;
  double med(double Sample::*f) const {  // ms
    Histogram h;                          // ns
    for (const Sample& s : samples) h.record(static_cast<uint64_t>(s.*f * 1e6));
    return static_cast<double>(h.percentile(0.5)) / 1e6;
  }
};

std::unique_ptr<pmem::Pool> open_pool(const std::string& path) {
  auto p = pmem::Pool::open(path);
  if (!p.is_ok()) die(p.status().to_string());
  return std::move(p).value();
}

std::unique_ptr<index::Index> open_index(pmem::Pool& pool, const index::IndexOptions& o) {
  auto i = index::Index::open(pool, o);
  if (!i.is_ok()) die(i.status().to_string());
  return std::move(i).value();
}

// Leaves the pool as a crash in the middle of serving would: a session that
// overwrote `dirty` keys, then no clean close of index or pool.
void make_crashed(const std::string& path, uint64_t dirty, unsigned threads, std::size_t value_len, char round) {
  auto pool = open_pool(path);
  auto idx = open_index(*pool, {.workers = threads});
  idx->wait_repaired();
  write_keys(*idx, dirty, threads, value_len, round);
  idx->TEST_abandon();
  idx.reset();
  pool.reset();  // not marked clean
}

void close_clean(std::unique_ptr<index::Index>& idx, std::unique_ptr<pmem::Pool>& pool) {
  idx.reset();
  pool->mark_clean_on_close();
  pool.reset();
}

// Opens, answers one get, waits for the repair; checks the key count.
Sample measure(const std::string& path, const index::IndexOptions& o, bool eager, uint64_t keys,
               std::unique_ptr<index::Index>* idx_out, std::unique_ptr<pmem::Pool>* pool_out) {
  Sample s;
  const auto t0 = Clock::now();
  auto pool = open_pool(path);
  s.pool_open_ms = ms_since(t0);
  const auto t1 = Clock::now();
  auto idx = open_index(*pool, o);
  uint64_t eager_keys = 0;
  if (eager) eager_keys = idx->TEST_eager_recount();
  s.index_open_ms = ms_since(t1);
  std::string out;
  const std::string k = key_of(keys / 3);
  index::Op get = index::Op::get(k, &out);
  idx->worker(0).execute(std::span<index::Op>(&get, 1));
  s.first_get_ms = ms_since(t0);
  if (get.result != Result::kOk) die("first get did not find its key");
  if (eager) {
    s.repair_ms = s.index_open_ms;  // the old open returned with the count done
    if (eager_keys != keys) die("eager recount: " + std::to_string(eager_keys) + " keys, expected " + std::to_string(keys));
  } else {
    idx->wait_repaired();
    const index::IndexStats st = idx->stats();
    s.repair_ms = st.repair_done && st.repair_ms > 0 ? st.repair_ms : 0;
    if (st.recovery_bad_records != 0) die("bad records after repair");
    if (idx->count() != keys) die("count after repair: " + std::to_string(idx->count()) + ", expected " + std::to_string(keys));
  }
  *idx_out = std::move(idx);
  *pool_out = std::move(pool);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"recovery_bench: open and crash-repair times, lazy+parallel vs the eager recount"};
  uint64_t keys = 10'000'000;
  std::string path = "/dev/shm/ferrite-recovery-bench.pool";
  std::size_t pool_mib = 4096;
  unsigned fill_threads = 2;
  unsigned repair_threads = 0;
  int repair_nice = 10;
  std::size_t value_len = 32;
  uint64_t dirty_keys = 100'000;
  int repeat = 3;
  bool reuse = false;
  app.add_option("--keys", keys, "keys in the pool");
  app.add_option("--pool", path, "pool file (deleted at the end)");
  app.add_option("--pool-size", pool_mib, "pool size in MiB");
  app.add_option("--fill-threads", fill_threads, "workers that write the keys (1..8)");
  app.add_option("--repair-threads", repair_threads, "background repair threads (0 = one per hardware thread)");
  app.add_option("--repair-nice", repair_nice, "nice value of the background repair threads (ferrited: 10)");
  app.add_option("--value", value_len, "value bytes");
  app.add_option("--dirty-keys", dirty_keys, "keys the crashed session overwrites before the crash");
  app.add_option("--repeat", repeat, "runs per scenario (medians reported)");
  app.add_flag("--reuse", reuse, "use the pool file left by an earlier run with --keep (same --keys), skip the fill");
  bool keep = false;
  app.add_flag("--keep", keep, "keep the pool file (cleanly closed) for --reuse");
  CLI11_PARSE(app, argc, argv);
  fill_threads = std::clamp(fill_threads, 1u, 8u);
  dirty_keys = std::min(dirty_keys, keys);

  std::string cmd = "PMEM_IS_PMEM_FORCE=1";
  for (int i = 0; i < argc; ++i) cmd += std::string(" ") + argv[i];
  std::printf("# %s\n", cmd.c_str());
  std::printf("# %llu keys, %zu-byte keys, %zu-byte values, pool %zu MiB at %s, %u hardware threads\n",
              static_cast<unsigned long long>(keys), kKeyLen, value_len, pool_mib, path.c_str(),
              std::thread::hardware_concurrency());

  if (!reuse) ::unlink(path.c_str());
  if (!reuse) {
    auto p = pmem::Pool::create(path, pool_mib << 20, 4u << 20);
    if (!p.is_ok()) die(p.status().to_string());
    auto pool = std::move(p).value();
    auto idx = open_index(*pool, {.workers = fill_threads});
    const auto t = Clock::now();
    write_keys(*idx, keys, fill_threads, value_len, 'a');
    const index::IndexStats st = idx->stats();
    std::printf("# fill: %.1f s, %llu table segments, global depth %llu, %llu log segments\n", ms_since(t) / 1000.0,
                static_cast<unsigned long long>(st.table_segments), static_cast<unsigned long long>(st.global_depth),
                static_cast<unsigned long long>(st.log_segments));
    close_clean(idx, pool);
  }

  const unsigned workers = fill_threads;
  Row clean{"clean", {}}, crash{"crash", {}}, crash1{"crash-1t", {}}, eager{"eager (peer)", {}};
  char round = 'b';
  for (int r = 0; r < repeat; ++r) {
    std::unique_ptr<index::Index> idx;
    std::unique_ptr<pmem::Pool> pool;
    // clean: the pool was closed cleanly by the fill or the previous round.
    clean.samples.push_back(measure(path, {.workers = workers}, false, keys, &idx, &pool));
    if (idx->stats().recovery_segments_lazy + idx->stats().recovery_segments_background != 0) {
      die("clean open repaired segments");
    }
    close_clean(idx, pool);
    struct Variant {
      Row* row;
      index::IndexOptions o;
      bool eager;
    };
    const Variant variants[] = {
        {&crash, {.workers = workers, .repair_threads = repair_threads, .repair_nice = repair_nice}, false},
        {&crash1, {.workers = workers, .repair_threads = 1, .repair_nice = repair_nice}, false},
        {&eager, {.workers = workers, .background_repair = false}, true},
    };
    for (const Variant& v : variants) {
      make_crashed(path, dirty_keys, workers, value_len, round++);
      v.row->samples.push_back(measure(path, v.o, v.eager, keys, &idx, &pool));
      close_clean(idx, pool);  // (the eager peer's close finishes the lazy repair untimed)
    }
  }
  if (!keep) ::unlink(path.c_str());

  std::printf("\n| scenario | pool open ms | index open ms | first get ms | repair done ms | first get vs peer | repair vs peer |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  const double peer_first = eager.med(&Sample::first_get_ms);
  const double peer_repair = eager.med(&Sample::repair_ms);
  for (const Row* row : {&clean, &crash, &crash1, &eager}) {
    const double first = row->med(&Sample::first_get_ms);
    const double rep = row->med(&Sample::repair_ms);
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.3f | %s |\n", row->name.c_str(),
                row->med(&Sample::pool_open_ms), row->med(&Sample::index_open_ms), first, rep, first / peer_first,
                rep > 0 ? std::to_string(rep / peer_repair).substr(0, 5).c_str() : "-");
  }
  std::printf("\n# medians of %d run(s); first get: from the start of the pool open to the answer; repair done: from "
              "the start of the index open (0 = nothing to repair)\n",
              repeat);
  return 0;
}
