// ferrite-crashtest, in-process mode: each cycle forks a writer child that
// opens the pool and the index and runs bursts of sets and deletes from
// --workers threads (plus a cleaner thread), journalling every op to a file
// before execute() and every acknowledgement after it; the parent SIGKILLs
// the child at a random moment, then checks, recovers and verifies.
//
// With --pf the child runs the power-failure simulator: after the kill the
// parent completes the shadow image (recovery/pfsim.h) and renames it over
// the pool, so recovery sees only what was flushed and fenced (plus, in
// random mode, a random subset of what was flushed but not yet fenced).
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
  std::atomic<uint64_t> bursts;
  std::atomic<uint64_t> ready_ns;        // CLOCK_MONOTONIC when the child was ready
  std::atomic<uint64_t> first_burst_ns;  // ... when its first burst returned (0: none yet)
};

uint64_t mono_ns() {
  const struct timespec t = now_mono();
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

class InProcessRunner final : public Runner {
 public:
  explicit InProcessRunner(const Options& o)
      : o_(o), model_(o.keys, o.value_min, o.value_max), pool_(o.pool), shadow_(o.work_dir + "/shadow") {
    for (unsigned t = 0; t < o.workers; ++t) journals_.push_back(fmt::format("{}/journal.{}", o.work_dir, t));
  }
  ~InProcessRunner() override {
    if (shared_ != nullptr) ::munmap(shared_, sizeof(Shared));
  }

  Status setup() override {
    void* m = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return Status::io_error("mmap shared counters");
    shared_ = new (m) Shared{};
    // Create the pool and an empty index, closed cleanly, so every child opens.
    auto pool = pmem::Pool::create(pool_, o_.pool_size);
    if (!pool) return pool.status();
    if (!(*pool)->is_pmem()) return Status::invalid_argument("the pool is not in flush+fence mode (PMEM_IS_PMEM_FORCE=1?)");
    auto idx = index::Index::open(**pool, {.workers = o_.workers});
    if (!idx) return idx.status();
    idx->reset();
    (*pool)->mark_clean_on_close();
    return Status::ok();
  }

  void teardown() override { PowerFailSim::remove_files(shadow_); }

  Status cycle(uint64_t n, std::mt19937_64& rng, CycleOutcome* out) override;

 private:
  [[noreturn]] void child_main(int ready_fd, uint64_t seed);
  void writer(index::Index& idx, unsigned t, uint64_t seed, std::atomic<uint64_t>* next_seq);
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
  auto pool = pmem::Pool::open(pool_);
  if (!pool) fail(pool.status().to_string());
  auto idx = index::Index::open(**pool, {.workers = o_.workers});
  if (!idx) fail(idx.status().to_string());
  std::unique_ptr<PowerFailSim> sim;
  if (o_.pf != Pf::kOff) {
    // The simulator copies the image as it is now: nothing may persist
    // concurrently, so crash repair must have finished.
    (*idx)->wait_repaired();
    auto s = PowerFailSim::start(**pool, shadow_);
    if (!s) fail(s.status().to_string());
    sim = std::move(s).value();
  }
  shared_->ready_ns.store(mono_ns());
  ready_fd_ = ready_fd;
  if (::write(ready_fd, "r", 1) != 1) fail("ready pipe");

  std::atomic<uint64_t> next_seq{model_.max_seq() + 1};
  std::atomic<bool> done{false};
  std::thread cleaner([&] {
    std::mt19937_64 rng(seed ^ 0xc1ea);
    while (!done.load(std::memory_order_relaxed)) {
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
  while (o_.ops_per_cycle == 0 || done < o_.ops_per_cycle) {
    pick_keys(rng, o_.keys, t, o_.workers, 1 + rng() % kMaxBurst, &ids);
    const std::size_t b = ids.size();
    if (b == 0) break;
    for (std::size_t i = 0; i < b; ++i) {
      const bool del = rng() % 10 == 0;
      seqs[i] = next_seq->fetch_add(1, std::memory_order_relaxed);
      keys[i] = campaign_key(ids[i]);
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
      const bool del = ops[i].code == index::OpCode::kDel;
      const Result r = ops[i].result;
      if (r == Result::kOk || (del && r == Result::kNotFound)) {
        journal.ack(del ? JOp::kDel : JOp::kSet, ids[i], seqs[i]);
      } else if (r == Result::kNoSpace) {
        shared_->no_space.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (!journal.flush().is_ok()) ::_exit(12);
    if (shared_->bursts.fetch_add(1, std::memory_order_relaxed) == 0) {
      shared_->first_burst_ns.store(mono_ns());
      if (::write(ready_fd_, "w", 1) != 1) ::_exit(13);
    }
    done += b;
  }
}

// ---- the campaign side ----

// Reads one byte from fd within timeout_ms (EINTR retried); false on
// timeout or EOF.
bool read_byte(int fd, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  const struct timespec t0 = now_mono();
  for (;;) {
    const int left = timeout_ms - static_cast<int>(ms_since(t0));
    const int r = ::poll(&pfd, 1, std::max(left, 0));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char c = 0;
    return ::read(fd, &c, 1) == 1;
  }
}

Status InProcessRunner::cycle(uint64_t n, std::mt19937_64& rng, CycleOutcome* out) {
  const uint64_t seed = rng();
  // Most cycles are killed a random delay after the writers' first burst (a
  // dirty open makes each worker start a new log segment first, which takes
  // tens of ms here). Some are killed early instead: during open and crash
  // repair (pf off only: before the simulator runs, the page cache is the
  // crash image), or between ready and the first write.
  const bool early = rng() % 100 < o_.early_kill_pct;
  const unsigned early_ms = static_cast<unsigned>(rng() % (o_.pf == Pf::kOff ? 300 : 150));
  const unsigned delay_ms = o_.kill_min_ms + static_cast<unsigned>(rng() % (o_.kill_max_ms - o_.kill_min_ms + 1));
  const uint64_t no_space0 = shared_->no_space.load();
  shared_->bursts.store(0);
  shared_->ready_ns.store(0);
  shared_->first_burst_ns.store(0);
  for (const std::string& j : journals_) ::unlink(j.c_str());
  const struct timespec t_start = now_mono();

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
  if (early && o_.pf == Pf::kOff) {
    ready = read_byte(pipefd[0], static_cast<int>(early_ms));
    if (ready) (void)read_byte(pipefd[0], static_cast<int>(early_ms - std::min<double>(early_ms, ms_since(t_start))));
  } else {
    ready = read_byte(pipefd[0], 60000);
    if (ready) {
      if (early) {
        (void)read_byte(pipefd[0], static_cast<int>(early_ms));
      } else if (read_byte(pipefd[0], 60000)) {
        (void)read_byte(pipefd[0], static_cast<int>(delay_ms));  // sleeps; wakes early at EOF
      }
    }
  }
  ::kill(pid, SIGKILL);
  int code = 0;
  const bool killed = reap(pid, &code);
  ::close(pipefd[0]);
  if (!killed && code != 0) return Status::internal(fmt::format("the writer child failed (exit {})", code));
  if (!ready && !(early && o_.pf == Pf::kOff)) {
    return Status::internal("the writer child did not get ready within 60 s");
  }
  out->killed = killed;
  out->killed_early = early;
  out->write_ms = ms_since(t_start);
  if (shared_->ready_ns.load() != 0 && shared_->first_burst_ns.load() != 0) {
    out->start_ms = static_cast<double>(shared_->first_burst_ns.load() - shared_->ready_ns.load()) / 1e6;
  }
  const struct timespec t_check = now_mono();
  out->no_space = shared_->no_space.load() - no_space0;

  std::vector<JRecord> recs;
  for (const std::string& j : journals_) {
    if (::access(j.c_str(), F_OK) != 0) continue;  // killed before this writer started
    auto r = Journal::read_file(j);
    if (!r) return r.status();
    recs.insert(recs.end(), r->begin(), r->end());
  }
  FERRITE_RETURN_IF_ERROR(
      crash_image_and_check(shadow_, pool_, o_, o_.pf != Pf::kOff && ready, seed, recs, rng, t_check, out));
  if (!out->recovery_error.empty()) return Status::ok();
  const struct timespec t_verify = now_mono();
  Status s = recover_and_verify(n, recs, out);
  out->verify_ms = ms_since(t_verify);
  return s;
}

Status InProcessRunner::recover_and_verify(uint64_t n, const std::vector<JRecord>& recs, CycleOutcome* out) {
  for (const JRecord& r : recs) {
    if (r.type == JType::kIssue) ++out->issued;
    else ++out->acked;
  }
  const struct timespec t0 = now_mono();
  auto pool = pmem::Pool::open(pool_);
  if (!pool) {
    out->recovery_error = "reopen: " + pool.status().to_string();
    return Status::ok();
  }
  auto idx = index::Index::open(**pool, {.workers = o_.workers});
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
