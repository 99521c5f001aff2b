// ferrite-crashtest, in-process mode: each cycle forks a writer child that
// opens the pool and the index and runs bursts of sets and deletes from
// --workers threads (plus a cleaner thread), journalling every op to a file
// before execute() and every acknowledgement after it; the parent SIGKILLs
// the child at a random moment, then checks, recovers and verifies.
//
// --space error|evict: the child opens the index with the background cleaner
// (SpaceOptions::background_cleaner, evict for evict) instead of running its
// own clean() thread, its writers also read (an eighth of the ops are gets,
// not journalled: read bits give keys a second chance against eviction, and
// every value read must be one of its key's), and a sampler thread copies the
// index's space counters to the parent every few ms. The verifier opens the
// recovered pool without the background cleaner (its leak re-check drives
// clean() itself, as before); setup writes every key once first (preload).
//
// With --pf the child runs the power-failure simulator: after the kill the
// parent completes the shadow image (recovery/pfsim.h) and renames it over
// the pool, so recovery sees only what was flushed and fenced (plus, in
// random mode, a random subset of what was flushed but not yet fenced).
// Without --space the simulator starts after crash repair (nothing may
// persist while it copies the image); with --space it starts right after the
// pool opens, before Index::open, since the background cleaner persists as
// soon as repair is done: open, crash repair and the cleaner's first passes
// then all run under the simulator, and early kills may hit them.
//
// Process contract: the parent never has the pool open while a child runs
// (libpmemobj allows one opener), and forks with no threads of its own
// running a pool. The child only ever ends by SIGKILL or _exit().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "index/index.h"
#include "pmem/pool.h"
#include "recovery/crashtest.h"

namespace ferrite::recovery::crashtest {
namespace {

// Counters the child leaves for the parent (MAP_SHARED, survives the kill).
struct Shared {
  std::atomic<uint64_t> no_space;
  std::atomic<uint64_t> live_full;
  std::atomic<uint64_t> bad_reads;
  std::atomic<uint64_t> bursts;
  std::atomic<uint64_t> sim_started;     // 1 once the power-failure simulator runs
  // --space: the index's space counters, sampled by the child (since its open).
  std::atomic<uint64_t> sampled;
  std::atomic<uint64_t> segments_freed, bytes_copied, evictions, bytes_appended, waits, wait_us, refused_live_full,
      refused_behind, free, live, limit;
  std::atomic<uint64_t> ready_ns;        // CLOCK_MONOTONIC when the child was ready
  std::atomic<uint64_t> first_burst_ns;  // ... when its first burst returned (0: none yet)
};

class InProcessRunner final : public Runner {
 public:
  explicit InProcessRunner(const Options& o)
      : o_(o), model_(o.keys, o.value_min, o.value_max), pool_(o.pool), shadow_(o.work_dir + "/shadow") {
    for (unsigned t = 0; t < o.workers; ++t) journals_.push_back(fmt::format("{}/journal.{}", o.work_dir, t));
    model_.set_evictable(o.space == SpaceMode::kEvict);
  }
  ~InProcessRunner() override {
    if (shared_ != nullptr) ::munmap(shared_, sizeof(Shared));
  }

  Status setup() override {
    void* m = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return Status::io_error("mmap shared counters");
    shared_ = new (m) Shared{};
    // Create the pool and an empty index, closed cleanly, so every child opens.
    std::vector<JRecord> recs;
    {
      auto pool = pmem::Pool::create(pool_, o_.pool_size, o_.segment_size);
      if (!pool) return pool.status();
      if (!(*pool)->is_pmem()) return Status::invalid_argument("the pool is not in flush+fence mode (PMEM_IS_PMEM_FORCE=1?)");
      auto idx = index::Index::open(**pool, index_options(/*background_cleaner=*/true));
      if (!idx) return idx.status();
      if (o_.space != SpaceMode::kOff) FERRITE_RETURN_IF_ERROR(preload(**idx, &recs));
      idx->reset();
      (*pool)->mark_clean_on_close();
    }
    if (o_.space == SpaceMode::kOff) return Status::ok();
    // The preload is verified like a cycle (no crash): the model's baseline
    // is then what the pool holds.
    CycleOutcome c;
    FERRITE_RETURN_IF_ERROR(recover_and_verify(0, recs, &c));
    return note_preload_verified(c);
  }

  void teardown() override { PowerFailSim::remove_files(shadow_); }

  Status cycle(uint64_t n, std::mt19937_64& rng, CycleOutcome* out) override;

 private:
  [[noreturn]] void child_main(int ready_fd, uint64_t seed);
  void writer(index::Index& idx, unsigned t, uint64_t seed, std::atomic<uint64_t>* next_seq);
  Status preload(index::Index& idx, std::vector<JRecord>* recs);
  // The writer child's and setup's options; the verifier opens without the
  // background cleaner.
  index::IndexOptions index_options(bool background_cleaner) const {
    index::IndexOptions io;
    io.workers = o_.workers;
    if (background_cleaner && o_.space != SpaceMode::kOff) {
      io.space.background_cleaner = true;
      io.space.evict = o_.space == SpaceMode::kEvict;
    }
    return io;
  }
  Status recover_and_verify(uint64_t n, const std::vector<JRecord>& recs, CycleOutcome* out);

  Options o_;
  Model model_;
  std::string pool_;
  std::string shadow_;
  std::vector<std::string> journals_;
  Shared* shared_ = nullptr;
  int ready_fd_ = -1;  // the child's end of the ready pipe
};

// ---- the writer child ----

void InProcessRunner::child_main(int ready_fd, uint64_t seed) {
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "ferrite-crashtest writer: %s\n", what.c_str());
    ::_exit(10);
  };
  const bool space = o_.space != SpaceMode::kOff;
  auto pool = pmem::Pool::open(pool_);
  if (!pool) fail(pool.status().to_string());
  std::unique_ptr<PowerFailSim> sim;
  auto start_sim = [&] {
    auto s = PowerFailSim::start(**pool, shadow_);
    if (!s) fail(s.status().to_string());
    sim = std::move(s).value();
    shared_->sim_started.store(1);
  };
  // --space: the background cleaner persists as soon as crash repair is
  // done, so the simulator starts before the index opens (nothing persists
  // yet), with one repair thread (every thread that flushes takes one of
  // the simulator's kMaxThreads slots).
  index::IndexOptions io = index_options(/*background_cleaner=*/true);
  if (o_.pf != Pf::kOff && space) {
    io.repair_threads = 1;
    start_sim();
  }
  auto idx = index::Index::open(**pool, io);
  if (!idx) fail(idx.status().to_string());
  if (o_.pf != Pf::kOff && !space) {
    // The simulator copies the image as it is now: nothing may persist
    // concurrently, so crash repair must have finished.
    (*idx)->wait_repaired();
    start_sim();
  }
  shared_->ready_ns.store(mono_now_ns());
  ready_fd_ = ready_fd;
  if (::write(ready_fd, "r", 1) != 1) fail("ready pipe");

  std::atomic<uint64_t> next_seq{model_.max_seq() + 1};
  std::atomic<bool> done{false};
  std::thread cleaner([&] {
    std::mt19937_64 rng(seed ^ 0xc1ea);
    while (!done.load(std::memory_order_relaxed)) {
      if (space) {
        // The background cleaner does the cleaning; this thread only samples
        // its counters for the parent (reads: it never flushes).
        const index::IndexStats st = (*idx)->stats();
        shared_->segments_freed.store(st.cleaner_segments_freed, std::memory_order_relaxed);
        shared_->bytes_copied.store(st.cleaner_bytes_copied, std::memory_order_relaxed);
        shared_->evictions.store(st.evictions, std::memory_order_relaxed);
        shared_->bytes_appended.store(st.bytes_appended, std::memory_order_relaxed);
        shared_->waits.store(st.backpressure_waits, std::memory_order_relaxed);
        shared_->wait_us.store(st.backpressure_wait_us, std::memory_order_relaxed);
        shared_->refused_live_full.store(st.refused_live_full, std::memory_order_relaxed);
        shared_->refused_behind.store(st.refused_cleaner_behind, std::memory_order_relaxed);
        shared_->free.store(st.free_bytes, std::memory_order_relaxed);
        shared_->live.store(st.log_bytes_live, std::memory_order_relaxed);
        shared_->limit.store(st.live_limit_bytes, std::memory_order_relaxed);
        shared_->sampled.store(1, std::memory_order_release);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
      (void)(*idx)->clean({.max_live_ratio = 0.5, .max_segments = 4});
    }
  });
  std::vector<std::thread> writers;
  for (unsigned t = 0; t < o_.workers; ++t) {
    writers.emplace_back([&, t] { writer(**idx, t, seed + 7919 * (t + 1), &next_seq); });
  }
  for (auto& w : writers) w.join();
  done.store(true);
  cleaner.join();
  // Finished on its own (--ops-per-cycle): leave as a crash at a quiet moment would.
  ::_exit(0);
}

void InProcessRunner::writer(index::Index& idx, unsigned t, uint64_t seed, std::atomic<uint64_t>* next_seq) {
  auto j = Journal::create_file(journals_[t]);
  if (!j) {
    std::fprintf(stderr, "ferrite-crashtest writer: %s\n", j.status().to_string().c_str());
    ::_exit(11);
  }
  Journal& journal = *j;
  index::Worker& w = idx.worker(t);
  std::mt19937_64 rng(seed);
  constexpr std::size_t kMaxBurst = 32;
  std::vector<uint32_t> ids;
  std::vector<std::string> keys(kMaxBurst), vals(kMaxBurst);
  std::vector<uint64_t> seqs(kMaxBurst);
  std::vector<index::Op> ops(kMaxBurst);
  uint64_t done = 0;
  const bool reads = o_.space != SpaceMode::kOff;
  while (o_.ops_per_cycle == 0 || done < o_.ops_per_cycle) {
    pick_keys(rng, o_.keys, t, o_.workers, 1 + rng() % kMaxBurst, &ids);
    const std::size_t b = ids.size();
    if (b == 0) break;
    for (std::size_t i = 0; i < b; ++i) {
      keys[i] = campaign_key(ids[i]);
      if (reads && rng() % 8 == 0) {  // a get: not journalled, checked below
        ops[i] = index::Op::get(keys[i], &vals[i]);
        continue;
      }
      const bool del = rng() % 10 == 0;
      seqs[i] = next_seq->fetch_add(1, std::memory_order_relaxed);
      journal.issue(del ? JOp::kDel : JOp::kSet, ids[i], seqs[i]);
      if (del) {
        ops[i] = index::Op::del(keys[i]);
      } else {
        vals[i] = campaign_value(ids[i], seqs[i], o_.value_min, o_.value_max);
        ops[i] = index::Op::set(keys[i], vals[i]);
      }
    }
    // Issued ops reach the journal before the index sees them.
    if (!journal.flush().is_ok()) ::_exit(12);
    w.execute(std::span<index::Op>(ops.data(), b));
    for (std::size_t i = 0; i < b; ++i) {
      const Result r = ops[i].result;
      if (ops[i].code == index::OpCode::kGet) {
        // A live read must name a write of this key, with intact bytes.
        uint32_t vid = 0;
        uint64_t vseq = 0;
        if (r == Result::kOk && (!parse_campaign_value(vals[i], o_.value_min, o_.value_max, &vid, &vseq) || vid != ids[i])) {
          shared_->bad_reads.fetch_add(1, std::memory_order_relaxed);
        } else if (r != Result::kOk && r != Result::kNotFound) {
          shared_->bad_reads.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      const bool del = ops[i].code == index::OpCode::kDel;
      if (r == Result::kOk || (del && r == Result::kNotFound)) {
        journal.ack(del ? JOp::kDel : JOp::kSet, ids[i], seqs[i]);
      } else if (r == Result::kNoSpace) {
        shared_->no_space.fetch_add(1, std::memory_order_relaxed);
      } else if (r == Result::kLiveFull) {
        shared_->live_full.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (!journal.flush().is_ok()) ::_exit(12);
    if (shared_->bursts.fetch_add(1, std::memory_order_relaxed) == 0) {
      shared_->first_burst_ns.store(mono_now_ns());
      if (::write(ready_fd_, "w", 1) != 1) ::_exit(13);
    }
    done += b;
  }
}

// ---- the preload (--space) ----

// Writes every key once, in order, from worker 0 with the background cleaner
// running (setup; no crash): the pool is full from the first cycle on.
Status InProcessRunner::preload(index::Index& idx, std::vector<JRecord>* recs) {
  const uint64_t t0 = mono_now_ns();
  index::Worker& w = idx.worker(0);
  constexpr uint32_t kBurst = 32;
  std::vector<std::string> keys(kBurst), vals(kBurst);
  std::vector<index::Op> ops(kBurst);
  uint64_t live_full = 0;
  for (uint32_t first = 0; first < o_.keys; first += kBurst) {
    const uint32_t b = std::min(kBurst, o_.keys - first);
    for (uint32_t i = 0; i < b; ++i) {
      const uint32_t id = first + i;
      keys[i] = campaign_key(id);
      vals[i] = campaign_value(id, preload_seq(id), o_.value_min, o_.value_max);
      ops[i] = index::Op::set(keys[i], vals[i]);
      recs->push_back({JType::kIssue, JOp::kSet, 0, id, preload_seq(id)});
    }
    w.execute(std::span<index::Op>(ops.data(), b));
    for (uint32_t i = 0; i < b; ++i) {
      const uint32_t id = first + i;
      const Result r = ops[i].result;
      if (r == Result::kOk) {
        recs->push_back({JType::kAck, JOp::kSet, 0, id, preload_seq(id)});
        ++preload_.acked;
        preload_.bytes += record_bytes(id, preload_seq(id), o_);
      } else if (r == Result::kNoSpace || r == Result::kLiveFull) {
        ++preload_.refused;
        live_full += r == Result::kLiveFull ? 1 : 0;
      } else {
        return Status::internal(fmt::format("preload: set {}: {}", keys[i], result_name(r)));
      }
    }
  }
  preload_.ms = ms_since(t0);
  preload_.done = true;
  if (live_full > 0) {
    const index::IndexStats st = idx.stats();
    return Status::invalid_argument(fmt::format(
        "preload: {} of {} keys refused as live data reached the pool's limit ({} MiB of {} MiB capacity) in error "
        "mode; use fewer --keys, smaller values or a bigger --pool-size (about 50-70% of the limit is the intent)",
        preload_.refused, o_.keys, st.live_limit_bytes >> 20, st.capacity_bytes >> 20));
  }
  return Status::ok();
}

// ---- the campaign side ----

// Reads one byte from fd within timeout_ms (EINTR retried); false on
// timeout or EOF (*timed_out tells which, if given).
bool read_byte(int fd, int timeout_ms, bool* timed_out = nullptr) {
  pollfd pfd{fd, POLLIN, 0};
  const uint64_t t0 = mono_now_ns();
  if (timed_out != nullptr) *timed_out = false;
  for (;;) {
    const int left = timeout_ms - static_cast<int>(ms_since(t0));
    const int r = ::poll(&pfd, 1, std::max(left, 0));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (timed_out != nullptr) *timed_out = r == 0;
      return false;
    }
    char c = 0;
    return ::read(fd, &c, 1) == 1;
  }
}

// The writers' first burst must return within this long: a store that
// takes longer has stopped serving writes (CycleOutcome::hung).
constexpr int kFirstBurstTimeoutMs = 30000;

Status InProcessRunner::cycle(uint64_t n, std::mt19937_64& rng, CycleOutcome* out) {
  const uint64_t seed = rng();
  // Most cycles are killed a random delay after the writers' first burst (a
  // dirty open makes each worker start a new log segment first, which takes
  // tens of ms here). Some are killed early instead: during open and crash
  // repair (pf off only: before the simulator runs, the page cache is the
  // crash image), or between ready and the first write.
  // With --space the simulator runs from before the index opens, so early
  // kills may hit open and crash repair under --pf too.
  const bool early = rng() % 100 < o_.early_kill_pct;
  const bool early_in_open = early && (o_.pf == Pf::kOff || o_.space != SpaceMode::kOff);
  const unsigned early_ms = static_cast<unsigned>(rng() % (early_in_open ? 300 : 150));
  const unsigned delay_ms = o_.kill_min_ms + static_cast<unsigned>(rng() % (o_.kill_max_ms - o_.kill_min_ms + 1));
  const uint64_t no_space0 = shared_->no_space.load();
  const uint64_t live_full0 = shared_->live_full.load();
  const uint64_t bad_reads0 = shared_->bad_reads.load();
  shared_->bursts.store(0);
  shared_->sim_started.store(0);
  shared_->sampled.store(0);
  shared_->ready_ns.store(0);
  shared_->first_burst_ns.store(0);
  for (const std::string& j : journals_) ::unlink(j.c_str());
  const uint64_t t_start = mono_now_ns();

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Status::io_error("pipe");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::io_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::close(pipefd[0]);
    child_main(pipefd[1], seed);
  }
  ::close(pipefd[1]);
  // The child writes 'r' when ready (simulator running) and 'w' after its
  // first burst; EOF when it ends.
  bool ready = false;
  if (early_in_open) {
    ready = read_byte(pipefd[0], static_cast<int>(early_ms));
    if (ready) (void)read_byte(pipefd[0], static_cast<int>(early_ms - std::min<double>(early_ms, ms_since(t_start))));
  } else {
    ready = read_byte(pipefd[0], 60000);
    if (ready) {
      if (early) {
        (void)read_byte(pipefd[0], static_cast<int>(early_ms));
      } else if (bool timed_out = false; read_byte(pipefd[0], kFirstBurstTimeoutMs, &timed_out)) {
        (void)read_byte(pipefd[0], static_cast<int>(delay_ms));  // sleeps; wakes early at EOF
      } else {
        out->hung = timed_out;
      }
    }
  }
  ::kill(pid, SIGKILL);
  int code = 0;
  const bool killed = reap(pid, &code);
  ::close(pipefd[0]);
  if (!killed && code != 0) return Status::internal(fmt::format("the writer child failed (exit {})", code));
  if (!ready && !early_in_open) {
    return Status::internal("the writer child did not get ready within 60 s");
  }
  out->killed = killed;
  out->killed_early = early;
  out->write_ms = ms_since(t_start);
  if (shared_->ready_ns.load() != 0 && shared_->first_burst_ns.load() != 0) {
    out->start_ms = static_cast<double>(shared_->first_burst_ns.load() - shared_->ready_ns.load()) / 1e6;
  }
  const uint64_t t_check = mono_now_ns();
  out->no_space = shared_->no_space.load() - no_space0;
  out->live_full = shared_->live_full.load() - live_full0;
  out->bad_reads = shared_->bad_reads.load() - bad_reads0;
  if (shared_->sampled.load(std::memory_order_acquire) != 0) {
    CycleOutcome::SpaceSample& sp = out->space;
    sp.sampled = true;
    sp.segments_freed = shared_->segments_freed.load();
    sp.bytes_copied = shared_->bytes_copied.load();
    sp.evictions = shared_->evictions.load();
    sp.bytes_appended = shared_->bytes_appended.load();
    sp.waits = shared_->waits.load();
    sp.wait_us = shared_->wait_us.load();
    sp.refused_live_full = shared_->refused_live_full.load();
    sp.refused_behind = shared_->refused_behind.load();
    sp.free = shared_->free.load();
    sp.live = shared_->live.load();
    sp.limit = shared_->limit.load();
  }

  std::vector<JRecord> recs;
  for (const std::string& j : journals_) {
    if (::access(j.c_str(), F_OK) != 0) continue;  // killed before this writer started
    auto r = Journal::read_file(j);
    if (!r) return r.status();
    recs.insert(recs.end(), r->begin(), r->end());
  }
  out->acked_bytes = acked_set_bytes(recs, o_);
  // The crash image is the simulator's if it was running at the kill, else
  // the page cache's (killed before it started: a plain SIGKILL).
  FERRITE_RETURN_IF_ERROR(crash_image_and_check(shadow_, pool_, o_, o_.pf != Pf::kOff && shared_->sim_started.load() != 0,
                                                seed, recs, rng, t_check, out));
  if (!out->recovery_error.empty()) return Status::ok();
  const uint64_t t_verify = mono_now_ns();
  Status s = recover_and_verify(n, recs, out);
  out->verify_ms = ms_since(t_verify);
  return s;
}

Status InProcessRunner::recover_and_verify(uint64_t n, const std::vector<JRecord>& recs, CycleOutcome* out) {
  for (const JRecord& r : recs) {
    if (r.type == JType::kIssue) ++out->issued;
    else ++out->acked;
  }
  const uint64_t t0 = mono_now_ns();
  auto pool = pmem::Pool::open(pool_);
  if (!pool) {
    out->recovery_error = "reopen: " + pool.status().to_string();
    return Status::ok();
  }
  auto idx = index::Index::open(**pool, index_options(/*background_cleaner=*/false));
  if (!idx) {
    out->recovery_error = "index open: " + idx.status().to_string();
    return Status::ok();
  }
  index::Worker& w = (*idx)->worker(0);
  {
    std::string v;
    const std::string k0 = campaign_key(0);
    auto op = index::Op::get(k0, &v);
    w.execute(std::span<index::Op>(&op, 1));
    out->recovery_ms = ms_since(t0);
  }

  // Every key's value, read in bursts of 32 gets.
  std::vector<std::optional<std::string>> values(o_.keys);
  {
    constexpr uint32_t kBurst = 32;
    std::vector<std::string> keys(kBurst), vals(kBurst);
    std::vector<index::Op> ops(kBurst);
    for (uint32_t first = 0; first < o_.keys && out->recovery_error.empty(); first += kBurst) {
      const uint32_t b = std::min(kBurst, o_.keys - first);
      for (uint32_t i = 0; i < b; ++i) {
        keys[i] = campaign_key(first + i);
        ops[i] = index::Op::get(keys[i], &vals[i]);
      }
      w.execute(std::span<index::Op>(ops.data(), b));
      for (uint32_t i = 0; i < b; ++i) {
        if (ops[i].result == Result::kOk) {
          values[first + i] = std::move(vals[i]);
          ++out->keys_present;
        } else if (ops[i].result != Result::kNotFound) {
          out->recovery_error = fmt::format("get {}: {}", keys[i], result_name(ops[i].result));
        }
      }
    }
  }
  Status scan_status = Status::ok();
  if (out->recovery_error.empty()) {
    model_.apply(recs);
    out->verify = model_.verify(
        [&](const std::string& key) -> std::optional<std::string> {
          uint32_t id = static_cast<uint32_t>(std::stoul(key.substr(3)));
          return values[id];
        },
        [&](const std::function<void(std::string_view)>& visit) {
          scan_status = (*idx)->scan(
              [&](std::string_view key, std::string_view, uint32_t, uint32_t, uint64_t) { visit(key); });
        });
    if (!scan_status.is_ok()) out->recovery_error = "scan: " + scan_status.to_string();
  }
  // Leaks in the crash image: recovery frees orphaned objects at open; the
  // cleaner frees log segments no slot references. Give it the chance (after
  // crash repair: the cleaner waits for it), then the re-check must be clean.
  if (out->check_leaks > 0 && out->recovery_error.empty()) {
    (*idx)->wait_repaired();
    for (int round = 0; round < 4; ++round) {
      const index::CleanStats cs = (*idx)->clean({.max_live_ratio = 0.5, .max_segments = 64});
      for (unsigned i = 0; i < (*idx)->workers(); ++i) (*idx)->worker(i).quiesce();
      if (cs.segments_cleaned == 0) break;
    }
  }
  // Alternate clean closes and crashes-at-rest, so both opens are exercised
  // (a cycle that re-checks leaks closes cleanly: retired segments are freed).
  out->clean_close = n % 2 == 0 || out->check_leaks > 0;
  if (out->clean_close) {
    idx->reset();
    (*pool)->mark_clean_on_close();
  } else {
    (*idx)->TEST_abandon();
    idx->reset();
  }
  pool->reset();
  // Leaks in the crash image are legal only if recovery reclaims them.
  if (out->check_leaks > 0 && out->recovery_error.empty()) recheck_leaks(pool_, out);
  return Status::ok();
}

}  // namespace

std::unique_ptr<Runner> make_inprocess_runner(const Options& o) { return std::make_unique<InProcessRunner>(o); }

}  // namespace ferrite::recovery::crashtest
