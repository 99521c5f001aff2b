// Deterministic crash tests: for every named crash point (common/crash_point.h)
// a writer process crashes exactly there -- as a process crash (_exit: every
// store survives in the page cache) or as a power failure (recovery/pfsim.h:
// only flushed+fenced lines survive, or additionally a random subset of the
// flushed-but-unfenced ones) -- and the pool is then reopened and checked for
// invariant 5: every acknowledged write present with its exact value or a
// later one, no key twice, no torn record, and ferrite-check's consistency
// checks pass.
//
// The workload is single-threaded and seeded, so the n-th hit of a point is
// the same moment in every run: a first run counts each point's hits (and
// fails if a point is never reached), then each point is crashed at its
// first, middle and last hit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/crash_point.h"
#include "index/index.h"
#include "pmem/pool.h"
#include "recovery/check.h"
#include "recovery/journal.h"
#include "recovery/pfsim.h"
#include "tests/util/temp_path.h"

namespace ferrite {
namespace {

using recovery::JOp;
using recovery::PfMode;

constexpr uint32_t kKeys = 6000;
constexpr std::size_t kMinLen = 8, kMaxLen = 300;
constexpr std::size_t kPoolSize = 64u << 20;
constexpr std::size_t kSegmentSize = 2u << 20;
constexpr int kCrashExit = 42;

enum class Kind { kProcess, kPowerFenced, kPowerRandom };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kProcess: return "process";
    case Kind::kPowerFenced: return "power-fenced";
    case Kind::kPowerRandom: return "power-random";
  }
  return "?";
}

// ---- the crash hook (in the writer child) ----
struct Target {
  const char* point = nullptr;
  uint64_t n = 0;  // crash at this hit; 0 = count only
  Kind kind = Kind::kProcess;
  recovery::PowerFailSim* sim = nullptr;
  uint64_t seed = 0;
  uint64_t hits[crash::kNumPoints] = {};
};
Target g_target;

void hook(const char* name) {
  for (std::size_t i = 0; i < crash::kNumPoints; ++i) {
    if (std::strcmp(name, crash::kAllPoints[i]) != 0) continue;
    ++g_target.hits[i];
    if (g_target.n != 0 && std::strcmp(name, g_target.point) == 0 && g_target.hits[i] == g_target.n) {
      if (g_target.sim != nullptr) {
        g_target.sim->power_fail(g_target.kind == Kind::kPowerRandom ? PfMode::kRandomUnfenced : PfMode::kFencedOnly,
                                 g_target.seed);
      }
      ::_exit(kCrashExit);
    }
    return;
  }
}

// The writer: seeded bursts of sets and deletes over a key range that grows
// (splits, directory doublings), overwrites (dead records for the cleaner),
// a cleaning pass every few bursts (relocation, segment frees), enough bytes
// for several log segment allocations, and a clean close at the end.
// Journals each op before its burst and each acknowledgement after it.
int writer(const std::string& pool_path, const std::string& journal_path, bool power, const std::string& shadow) {
  auto pool = pmem::Pool::open(pool_path);
  if (!pool) {
    std::fprintf(stderr, "writer: %s\n", pool.status().to_string().c_str());
    return 3;
  }
  auto idx = index::Index::open(**pool, {.workers = 1});
  if (!idx) {
    std::fprintf(stderr, "writer: %s\n", idx.status().to_string().c_str());
    return 3;
  }
  std::unique_ptr<recovery::PowerFailSim> sim;
  if (power) {
    auto s = recovery::PowerFailSim::start(**pool, shadow);
    if (!s) {
      std::fprintf(stderr, "writer: %s\n", s.status().to_string().c_str());
      return 3;
    }
    sim = std::move(*s);
    g_target.sim = sim.get();
  }
  auto journal = recovery::Journal::create_file(journal_path);
  if (!journal) return 3;
  crash::set_hook(hook);
  std::mt19937_64 rng(12345);
  index::Worker& w = (*idx)->worker(0);
  uint64_t seq = 0;
  std::vector<index::Op> ops;
  std::vector<std::string> keys, values;
  std::vector<uint32_t> ids;
  for (int burst = 0; burst < 1600; ++burst) {
    const uint32_t range = std::min<uint32_t>(kKeys, 400 + static_cast<uint32_t>(burst) * 5);
    const std::size_t n = 1 + rng() % 32;
    ops.clear();
    keys.clear();
    values.clear();
    ids.clear();
    keys.reserve(n);
    values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const uint32_t id = static_cast<uint32_t>(rng() % range);
      ids.push_back(id);
      keys.push_back(recovery::campaign_key(id));
      ++seq;
      if (rng() % 100 < 15) {
        values.emplace_back();
        journal->issue(JOp::kDel, id, seq);
      } else {
        values.push_back(recovery::campaign_value(id, seq, kMinLen, kMaxLen));
        journal->issue(JOp::kSet, id, seq);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      ops.push_back(values[i].empty() ? index::Op::del(keys[i]) : index::Op::set(keys[i], values[i]));
    }
    if (!journal->flush().is_ok()) return 3;
    w.execute(ops);
    for (std::size_t i = 0; i < n; ++i) {
      const uint64_t s = seq - n + 1 + i;
      const bool del = ops[i].code == index::OpCode::kDel;
      // A delete of an absent key is acknowledged too (kNotFound): the key is absent.
      if (ops[i].result == Result::kOk || (del && ops[i].result == Result::kNotFound)) {
        journal->ack(del ? JOp::kDel : JOp::kSet, ids[i], s);
      }
    }
    if (!journal->flush().is_ok()) return 3;
    if (burst % 40 == 39) (void)(*idx)->clean({.max_live_ratio = 0.9, .max_segments = 2});
  }
  idx.value().reset();  // clean close (close.before_clean_flag)
  (*pool)->mark_clean_on_close();
  pool.value().reset();
  // Counting run: report each point's hits to the parent.
  for (std::size_t i = 0; i < crash::kNumPoints; ++i) std::printf("%llu\n", static_cast<unsigned long long>(g_target.hits[i]));
  std::fflush(stdout);
  return 0;
}

struct Outcome {
  int exit_code = -1;
  std::string out;
};

// Runs the writer in a child process; captures its stdout.
Outcome run_child(const std::string& pool, const std::string& journal, Target t, bool power, const std::string& shadow) {
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    ::dup2(pipefd[1], 1);
    g_target = t;
    ::_exit(writer(pool, journal, power, shadow));
  }
  ::close(pipefd[1]);
  Outcome o;
  char buf[4096];
  for (ssize_t r; (r = ::read(pipefd[0], buf, sizeof(buf))) > 0;) o.out.append(buf, static_cast<std::size_t>(r));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

void make_pool(const std::string& path) {
  ::unlink(path.c_str());
  auto pool = pmem::Pool::create(path, kPoolSize, kSegmentSize);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  (*pool)->mark_clean_on_close();
}

// Reopens the pool after a crash and checks invariant 5 against the journal.
void check_recovered(const std::string& pool_path, const std::string& journal_path, const std::string& what) {
  // Straight after the crash: no corruption. Space a crash legally strands
  // (a split's unpublished successors, a retired segment not yet freed, a
  // log head with nothing published) is reported as leaked and must be gone
  // after recovery and one cleaning pass (checked below).
  auto report = recovery::check_pool(pool_path);
  ASSERT_TRUE(report.is_ok()) << what << ": " << report.status().to_string();
  uint64_t corrupt = 0;
  for (const recovery::Problem& p : report->problems) corrupt += p.kind == recovery::ProblemKind::kCorruption ? 1 : 0;
  EXPECT_EQ(corrupt, 0u) << what << ":\n" << recovery::to_string(*report);

  auto journal = recovery::Journal::read_file(journal_path);
  ASSERT_TRUE(journal.is_ok());
  recovery::Model model(kKeys, kMinLen, kMaxLen);
  model.apply(*journal);

  auto pool = pmem::Pool::open(pool_path);
  ASSERT_TRUE(pool.is_ok()) << what << ": " << pool.status().to_string();
  auto idx = index::Index::open(**pool, {.workers = 1});
  ASSERT_TRUE(idx.is_ok()) << what << ": " << idx.status().to_string();
  index::Worker& w = (*idx)->worker(0);
  auto rep = model.verify(
      [&](const std::string& key) -> std::optional<std::string> {
        std::string v;
        index::Op op = index::Op::get(key, &v);
        if (w.execute_one(op) != Result::kOk) return std::nullopt;
        return v;
      },
      [&](const std::function<void(std::string_view)>& visit) {
        (void)(*idx)->scan([&](std::string_view k, std::string_view, uint32_t, uint32_t, uint64_t) { visit(k); });
      });
  EXPECT_TRUE(rep.ok()) << what << ": lost " << rep.lost << " torn " << rep.torn << " unexpected " << rep.unexpected
                        << " duplicates " << rep.duplicates << "\n"
                        << (rep.examples.empty() ? "" : rep.examples[0]);
  EXPECT_GT(rep.keys_checked, 0u);
  // The recovered index keeps working: a write and a read after recovery.
  const std::string k = recovery::campaign_key(0), v = "after-recovery";
  index::Op set = index::Op::set(k, v);
  EXPECT_EQ(w.execute_one(set), Result::kOk) << what;
  // Recovery finishes (lazily repaired segments, background pass), then a
  // cleaning pass frees log segments the crash left without live records.
  for (int i = 0; i < 500 && !(*idx)->stats().repair_done; ++i) ::usleep(10000);
  ASSERT_TRUE((*idx)->stats().repair_done) << what;
  EXPECT_EQ((*idx)->stats().recovery_bad_records, 0u) << what;
  (void)(*idx)->clean({.max_live_ratio = 0.0, .max_segments = 64});
  idx.value().reset();
  (*pool)->mark_clean_on_close();
  pool.value().reset();
  auto again = recovery::check_pool(pool_path);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->ok()) << what << " (after recovery and a clean close):\n" << recovery::to_string(*again);
}

class CrashPoints : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::TempPath pool("crash-count"), journal("crash-count-j");
    make_pool(pool.str());
    Outcome o = run_child(pool.str(), journal.str(), Target{}, false, "");
    ASSERT_EQ(o.exit_code, 0) << "the counting run failed";
    std::size_t i = 0;
    std::size_t pos = 0;
    while (i < crash::kNumPoints && pos < o.out.size()) {
      hits_[i++] = std::strtoull(o.out.c_str() + pos, nullptr, 10);
      pos = o.out.find('\n', pos);
      if (pos == std::string::npos) break;
      ++pos;
    }
  }
  static uint64_t hits_[crash::kNumPoints];
};
uint64_t CrashPoints::hits_[crash::kNumPoints] = {};

TEST_F(CrashPoints, EveryPointIsReachedByTheWorkload) {
  for (std::size_t i = 0; i < crash::kNumPoints; ++i) {
    std::printf("%-28s %llu hits\n", crash::kAllPoints[i], static_cast<unsigned long long>(hits_[i]));
    EXPECT_GT(hits_[i], 0u) << crash::kAllPoints[i] << " is never reached: its crash test would prove nothing";
  }
}

class CrashAt : public CrashPoints, public ::testing::WithParamInterface<std::tuple<std::size_t, Kind>> {};

TEST_P(CrashAt, RecoveryKeepsEveryAcknowledgedWrite) {
  const auto [pi, kind] = GetParam();
  const char* point = crash::kAllPoints[pi];
  ASSERT_GT(hits_[pi], 0u) << point << " is never reached";
  std::vector<uint64_t> ns = {1, (hits_[pi] + 1) / 2, hits_[pi]};
  std::sort(ns.begin(), ns.end());
  ns.erase(std::unique(ns.begin(), ns.end()), ns.end());
  for (uint64_t n : ns) {
    testing::TempPath pool("crash"), journal("crash-j"), shadow("crash-shadow");
    make_pool(pool.str());
    const bool power = kind != Kind::kProcess;
    Target t;
    t.point = point;
    t.n = n;
    t.kind = kind;
    t.seed = n * 7919 + pi;
    const std::string what = std::string(point) + " hit " + std::to_string(n) + " (" + kind_name(kind) + ")";
    Outcome o = run_child(pool.str(), journal.str(), t, power, shadow.str());
    ASSERT_EQ(o.exit_code, kCrashExit) << what << ": the writer did not crash there";
    if (power) {
      ASSERT_TRUE(recovery::PowerFailSim::finish_after_kill(shadow.str(),
                                                            kind == Kind::kPowerRandom ? PfMode::kRandomUnfenced
                                                                                       : PfMode::kFencedOnly,
                                                            t.seed)
                      .is_ok());
      ASSERT_EQ(::rename(shadow.c_str(), pool.c_str()), 0);
    }
    check_recovered(pool.str(), journal.str(), what);
    if (HasFailure()) return;
  }
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<std::size_t, Kind>>& info) {
  std::string s = std::string(crash::kAllPoints[std::get<0>(info.param)]) + "_" + kind_name(std::get<1>(info.param));
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(AllPoints, CrashAt,
                         ::testing::Combine(::testing::Range<std::size_t>(0, crash::kNumPoints),
                                            ::testing::Values(Kind::kProcess, Kind::kPowerFenced, Kind::kPowerRandom)),
                         param_name);

}  // namespace
}  // namespace ferrite
