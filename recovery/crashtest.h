// ferrite-crashtest: crash campaigns for users (issue 5). Shared pieces of the
// tool: options, the per-cycle outcome, campaign totals and the two runners.
//
// A campaign is a loop of cycles. Each cycle lets writers run against a pool
// (a forked child process using the index directly, or a ferrited process
// driven over UDP), kills the process that owns the pool with SIGKILL at a
// random moment, optionally turns the pool into a power-failure image (only
// flushed+fenced lines, or a random subset of the flushed-but-unfenced ones:
// recovery/pfsim.h), runs the offline checker on it, recovers, and verifies
// every key against the writers' journal (recovery/journal.h).
//
// Space campaigns (--space error|evict, issue 14): the pool's log space is
// managed by the index's background cleaner (SpaceOptions::background_cleaner)
// and writers wait for room; evict additionally lets the cleaner evict cold
// keys (pool.when_full = evict), which the verifier then accepts as absent
// (Model::set_evictable) but never as stale. Before the first cycle the setup
// writes every key once (the preload), so the pool is full from cycle 0 on
// and every cycle's writes need the cleaner; the campaign fails (exit 4) if an
// evict campaign never saw a key evicted.
//
// Layout of the tool: ferrite_crashtest.cc (options, the cycle loop, progress,
// summary), crashtest_inprocess.cc, crashtest_server.cc, crashtest_util.cc.
//
// Thread safety: a Runner is driven by the one campaign thread; the runners
// start and join their own writer threads within a cycle.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "recovery/journal.h"
#include "recovery/pfsim.h"

namespace ferrite::recovery::crashtest {

enum class Mode : uint8_t { kInProcess, kServer };
enum class Pf : uint8_t { kOff, kFenced, kRandom };
// --space: off = today's campaign (in-process: the child's own clean() calls,
// no background cleaner; server: ferrited's defaults); error / evict = the
// background cleaner with pool.when_full = error / evict, and a preload.
enum class SpaceMode : uint8_t { kOff, kError, kEvict };
const char* to_string(Mode m) noexcept;
const char* to_string(Pf p) noexcept;
const char* to_string(SpaceMode s) noexcept;
inline PfMode pf_mode(Pf p) noexcept { return p == Pf::kRandom ? PfMode::kRandomUnfenced : PfMode::kFencedOnly; }

struct Options {
  Mode mode = Mode::kInProcess;
  Pf pf = Pf::kOff;
  uint64_t cycles = 100;
  double seconds = 0;            // overall bound (0 = none): no cycle starts after it
  uint64_t min_cycles = 0;       // fewer cycles than this (time bound hit) fails with exit 3
  uint32_t keys = 50000;
  std::size_t value_min = 8;
  std::size_t value_max = 1024;
  unsigned workers = 2;          // writer threads (and index workers / server workers)
  uint64_t ops_per_cycle = 0;    // per writer thread; 0 = until killed
  unsigned kill_min_ms = 10;     // kill delay range after the writers started
  unsigned kill_max_ms = 150;
  unsigned early_kill_pct = 10;  // % of cycles killed early: in-process, during open and crash repair
                                 //   (pf off) or before the first write (pf on); server, during the
                                 //   first writes after a restart
  uint64_t seed = 0;
  std::string pool;              // "" = <work dir>/pool
  std::size_t pool_size = 128ull << 20;
  std::size_t segment_size = 4ull << 20;  // log/table segment size of a new pool (pool.segment_size)
  SpaceMode space = SpaceMode::kOff;
  bool keep = false;
  bool quiet = false;
  bool verbose = false;          // a line per cycle on stderr
  std::string ferrited;          // server mode; "" = next to this binary
  bool corrupt_acked = false;    // test-only: damage one acknowledged value on media each cycle
  std::string work_dir;          // journals, shadow (and the default pool)
};

// What one cycle found.
struct CycleOutcome {
  bool killed = true;            // false: the writer finished on its own before the kill
  bool killed_early = false;     // an early kill (see Options::early_kill_pct)
  bool clean_close = false;      // the verifier closed the pool cleanly afterwards
  uint64_t issued = 0;
  uint64_t acked = 0;
  uint64_t no_space = 0;         // writes refused for lack of space (not acknowledged): kNoSpace
                                 //   (server: every out-of-memory reply)
  uint64_t live_full = 0;        // in-process: writes refused with kLiveFull (live data above the limit)
  uint64_t bad_reads = 0;        // --space: a get by a writer returned a value that is not one of its key's
                                 //   (a torn or foreign record served live): a failure
  // The writers' first batch got no answer within the bound (in-process
  // 30 s, server 20 s) while they were running: the store stopped serving
  // writes. The cycle is still killed, checked and verified; the campaign
  // then ends with exit 5.
  bool hung = false;
  uint64_t keys_present = 0;     // keys the verifier found present after recovery
  uint64_t acked_bytes = 0;      // record bytes of the acknowledged sets (header + key + value, 8-aligned)
  // The pool's space counters (IndexStats) of the process that was killed, sampled
  // shortly before the kill (--space only; in-process every ~5 ms by the writer
  // child, server by a stats request right before the kill): since that process
  // started. sampled = false if no sample was taken.
  struct SpaceSample {
    bool sampled = false;
    uint64_t segments_freed = 0, bytes_copied = 0, evictions = 0, bytes_appended = 0;
    uint64_t waits = 0, wait_us = 0, refused_live_full = 0, refused_behind = 0;
    uint64_t free = 0, live = 0, limit = 0;  // bytes: free space, live data, the live-data limit
  } space;
  double recovery_ms = -1;       // reopen until the first get was answered
  double start_ms = -1;          // writers ready (or started) until the first write was acknowledged
  double write_ms = 0;           // phases of the cycle: writers running until the kill,
  double check_ms = 0;           //   the offline check (and the power-failure image),
  double verify_ms = 0;          //   recovery + verification + close
  VerifyReport verify;
  uint64_t check_problems = 0;   // corruption the checker found in the crash image
  uint64_t check_leaks = 0;      // leaked-space findings in the crash image (legal after a crash,
  uint64_t leak_bytes = 0;       //   as long as recovery reclaims them: see recheck_leaks)
  std::vector<std::pair<std::string, uint64_t>> leak_classes;
  uint64_t leaks_after_recovery = 0;  // leaks the checker still finds after recovery + close
  std::vector<std::string> check_examples;
  std::string recovery_error;    // recovery itself failed (open, restart, scan...): a durability failure
  std::string corrupted_key;     // corrupt_acked: the key that was damaged
  bool ok() const {
    return verify.ok() && check_problems == 0 && leaks_after_recovery == 0 && recovery_error.empty() && bad_reads == 0;
  }
};

class Runner {
 public:
  virtual ~Runner() = default;
  // Creates the pool (and starts the server). Errors are setup errors (exit 2).
  virtual Status setup() = 0;
  // One cycle; a non-OK Status is a setup error (the harness broke, not the store).
  virtual Status cycle(uint64_t n, std::mt19937_64& rng, CycleOutcome* out) = 0;
  // Stops processes it started. Files are removed by the caller.
  virtual void teardown() = 0;

  // The preload of a --space campaign (setup): every key written once, then
  // verified like a cycle (no crash).
  struct Preload {
    bool done = false;
    uint64_t acked = 0, refused = 0;
    uint64_t present = 0, absent_evictable = 0;  // after it (evicted while it ran)
    uint64_t bytes = 0;                          // record bytes acknowledged
    double ms = 0;
  };
  const Preload& preload() const noexcept { return preload_; }

 protected:
  // Takes the preload's verification (a cycle's outcome with no crash) into
  // preload_, or says why it did not verify.
  Status note_preload_verified(const CycleOutcome& c);
  Preload preload_;
};

std::unique_ptr<Runner> make_inprocess_runner(const Options& o);
std::unique_ptr<Runner> make_server_runner(const Options& o);

// ---- helpers shared by the runners (crashtest_util.cc) ----

// Milliseconds since t0_ns, a mono_now_ns() reading (common/clock.h).
double ms_since(uint64_t t0_ns) noexcept;

// Reads the crashed pool at path with the offline checker; fills
// out->check_* and the leak fields. A pool the checker cannot open at all is a
// recovery error.
void run_checker(const std::string& path, const Options& o, CycleOutcome* out);
// After recovery and close: the leaks the crash image had must be gone
// (orphans are freed at open). Fills out->leaks_after_recovery.
void recheck_leaks(const std::string& path, CycleOutcome* out);

// pf on: completes the power-failure image a killed process left in shadow
// and renames it over pool.
Status finish_power_failure(const std::string& shadow, const std::string& pool, Pf pf, uint64_t seed);

// The crash image of one cycle, shared by both runners: with power_failed,
// finish_power_failure (seed ^ 0x9f); then the test-only damage
// (--corrupt-acked) and run_checker; out->check_ms counts from t_check.
Status crash_image_and_check(const std::string& shadow, const std::string& pool, const Options& o,
                             bool power_failed, uint64_t seed, const std::vector<JRecord>& recs,
                             std::mt19937_64& rng, uint64_t t_check, CycleOutcome* out);

// Test-only (--corrupt-acked): picks a key whose last op in recs is an
// acknowledged set and flips one byte of that value wherever it occurs in
// the pool file. Returns the key ("" if no key qualified).
StatusOr<std::string> corrupt_one_acked(const std::string& pool, const std::vector<JRecord>& recs, const Options& o,
                                        std::mt19937_64& rng);

// The key ids writer thread t of n owns: t, t + n, t + 2n, ... < keys.
// Picks up to want distinct ones into out.
void pick_keys(std::mt19937_64& rng, uint32_t keys, unsigned t, unsigned n, std::size_t want,
               std::vector<uint32_t>* out);

// Bytes a campaign record of key id and write seq takes in the log
// (index/record.h: a 24-byte header, the key, the value, padded to 8).
uint64_t record_bytes(uint32_t id, uint64_t seq, const Options& o);
// Sums record_bytes over the acknowledged sets of recs.
uint64_t acked_set_bytes(const std::vector<JRecord>& recs, const Options& o);

// The preload's key order and sequence numbers: key id is written with
// seq id + 1 (so Model::max_seq() covers them after verification).
inline uint64_t preload_seq(uint32_t id) noexcept { return static_cast<uint64_t>(id) + 1; }

// Waits for pid; true if it died of SIGKILL (false: it exited on its own).
// Fills *exit_code for a process that exited.
bool reap(pid_t pid, int* exit_code);

}  // namespace ferrite::recovery::crashtest
