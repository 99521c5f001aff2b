// Index under concurrency: per-key model checks with racing workers, add
// races (no duplicates), linearizable incr, growth to millions of keys while
// readers run, and the cleaner running beside writers and readers.
// Scale with FERRITE_STRESS_SCALE (e.g. 0.05 under TSan).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "index/index.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {


double scale() {
  const char* s = std::getenv("FERRITE_STRESS_SCALE");
  return s != nullptr ? std::atof(s) : 1.0;
}
int scaled(int n) { return std::max(1, static_cast<int>(n * scale())); }

class IndexStress : public testing::PoolIndexTest {
 protected:
  IndexStress() : PoolIndexTest("stress") {}
  void open(std::size_t size, unsigned workers = 3) {
    ASSERT_NO_FATAL_FAILURE(create_pool(size));
    open_index({.workers = workers});
  }
  // Runs body(0) and body(1) on two threads and waits for both.
  template <typename Body>
  static void on_two_threads(const Body& body) {
    std::thread a(body, 0), b(body, 1);
    a.join();
    b.join();
  }
  // The value of key, read with worker 0 ("<not found>" etc. if none).
  std::string value_of(std::string_view key) {
    std::string out;
    Op g = Op::get(key, &out);
    const Result r = idx_->worker(0).execute_one(g);
    return r == Result::kOk ? out : "<" + std::string(result_name(r)) + ">";
  }
};

// Each thread owns a key range and checks every result against its own
// sequential model, while the other thread's writes split shared segments.
TEST_F(IndexStress, DisjointKeysMatchSequentialModel) {
  ASSERT_NO_FATAL_FAILURE(open(512u << 20));
  const int iters = std::max(4000, scaled(20000));  // enough filler to split segments at any scale
  std::atomic<int> failures{0};
  auto body = [&](unsigned tid) {
    Worker& w = idx_->worker(tid);
    std::mt19937_64 rng(tid * 7919 + 1);
    std::map<std::string, std::string> model;
    std::vector<std::string> keys, vals(16), outs(16);
    for (int k = 0; k < 200; ++k) keys.push_back("t" + std::to_string(tid) + "-" + std::to_string(k));
    std::vector<Op> ops(16);
    std::vector<std::string> expect(16);
    std::vector<Result> expect_r(16);
    for (int it = 0; it < iters; ++it) {
      const int n = 1 + static_cast<int>(rng() % 16);
      for (int j = 0; j < n; ++j) {
        const std::string& k = keys[rng() % keys.size()];
        const int kind = static_cast<int>(rng() % 5);
        vals[j] = std::to_string(rng() % 1000);
        auto cur = model.find(k);
        if (kind == 0) {
          ops[j] = Op::set(k, vals[j]);
          model[k] = vals[j];
          expect_r[j] = Result::kOk;
        } else if (kind == 1) {
          ops[j] = Op::del(k);
          expect_r[j] = cur == model.end() ? Result::kNotFound : Result::kOk;
          model.erase(k);
        } else if (kind == 2) {
          ops[j] = Op{};
          ops[j].code = OpCode::kAppend;
          ops[j].key = k;
          ops[j].value = vals[j];
          expect_r[j] = cur == model.end() ? Result::kNotStored : Result::kOk;
          if (cur != model.end()) cur->second += vals[j];
        } else {
          ops[j] = Op::get(k, &outs[j]);
          expect_r[j] = cur == model.end() ? Result::kNotFound : Result::kOk;
          expect[j] = cur == model.end() ? "" : cur->second;
        }
      }
      w.execute(std::span<Op>(ops.data(), n));
      for (int j = 0; j < n; ++j) {
        if (ops[j].result != expect_r[j] || (ops[j].code == OpCode::kGet && ops[j].result == Result::kOk && outs[j] != expect[j])) {
          failures++;
        }
      }
      // Filler inserts so segments split while the model keys live in them.
      if (it % 2 == 0) {
        std::string fk = "fill" + std::to_string(tid) + "-" + std::to_string(it);
        Op fo = Op::set(fk, "x");
        if (w.execute_one(fo) != Result::kOk) failures++;
      }
    }
    w.quiesce();
  };
  on_two_threads(body);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(idx_->stats().splits, 0u);
}

TEST_F(IndexStress, RacingAddsOfTheSameKeysLeaveNoDuplicates) {
  ASSERT_NO_FATAL_FAILURE(open(256u << 20));
  const int n = scaled(50000);
  std::vector<std::string> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = "race-" + std::to_string(i);
  std::atomic<int> wins{0};
  auto body = [&](unsigned tid) {
    Worker& w = idx_->worker(tid);
    const std::string val = "from" + std::to_string(tid);
    std::vector<Op> ops(8);
    for (int i = 0; i < n; i += 8) {
      const int m = std::min(8, n - i);
      for (int j = 0; j < m; ++j) {
        ops[j] = Op{};
        ops[j].code = OpCode::kAdd;
        ops[j].key = keys[i + j];
        ops[j].value = val;
      }
      w.execute(std::span<Op>(ops.data(), m));
      for (int j = 0; j < m; ++j) {
        if (ops[j].result == Result::kOk) wins++;
        else EXPECT_EQ(ops[j].result, Result::kExists);
      }
    }
    w.quiesce();
  };
  std::thread a(body, 0), b(body, 1), c(body, 2);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(wins.load(), n) << "exactly one add wins per key";
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(n));
  std::set<std::string> seen;
  uint64_t visits = 0;
  ASSERT_TRUE(idx_->scan([&](std::string_view k, std::string_view, uint32_t, uint32_t, uint64_t) {
    ++visits;
    seen.emplace(k);
  }).is_ok());
  EXPECT_EQ(visits, static_cast<uint64_t>(n)) << "no key visible twice";
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
}

TEST_F(IndexStress, ConcurrentIncrIsLinearizable) {
  ASSERT_NO_FATAL_FAILURE(open(64u << 20));
  Op s = Op::set("ctr", "0");
  ASSERT_EQ(idx_->worker(0).execute_one(s), Result::kOk);
  const int n = scaled(20000);
  auto body = [&](unsigned tid) {
    Worker& w = idx_->worker(tid);
    for (int i = 0; i < n; ++i) {
      Op o;
      o.code = OpCode::kIncr;
      o.key = "ctr";
      o.delta = 1;
      EXPECT_EQ(w.execute_one(o), Result::kOk);
    }
    w.quiesce();
  };
  on_two_threads(body);
  EXPECT_EQ(value_of("ctr"), std::to_string(2 * n));
}

// Two workers race compare-and-write on one key: each round both read the
// version, then both write with it as the expected version (alternating
// the op kinds: incr, set, append, touch). Exactly one must win each round, the loser must see
// kCasMismatch with the winner's version, and the value must show exactly
// the winners' writes.
TEST_F(IndexStress, RacingCompareAndWriteHasOneWinnerPerRound) {
  ASSERT_NO_FATAL_FAILURE(open(256u << 20));
  Op s = Op::set("ck", "0");
  ASSERT_EQ(idx_->worker(0).execute_one(s), Result::kOk);
  const int rounds = scaled(1000);  // ~48 MB of log
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> round_version{0};
  std::atomic<int> wins[2] = {0, 0};
  std::atomic<int> bad{0};
  Result results[2];
  uint64_t new_versions[2];
  std::string model = "0";  // the value the winners' writes leave (thread 0 only)
  auto barrier = [&](int gen) {  // both threads reach generation gen
    arrived.fetch_add(1);
    while (arrived.load() < 2 * gen) {  // spin: both threads leave at once
    }
  };
  auto body = [&](unsigned tid) {
    Worker& w = idx_->worker(tid);
    int g = 0;
    for (int r = 0; r < rounds; ++r) {
      if (tid == 0) {
        Op rd = Op::get("ck", nullptr);
        EXPECT_EQ(w.execute_one(rd), Result::kOk);
        round_version.store(rd.out_version);
      }
      barrier(++g);  // version published
      Op o;
      o.key = "ck";
      o.cas = round_version.load();
      switch (r % 4) {
        case 0: o.code = OpCode::kIncr; o.delta = 1; break;
        case 1: o.code = OpCode::kSet; break;  // value: the round number, below
        case 2: o.code = OpCode::kAppend; o.value = " "; break;  // still a number
        default: o.code = OpCode::kTouch; o.exptime = 0; break;
      }
      // A long value (trailing spaces keep it a number for incr) makes the
      // time between an op's lookup and its slot CAS long enough that the
      // two ops overlap and the later CAS fails and must be decided again.
      const std::string num = std::to_string(r) + std::string(64 << 10, ' ');
      if (o.code == OpCode::kSet) o.value = num;
      results[tid] = w.execute_one(o);
      new_versions[tid] = o.out_version;
      barrier(++g);  // both wrote
      if (tid == 0) {
        const int won = (results[0] == Result::kOk) + (results[1] == Result::kOk);
        if (won != 1) bad.fetch_add(1);
        for (int t = 0; t < 2; ++t) {
          if (results[t] == Result::kOk) {
            wins[t].fetch_add(1);
          } else if (results[t] != Result::kCasMismatch || new_versions[t] != new_versions[1 - t]) {
            bad.fetch_add(1);
          }
        }
        switch (r % 4) {
          case 0: {  // incr keeps the length, padding with spaces (as memcached)
            std::string n = std::to_string(std::stoull(model) + 1);
            if (n.size() < model.size()) n.resize(model.size(), ' ');
            model = n;
            break;
          }
          case 1: model = num; break;
          case 2: model += " "; break;
          default: break;
        }
        std::string out;
        Op rd = Op::get("ck", &out);
        EXPECT_EQ(w.execute_one(rd), Result::kOk);
        if (out != model) bad.fetch_add(1);
      }
      barrier(++g);  // checked
      w.quiesce();
    }
  };
  on_two_threads(body);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(wins[0].load() + wins[1].load(), rounds);
}

TEST_F(IndexStress, ConcurrentSetsOfOneKeyLeaveOneOfTheValues) {
  ASSERT_NO_FATAL_FAILURE(open(64u << 20));
  const int n = scaled(20000);
  auto body = [&](unsigned tid) {
    Worker& w = idx_->worker(tid);
    const std::string v = "writer" + std::to_string(tid);
    for (int i = 0; i < n; ++i) {
      Op o = Op::set("hot", v);
      EXPECT_EQ(w.execute_one(o), Result::kOk);
    }
    w.quiesce();
  };
  on_two_threads(body);
  const std::string out = value_of("hot");
  EXPECT_TRUE(out == "writer0" || out == "writer1") << out;
  EXPECT_EQ(idx_->count(), 1u);
}

// Grows from empty to millions of keys (5M at scale 1) while a reader checks
// every key the writer has acknowledged.
TEST_F(IndexStress, Growth5MWithReaders) {
  const int n = scaled(5000000);
  ASSERT_NO_FATAL_FAILURE(open(std::max<std::size_t>(512u << 20, static_cast<std::size_t>(n) * 140)));
  std::atomic<int> acked{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, reads{0};
  auto key = [](int i) {
    char b[24];
    std::snprintf(b, sizeof(b), "g%015d", i);
    return std::string(b, 16);
  };
  std::thread writer([&] {
    Worker& w = idx_->worker(0);
    std::vector<std::string> ks(32);
    std::vector<Op> ops(32);
    for (int i = 0; i < n; i += 32) {
      const int m = std::min(32, n - i);
      for (int j = 0; j < m; ++j) {
        ks[j] = key(i + j);
        ops[j] = Op::set(ks[j], std::string_view(ks[j]).substr(8));
      }
      w.execute(std::span<Op>(ops.data(), m));
      for (int j = 0; j < m; ++j) ASSERT_EQ(ops[j].result, Result::kOk);
      acked.store(i + m, std::memory_order_release);
    }
    w.quiesce();
    done = true;
  });
  std::thread reader([&] {
    Worker& w = idx_->worker(1);
    std::mt19937_64 rng(5);
    std::string out;
    while (!done.load()) {
      const int hw = acked.load(std::memory_order_acquire);
      if (hw == 0) continue;
      const int i = static_cast<int>(rng() % static_cast<uint64_t>(hw));
      const std::string k = key(i);
      Op g = Op::get(k, &out);
      if (w.execute_one(g) != Result::kOk || out != std::string_view(k).substr(8)) bad++;
      reads++;
    }
    w.quiesce();
  });
  writer.join();
  reader.join();
  EXPECT_EQ(bad.load(), 0u) << "an acknowledged key was missing or wrong during growth";
  EXPECT_GT(reads.load(), 1000u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(n));
  IndexStats st = idx_->stats();
  EXPECT_GT(st.splits, static_cast<uint64_t>(n / 4000));
}

TEST_F(IndexStress, CleanerBesideWritersAndReaders) {
  ASSERT_NO_FATAL_FAILURE(open(256u << 20));
  const int rounds = std::max(4, scaled(30));  // sealed segments with dead data at any scale
  const int keys = 2000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0};
  std::vector<std::string> names(keys);
  for (int i = 0; i < keys; ++i) names[i] = "c" + std::to_string(i);
  std::thread writer([&] {
    Worker& w = idx_->worker(0);
    for (int r = 0; r < rounds; ++r) {
      const std::string v = std::string(500, static_cast<char>('a' + r % 26));
      for (int i = 0; i < keys; ++i) {
        Op o = Op::set(names[i], v);
        if (w.execute_one(o) != Result::kOk) bad++;
      }
    }
    w.quiesce();
    done = true;
  });
  std::thread reader([&] {
    Worker& w = idx_->worker(1);
    std::string out;
    std::mt19937 rng(3);
    while (!done.load()) {
      Op g = Op::get(names[rng() % keys], &out);
      Result r = w.execute_one(g);
      if (r == Result::kOk && (out.size() != 500 || out.find_first_not_of(out[0]) != std::string::npos)) bad++;
    }
    w.quiesce();
  });
  uint64_t cleaned = 0;
  while (!done.load()) {
    cleaned += idx_->clean({.max_live_ratio = 0.7, .max_segments = 8}).segments_cleaned;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  writer.join();
  reader.join();
  cleaned += idx_->clean({.max_live_ratio = 0.7, .max_segments = 1000}).segments_cleaned;
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(cleaned, 0u);
  const std::string last(500, static_cast<char>('a' + (rounds - 1) % 26));
  std::string out;
  for (int i = 0; i < keys; ++i) {
    Op g = Op::get(names[i], &out);
    ASSERT_EQ(idx_->worker(0).execute_one(g), Result::kOk);
    ASSERT_TRUE(out == last) << i;
  }
}

}  // namespace
}  // namespace ferrite::index
