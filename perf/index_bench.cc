// index_bench: Ferrite's persistent index beside tbb::concurrent_hash_map
// (volatile DRAM) and a libpmemobj transaction-per-op table, in one run, on
// the same keys, workloads and threads. One table; the command line that
// reproduces it is printed at the top.
//
//   PMEM_IS_PMEM_FORCE=1 build/perf/index_bench            # quick matrix (~10 min)
//   PMEM_IS_PMEM_FORCE=1 build/perf/index_bench --full     # everything in issue 3
//   PMEM_IS_PMEM_FORCE=1 build/perf/index_bench --keys 10000000 --threads 1 --dist uniform --value 32
//
// Workloads: INSERT (the load phase, fresh keys), GET, SET (update of
// existing keys), MIX90 (90% get / 10% update), MIX50. Engines:
//   ferrite     ops in bursts of 16 through Worker::execute (as the server
//               batches a receive burst); per-op latency = burst time / 16
//   ferrite/1   the same index, one op per execute() (a lone request)
//   tbb         tbb::concurrent_hash_map<Key16, std::array<char, V>>: key
//               and value inline in the node, as its users store fixed-size
//               values (value sizes 32 and 512); the "vs TBB" peer
//   tbb-str     the same map with std::string values (one more allocation,
//               one more cache miss per lookup): the weaker peer of issue 3
//   pmemobj-tx  a libpmemobj table, one transaction per write
// TBB and the tx table run one op at a time; every engine copies a GET's
// value out.
//
// Independent vs chained (--chain): by default each op's key is drawn
// without looking at the previous result, so a CPU may overlap one op's
// cache misses with the next op's (out-of-order execution across
// iterations; the shorter an engine's code path, the more it overlaps).
// With --chain the next op's key depends on the previous op's result (its
// value's first byte, or its version, masked by a run-time zero), so no op
// starts before the previous one has finished: the cost of a request that
// arrives alone, as a server sees it (a receive, a lookup, a reply). Both
// are printed by the rows they belong to; ratios only within one mode.
//
// Rounds (--rounds N, N > 1): every engine of a configuration is loaded first
// (by default each is loaded, timed and freed in turn), then
// the timed workloads run N times, the engines in turn within each round, and
// "vs TBB" is the median of the per-round ratios (each listed under the
// table). This VM's speed moves by 15-20% over tens of seconds; runs seconds
// apart share that phase, an engine timed after another's whole load does
// not. Latency is sampled on 1 op (or burst) in 64. Bytes per key:
// pool bytes allocated / keys - (key + value) for the persistent engines,
// RSS growth / keys - (key + value) for TBB (labelled RSS).
#include <tbb/concurrent_hash_map.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstring>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <span>
#include <string>
#include <sys/statvfs.h>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/histogram.h"
#include "index/index.h"
#include "perf/pmemobj_tx_table.h"

using namespace ferrite;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kKeyLen = 16;
constexpr int kBurst = 16;

std::string key_of(uint64_t i) {
  char b[kKeyLen + 1];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ull));
  return std::string(b, kKeyLen);
}

// YCSB's scrambled Zipfian generator (Gray et al.), theta 0.99.
class Zipf {
 public:
  Zipf(uint64_t n, double theta) : n_(n), theta_(theta) {
    zetan_ = zeta(n, theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1 - std::pow(2.0 / static_cast<double>(n), 1 - theta)) / (1 - zeta(2, theta) / zetan_);
  }
  uint64_t next(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    const double uz = u * zetan_;
    uint64_t v;
    if (uz < 1.0) v = 0;
    else if (uz < 1.0 + std::pow(0.5, theta_)) v = 1;
    else v = static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1, alpha_));
    return (std::min(v, n_ - 1) * 0x9E3779B97F4A7C15ull) % n_;  // scramble hot keys over the space
  }

 private:
  static double zeta(uint64_t n, double theta) {
    double s = 0;
    for (uint64_t i = 1; i <= n; ++i) s += 1.0 / std::pow(static_cast<double>(i), theta);
    return s;
  }
  uint64_t n_;
  double theta_, zetan_, alpha_, eta_;
};

// Keeps the compiler from dropping the copies a GET loop makes into out.
template <typename T>
void benchmark_keep(const T& out) {
  asm volatile("" : : "r"(&out) : "memory");
}

std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// TBB's key: 16 bytes inline (no heap string), its strongest natural form
// for fixed-size keys.
struct Key16 {
  std::array<char, kKeyLen> b{};
  Key16() = default;
  explicit Key16(std::string_view s) { std::memcpy(b.data(), s.data(), kKeyLen); }
  bool operator==(const Key16&) const = default;
};
struct Key16Hash {
  static std::size_t hash(const Key16& k) { return ferrite::hash_bytes(k.b.data(), kKeyLen); }
  static bool equal(const Key16& a, const Key16& b) { return a == b; }
};

struct Cell {
  double mops = 0;
  double p50_ns = 0, p99_ns = 0;
};

struct Config {
  uint64_t keys;
  unsigned threads;
  bool zipf;
  std::size_t value;
};

// Nanoseconds since t0, shared by `per` ops.
uint64_t ns_since(Clock::time_point t0, double per = 1) {
  return static_cast<uint64_t>(std::llround(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / per));
}

// Runs fn(thread, stop, quota, &ops, &latency histogram) on `threads` threads for `seconds`.
template <typename Fn>
Cell timed(unsigned threads, double seconds, uint64_t max_ops, Fn&& fn) {
  std::atomic<bool> stop{false};
  std::vector<uint64_t> ops(threads);
  std::vector<Histogram> samples(threads);  // ns per op
  std::vector<std::thread> ts;
  const auto t0 = Clock::now();
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] { fn(t, stop, max_ops / threads, &ops[t], &samples[t]); });
  }
  while (Clock::now() - t0 < std::chrono::duration<double>(seconds)) {
    bool all_done = true;
    for (unsigned t = 0; t < threads; ++t) all_done = all_done && ops[t] >= max_ops / threads;
    if (all_done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Cell c;
  uint64_t total = 0;
  Histogram all;
  for (unsigned t = 0; t < threads; ++t) {
    total += ops[t];
    all.merge(samples[t]);
  }
  c.mops = static_cast<double>(total) / secs / 1e6;
  c.p50_ns = static_cast<double>(all.percentile(0.5));
  c.p99_ns = static_cast<double>(all.percentile(0.99));
  return c;
}

enum class Wl { kGet, kSet, kMix90, kMix50 };
constexpr Wl kAllWorkloads[] = {Wl::kGet, Wl::kSet, Wl::kMix90, Wl::kMix50};
const char* wl_name(Wl w) {
  switch (w) {
    case Wl::kGet: return "GET";
    case Wl::kSet: return "SET";
    case Wl::kMix90: return "MIX90";
    case Wl::kMix50: return "MIX50";
  }
  return "?";
}
double get_share(Wl w) { return w == Wl::kGet ? 1.0 : w == Wl::kSet ? 0.0 : w == Wl::kMix90 ? 0.9 : 0.5; }

struct Row {
  std::string engine, workload;
  Cell cell;
  double bytes_per_key = -1;
  std::string bytes_label;
  double vs_tbb = -1;  // set in rounds: the median per-round ratio to tbb
};

// What every engine of one configuration shares: the keys (one flat array,
// no per-key heap object, viewed as 16-byte string_views, so the harness
// costs every engine the same), the key chooser, the value written.
struct Run {
  const Config& cfg;
  double seconds;
  uint64_t max_ops = 50'000'000;
  std::vector<int> bursts;  // ferrite's ops per execute(): 16 and/or 1
  std::vector<Wl> workloads;  // timed after the load
  bool chain = false;         // --chain: each op's key depends on the previous result
  std::string pool_dir = "/dev/shm";  // where the persistent engines' pools go
  uint64_t zero = 0;          // a zero the compiler cannot see through (chain mode)
  std::string value;
  std::vector<char> key_bytes;
  Zipf zipf;
  Run(const Config& c, double secs) : cfg(c), seconds(secs), value(c.value, 'v'), zipf(c.zipf ? c.keys : 2, 0.99) {
    key_bytes.resize(cfg.keys * kKeyLen);
    for (uint64_t i = 0; i < cfg.keys; ++i) key_of(i).copy(key_bytes.data() + i * kKeyLen, kKeyLen);
  }
  std::string_view key_at(uint64_t i) const { return std::string_view(key_bytes.data() + i * kKeyLen, kKeyLen); }
  uint64_t pick(std::mt19937_64& rng) const { return cfg.zipf ? zipf.next(rng) : rng() % cfg.keys; }
  // pick(), made to wait for dep (the previous op's result) in chain mode;
  // dep & zero is 0, but the CPU cannot know it before dep is loaded.
  uint64_t pick_after(std::mt19937_64& rng, uint64_t dep) const {
    const uint64_t i = pick(rng);
    return chain ? i ^ (dep & zero) : i;
  }
  // True if the next op of workload w is a GET.
  static bool is_get(Wl w, std::mt19937_64& rng) {
    const double share = get_share(w);
    return share >= 1.0 || (share > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < share);
  }
};

// ---- engines: loaded once (the INSERT row), then timed workloads ----

// A loaded engine: run(w, burst) times workload w (burst: ferrite's ops per
// execute(); the others run one op at a time). Every engine of a
// configuration stays loaded until its last round, so with --rounds the
// engines' runs alternate and each round's ratio compares runs seconds apart.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual Cell run(Wl w, int burst) = 0;
};

// tbb::concurrent_hash_map<Key16, V>; traits give V's write and read-out:
//   static void put(V&, std::string_view value); static void copy_out(const V&, Out*);
template <typename V, typename Traits>
class TbbEngine final : public Engine {
 public:
  using Map = tbb::concurrent_hash_map<Key16, V, Key16Hash>;
  TbbEngine(const Run& run, const char* name, std::vector<Row>* rows) : run_(run) {
    const Config& cfg = run.cfg;
    const std::size_t rss0 = rss_bytes();
    map_ = std::make_unique<Map>(cfg.keys);
    Cell ins = timed(cfg.threads, 1e9, cfg.keys, [&](unsigned t, std::atomic<bool>&, uint64_t, uint64_t* ops, Histogram* s) {
      for (uint64_t i = t; i < cfg.keys; i += cfg.threads) {
        const bool sample = (i & 63) == 0;
        auto t0 = sample ? Clock::now() : Clock::time_point{};
        typename Map::accessor a;
        map_->insert(a, Key16(run.key_at(i)));
        Traits::put(a->second, run.value);
        a.release();
        if (sample) s->record(ns_since(t0));
        ++*ops;
      }
    });
    const double bpk = static_cast<double>(rss_bytes() - rss0) / static_cast<double>(cfg.keys) - (kKeyLen + cfg.value);
    rows->push_back({name, "INSERT", ins, bpk, "(RSS)"});
  }

  Cell run(Wl w, int) override {
    const Run& run = run_;
    Map* map = map_.get();
    return timed(run.cfg.threads, run.seconds, run.max_ops, [&](unsigned t, std::atomic<bool>& stop, uint64_t quota, uint64_t* ops, Histogram* s) {
      std::mt19937_64 rng(t + 11);
      typename Traits::Out out{};
      uint64_t dep = 0;  // chain mode: what the next key waits for
      while (!stop.load(std::memory_order_relaxed) && *ops < quota) {
        const std::string_view k = run.key_at(run.pick_after(rng, dep));
        const bool sample = (*ops & 63) == 0;
        auto t0 = sample ? Clock::now() : Clock::time_point{};
        if (Run::is_get(w, rng)) {
          typename Map::const_accessor a;
          if (map->find(a, Key16(k))) Traits::copy_out(a->second, &out);
          benchmark_keep(out);
          dep = static_cast<uint8_t>(out[0]);
        } else {
          typename Map::accessor a;
          map->insert(a, Key16(k));
          Traits::put(a->second, run.value);
          dep = static_cast<uint8_t>(a->second[0]);
        }
        if (sample) s->record(ns_since(t0));
        ++*ops;
      }
    });
  }

 private:
  const Run& run_;
  std::unique_ptr<Map> map_;
};

template <std::size_t N>
struct InlineValue {
  using Out = std::array<char, N>;
  static void put(std::array<char, N>& v, std::string_view s) { std::memcpy(v.data(), s.data(), N); }
  static void copy_out(const std::array<char, N>& v, Out* out) { std::memcpy(out->data(), v.data(), N); }
};
struct StringValue {
  using Out = std::string;
  static void put(std::string& v, std::string_view s) { v.assign(s); }
  static void copy_out(const std::string& v, Out* out) { out->assign(v); }
};

// The inline peer exists for the value sizes it is compiled for (null otherwise).
std::unique_ptr<Engine> tbb_inline(const Run& run, std::vector<Row>* rows) {
  switch (run.cfg.value) {
    case 32: return std::make_unique<TbbEngine<std::array<char, 32>, InlineValue<32>>>(run, "tbb", rows);
    case 512: return std::make_unique<TbbEngine<std::array<char, 512>, InlineValue<512>>>(run, "tbb", rows);
    default: return nullptr;
  }
}

// Ferrite's index on a fresh pool. The log cleaner runs beside its timed
// workloads (as ferrited runs it) to keep overwritten space coming back, and
// is paused while other engines run.
class FerriteEngine final : public Engine {
 public:
  // Null (with a printed row) if the pool cannot be created.
  static std::unique_ptr<FerriteEngine> load(const Run& run, std::vector<Row>* rows) {
    std::unique_ptr<FerriteEngine> e(new FerriteEngine(run));
    const Config& cfg = run.cfg;
    ::unlink(e->path_.c_str());
    // Room for the keys three times over.
    const std::size_t need = static_cast<std::size_t>(cfg.keys) * (cfg.value + kKeyLen + 64) * 3 + (1024u << 20);
    auto p = pmem::Pool::create(e->path_, need);
    if (!p) {
      std::printf("| ferrite | - | skipped: %s |\n", p.status().to_string().c_str());
      return nullptr;
    }
    e->pool_ = std::move(p).value();
    e->idx_ = index::Index::open(*e->pool_, {.workers = cfg.threads}).value();
    index::Index& idx = *e->idx_;
    const std::size_t alloc0 = e->pool_->allocated_bytes();
    Cell ins = timed(cfg.threads, 1e9, cfg.keys, [&](unsigned t, std::atomic<bool>&, uint64_t, uint64_t* ops, Histogram* s) {
      index::Worker& w = idx.worker(t);
      index::Op batch[kBurst];
      int n = 0;
      uint64_t bursts = 0;
      auto flush = [&] {
        const bool sample = (bursts++ & 63) == 0;
        auto t0 = sample ? Clock::now() : Clock::time_point{};
        w.execute(std::span<index::Op>(batch, static_cast<std::size_t>(n)));
        if (sample) s->record(ns_since(t0, n));
        *ops += static_cast<uint64_t>(n);
        n = 0;
      };
      for (uint64_t i = t; i < cfg.keys; i += cfg.threads) {
        batch[n++] = index::Op::set(run.key_at(i), run.value);
        if (n == kBurst) flush();
      }
      if (n > 0) flush();
      w.quiesce();
    });
    const double bpk = static_cast<double>(e->pool_->allocated_bytes() - alloc0) / static_cast<double>(cfg.keys) -
                       static_cast<double>(kKeyLen + cfg.value);
    rows->push_back({"ferrite", "INSERT", ins, bpk, "(pool)"});
    e->cleaner_ = std::thread([e = e.get()] {
      while (!e->stop_cleaner_.load()) {
        if (e->cleaning_.load()) (void)e->idx_->clean({.max_live_ratio = 0.5, .max_segments = 4});
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    return e;
  }

  ~FerriteEngine() override {
    stop_cleaner_ = true;
    if (cleaner_.joinable()) cleaner_.join();
    if (failed_.load() != 0) {
      std::printf("| ferrite | (!) %llu ops failed (pool full?): figures above are not valid |\n",
                  static_cast<unsigned long long>(failed_.load()));
    }
    idx_.reset();
    pool_.reset();
    ::unlink(path_.c_str());
  }

  Cell run(Wl w, int burst) override {
    const Run& run = run_;
    index::Index& idx = *idx_;
    std::atomic<uint64_t>* failed = &failed_;
    cleaning_ = true;
    Cell c = timed(run.cfg.threads, run.seconds, run.max_ops, [&](unsigned t, std::atomic<bool>& stop, uint64_t quota, uint64_t* ops, Histogram* s) {
      index::Worker& wk = idx.worker(t);
      std::mt19937_64 rng(t + 11);
      std::string outs[kBurst];
      index::Op batch[kBurst];
      const std::span<index::Op> ops_of_burst(batch, static_cast<std::size_t>(burst));
      uint64_t bursts = 0;
      uint64_t dep = 0;  // chain mode: what the next burst's first key waits for
      while (!stop.load(std::memory_order_relaxed) && *ops < quota) {
        for (int j = 0; j < burst; ++j) {
          const std::string_view k = run.key_at(j == 0 ? run.pick_after(rng, dep) : run.pick(rng));
          batch[j] = Run::is_get(w, rng) ? index::Op::get(k, &outs[j]) : index::Op::set(k, run.value);
        }
        const bool sample = (bursts++ & 63) == 0;
        auto t0 = sample ? Clock::now() : Clock::time_point{};
        wk.execute(ops_of_burst);
        if (sample) s->record(ns_since(t0, burst));
        for (const index::Op& o : ops_of_burst) {
          if (o.result != Result::kOk && o.result != Result::kNotFound) failed->fetch_add(1);
        }
        const index::Op& last = ops_of_burst.back();
        dep = last.code == index::OpCode::kGet && last.result == Result::kOk
                  ? static_cast<uint8_t>(outs[burst - 1][0])
                  : last.out_version;
        *ops += static_cast<uint64_t>(burst);
      }
      wk.quiesce();
    });
    cleaning_ = false;
    return c;
  }

 private:
  explicit FerriteEngine(const Run& run)
      : run_(run), path_(run.pool_dir + "/ferrite-index-bench-" + std::to_string(getpid()) + ".pool") {}
  const Run& run_;
  std::string path_;
  std::unique_ptr<pmem::Pool> pool_;
  std::unique_ptr<index::Index> idx_;
  std::thread cleaner_;
  std::atomic<bool> stop_cleaner_{false}, cleaning_{false};
  std::atomic<uint64_t> failed_{0};
};

void run_pmemobj_tx(const Run& run, uint64_t tx_max_keys, std::vector<Row>* rows) {
  const Config& cfg = run.cfg;
  const uint64_t n = std::min<uint64_t>(cfg.keys, tx_max_keys);
  const std::string path = run.pool_dir + "/ferrite-txtable-bench-" + std::to_string(getpid()) + ".pool";
  auto tbl = perf::PmemTxTable::create(path, static_cast<std::size_t>(n) * (cfg.value + 200) * 2 + (256u << 20), n);
  if (!tbl) {
    std::printf("| pmemobj-tx | - | skipped: cannot create pool |\n");
    return;
  }
  const std::string label = n < cfg.keys ? " (" + std::to_string(n / 1000000) + "M keys)" : "";
  const std::size_t a0 = tbl->allocated_bytes();
  Cell ins = timed(cfg.threads, 1e9, n, [&](unsigned t, std::atomic<bool>&, uint64_t, uint64_t* ops, Histogram* s) {
    for (uint64_t i = t; i < n; i += cfg.threads) {
      const bool sample = (i & 63) == 0;
      auto t0 = sample ? Clock::now() : Clock::time_point{};
      tbl->put(run.key_at(i), run.value);
      if (sample) s->record(ns_since(t0));
      ++*ops;
    }
  });
  const double bpk = static_cast<double>(tbl->allocated_bytes() - a0) / static_cast<double>(n) - (kKeyLen + cfg.value);
  rows->push_back({"pmemobj-tx", "INSERT" + label, ins, bpk, "(pool)"});
  Zipf zn(cfg.zipf ? n : 2, 0.99);
  for (Wl w : run.workloads) {
    Cell c = timed(cfg.threads, run.seconds, run.max_ops, [&](unsigned t, std::atomic<bool>& stop, uint64_t quota, uint64_t* ops, Histogram* s) {
      std::mt19937_64 rng(t + 11);
      std::string out;
      while (!stop.load(std::memory_order_relaxed) && *ops < quota) {
        const std::string_view k = run.key_at(cfg.zipf ? zn.next(rng) : rng() % n);
        const bool sample = (*ops & 63) == 0;
        auto t0 = sample ? Clock::now() : Clock::time_point{};
        if (Run::is_get(w, rng)) {
          (void)tbl->get(k, &out);
        } else {
          tbl->put(k, run.value);
        }
        if (sample) s->record(ns_since(t0));
        ++*ops;
      }
    });
    rows->push_back({"pmemobj-tx", std::string(wl_name(w)) + label, c, -1, ""});
  }
}

// ratio: to the inline TBB peer (negative: none).
void print_row(const Row& r, double ratio) {
  std::printf("| %-10s | %-6s | %8.3f | %6s | %8.0f | %8.0f | %s |\n", r.engine.c_str(), r.workload.c_str(), r.cell.mops,
              ratio >= 0 ? (std::to_string(ratio).substr(0, 5)).c_str() : "n/a", r.cell.p50_ns,
              r.cell.p99_ns, r.bytes_per_key >= 0 ? (std::to_string(static_cast<int>(r.bytes_per_key)) + " " + r.bytes_label).c_str() : "");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void run_config(const Config& cfg, const std::vector<std::string>& engines, double seconds, uint64_t tx_max_keys,
                const std::vector<int>& bursts, const std::vector<Wl>& workloads, bool chain,
                const std::string& pool_dir, int rounds) {
  std::printf("\n### %llu keys, %u thread(s), %s keys, 16-byte keys, %zu-byte values%s\n\n",
              static_cast<unsigned long long>(cfg.keys), cfg.threads, cfg.zipf ? "Zipf 0.99" : "uniform", cfg.value,
              chain ? ", chained (each op waits for the previous result)" : "");
  if (rounds > 1) {
    std::printf("%d rounds, engines alternated within each: Mops/s, p50 and p99 are the median round's; "
                "vs TBB is the median of the per-round ratios (listed below the table)\n\n", rounds);
  }
  std::printf("| engine | workload | Mops/s | vs TBB | p50 ns | p99 ns | bytes/key beyond key+value |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  Run run(cfg, seconds);
  run.bursts = bursts;
  run.workloads = workloads;
  run.chain = chain;
  run.pool_dir = pool_dir;
  static volatile uint64_t volatile_zero = 0;
  run.zero = volatile_zero;
  std::vector<Row> rows;  // the load rows, then (below) the workloads'
  // Load every engine (in the order given), then time the workloads in
  // rounds, each engine in turn.
  struct Timed {
    std::string name;
    Engine* engine;
    int burst;
  };
  std::vector<std::unique_ptr<Engine>> loaded;
  std::vector<Timed> timed_engines;
  bool tx = false;
  // Loads eng (its INSERT row) and adds its timed entries; false if nothing
  // was loaded.
  auto load = [&](const std::string& eng) {
    if (eng == "tbb") {
      std::unique_ptr<Engine> t = tbb_inline(run, &rows);
      if (!t) {
        std::printf("| tbb | - | no inline build for %zu-byte values: see tbb-str |\n", cfg.value);
        return false;
      }
      loaded.push_back(std::move(t));
      timed_engines.push_back({"tbb", loaded.back().get(), 1});
    } else if (eng == "tbb-str") {
      loaded.push_back(std::make_unique<TbbEngine<std::string, StringValue>>(run, "tbb-str", &rows));
      timed_engines.push_back({"tbb-str", loaded.back().get(), 1});
    } else if (eng == "ferrite") {
      std::unique_ptr<FerriteEngine> f = FerriteEngine::load(run, &rows);
      if (!f) return false;
      loaded.push_back(std::move(f));
      for (int b : run.bursts) timed_engines.push_back({b == kBurst ? "ferrite" : "ferrite/1", loaded.back().get(), b});
    } else if (eng == "pmemobj-tx") {
      tx = true;  // slow to load: timed alone, after the others (one round)
      return false;
    } else {
      std::printf("| %s | - | unknown engine |\n", eng.c_str());
      return false;
    }
    return true;
  };
  // cells[engine][workload][round]
  std::vector<std::vector<std::vector<Cell>>> cells;
  auto time_entries = [&](std::size_t from) {
    cells.resize(timed_engines.size(), std::vector<std::vector<Cell>>(workloads.size()));
    for (std::size_t w = 0; w < workloads.size(); ++w) {
      for (std::size_t e = from; e < timed_engines.size(); ++e) {
        cells[e][w].push_back(timed_engines[e].engine->run(workloads[w], timed_engines[e].burst));
      }
    }
  };
  if (rounds == 1) {
    // One engine in memory at a time: load, time, free (the --full matrix's
    // 10M keys of 512 bytes would not fit three engines at once).
    for (const std::string& eng : engines) {
      const std::size_t from = timed_engines.size();
      if (!load(eng)) continue;
      time_entries(from);
      loaded.back().reset();
    }
  } else {
    for (const std::string& eng : engines) (void)load(eng);
    for (int r = 0; r < rounds; ++r) time_entries(0);
  }
  const auto tbb_at = std::find_if(timed_engines.begin(), timed_engines.end(), [](const Timed& t) { return t.name == "tbb"; });
  const std::size_t tbb = static_cast<std::size_t>(tbb_at - timed_engines.begin());  // == size(): no inline peer
  std::vector<std::string> per_round;  // "engine workload: ratios" lines
  for (std::size_t e = 0; e < timed_engines.size(); ++e) {
    for (std::size_t w = 0; w < workloads.size(); ++w) {
      std::vector<Cell> by_mops = cells[e][w];
      std::sort(by_mops.begin(), by_mops.end(), [](const Cell& a, const Cell& b) { return a.mops < b.mops; });
      Row row{timed_engines[e].name, wl_name(workloads[w]), by_mops[by_mops.size() / 2], -1, ""};
      if (rounds > 1 && tbb < timed_engines.size()) {
        std::vector<double> ratios;
        std::string line = row.engine + " " + row.workload + ":";
        for (int r = 0; r < rounds; ++r) {
          const double t = cells[tbb][w][static_cast<std::size_t>(r)].mops;
          ratios.push_back(t > 0 ? cells[e][w][static_cast<std::size_t>(r)].mops / t : 0);
          line += " " + std::to_string(ratios.back()).substr(0, 5);
        }
        row.vs_tbb = median(ratios);
        if (e != tbb) per_round.push_back(line);
      }
      rows.push_back(row);
    }
  }
  loaded.clear();  // pools closed and removed before the tx table's
  if (tx) run_pmemobj_tx(run, tx_max_keys, &rows);
  // "vs TBB": against the inline peer's row of the same workload (or, in
  // rounds, the median of the per-round ratios computed above).
  std::map<std::string, double> tbb_mops;
  for (const Row& r : rows) {
    if (r.engine == "tbb") tbb_mops[r.workload] = r.cell.mops;
  }
  for (const Row& r : rows) {
    const std::string base = r.workload.substr(0, r.workload.find(' '));
    print_row(r, r.vs_tbb >= 0 ? r.vs_tbb : tbb_mops.count(base) ? r.cell.mops / tbb_mops[base] : -1);
  }
  if (!per_round.empty()) {
    std::printf("\nper-round ratios to tbb (round 1, 2, ...):\n\n");
    for (const std::string& l : per_round) std::printf("- %s\n", l.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"index_bench: ferrite index vs tbb::concurrent_hash_map vs libpmemobj tx-per-op"};
  std::vector<uint64_t> keys;
  std::vector<unsigned> threads;
  std::vector<std::string> dists;
  std::vector<std::size_t> values;
  std::vector<std::string> engines = {"ferrite", "tbb", "tbb-str", "pmemobj-tx"};
  double seconds = 2;
  uint64_t tx_max_keys = 1000000;
  bool full = false;
  bool chain = false;
  int rounds = 1;
  std::string pool_dir = "/dev/shm";
  std::vector<int> bursts = {kBurst, 1};
  std::vector<std::string> wl_names = {"GET", "SET", "MIX90", "MIX50"};
  app.add_option("--keys", keys, "key counts (default: 1000000 10000000)");
  app.add_option("--threads", threads, "thread counts (default: 1 2)");
  app.add_option("--dist", dists, "uniform and/or zipf (default: both)");
  app.add_option("--value", values, "value sizes (default: 32; 512 at 1M keys)");
  app.add_option("--engines", engines, "ferrite tbb tbb-str pmemobj-tx");
  app.add_option("--seconds", seconds, "seconds per timed workload");
  app.add_option("--tx-max-keys", tx_max_keys, "load at most this many keys into the tx-per-op table (it is slow)");
  app.add_option("--bursts", bursts, "ferrite's ops per execute(): 16 (ferrite) and/or 1 (ferrite/1)")
      ->check(CLI::IsMember({kBurst, 1}));
  app.add_option("--workloads", wl_names, "timed workloads after the load: GET SET MIX90 MIX50")
      ->check(CLI::IsMember({"GET", "SET", "MIX90", "MIX50"}));
  app.add_option("--pool-dir", pool_dir, "directory of the persistent engines' pools (e.g. a tmpfs mounted with huge=always)");
  app.add_flag("--chain", chain, "each op's key depends on the previous op's result (lone requests: no overlap between ops)");
  app.add_option("--rounds", rounds, "time the workloads this many times, engines alternated (ratios per round)")
      ->check(CLI::Range(1, 100));
  app.add_flag("--full", full, "the whole matrix of issue 3 (1M/10M x 1/2 threads x uniform/zipf x 32/512 B)");
  CLI11_PARSE(app, argc, argv);
  std::vector<Wl> workloads;
  for (Wl w : kAllWorkloads) {
    if (std::find(wl_names.begin(), wl_names.end(), wl_name(w)) != wl_names.end()) workloads.push_back(w);
  }

  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += std::string(i ? " " : "") + argv[i];
  std::printf("# index_bench\n# command: PMEM_IS_PMEM_FORCE=1 %s\n", cmd.c_str());
  std::printf("# machine: %u cores, pools in %s, GLIBC_TUNABLES=%s, PMEM_IS_PMEM_FORCE=%s\n",
              std::thread::hardware_concurrency(), pool_dir.c_str(),
              std::getenv("GLIBC_TUNABLES") ? std::getenv("GLIBC_TUNABLES") : "unset", std::getenv("PMEM_IS_PMEM_FORCE") ? std::getenv("PMEM_IS_PMEM_FORCE") : "unset");
  std::printf("# ferrite: bursts of %d (latency = burst time / %d); ferrite/1: one op per execute(); "
              "tbb: values inline; tbb-str: std::string values; vs TBB = vs tbb\n", kBurst, kBurst);

  if (keys.empty()) keys = {1000000, 10000000};
  if (threads.empty()) threads = {1, 2};
  if (dists.empty()) dists = {"uniform", "zipf"};
  const bool default_values = values.empty();
  if (default_values) values = full ? std::vector<std::size_t>{32, 512} : std::vector<std::size_t>{32};
  for (uint64_t k : keys) {
    for (std::size_t v : values) {
      for (unsigned t : threads) {
        for (const std::string& d : dists) {
          struct statvfs vfs {};
          ::statvfs(pool_dir.c_str(), &vfs);
          const double need = static_cast<double>(k) * static_cast<double>(v + 300) * 3;
          if (static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize) < need) {
            std::printf("\n### %llu keys, %zu-byte values: skipped, /dev/shm has too little space\n",
                        static_cast<unsigned long long>(k), v);
            continue;
          }
          run_config({k, t, d == "zipf", v}, engines, seconds, tx_max_keys, bursts, workloads, chain, pool_dir, rounds);
        }
      }
    }
    if (!full && default_values && k == keys.front()) {
      for (unsigned t : threads) run_config({k, t, false, 512}, engines, seconds, tx_max_keys, bursts, workloads, chain, pool_dir, rounds);
    }
  }
  return 0;
}
