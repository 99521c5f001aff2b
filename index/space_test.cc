// Space management (index/space.h) in one process: capacity, option checks,
// the live-data limit and its refusal, overwrites in a small pool with the
// background cleaner, appends to one key up to the value limit, eviction
// (second chance for read keys, durable across a crash); death tests of the
// segment table's checks (segtab.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "index/index.h"
#include "index/segtab.h"
#include "pmem/segment.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {


constexpr std::size_t kValueLen = 1000;
constexpr uint64_t kRecord = (24 + 16 + kValueLen + 7) / 8 * 8;  // 16-byte keys (key_of)

double scale() {
  const char* s = std::getenv("FERRITE_STRESS_SCALE");
  return s != nullptr ? std::max(0.01, std::atof(s)) : 1.0;
}

std::string key_of(uint64_t i) {
  char b[32];  // 16 bytes for i < 10^12; room for any i keeps -Wformat-truncation quiet
  std::snprintf(b, sizeof(b), "key-%012llu", static_cast<unsigned long long>(i));
  return b;
}
std::string value_of(uint64_t i, uint64_t seq) {
  std::string v = std::to_string(i) + ":" + std::to_string(seq) + ":";
  v.resize(kValueLen, static_cast<char>('a' + (i + seq) % 26));
  return v;
}

class SpaceTest : public testing::PoolIndexTest {
 protected:
  SpaceTest() : PoolIndexTest("space") {}
  // An index with these space options, or why not (tests of refused options).
  StatusOr<std::unique_ptr<Index>> open_index(const SpaceOptions& so, unsigned workers = 2) {
    IndexOptions o;
    o.workers = workers;
    o.space = so;
    return Index::open(*pool_, o);
  }
  void create(std::size_t size, std::size_t seg) { create_pool(size, seg); }
  void open(const SpaceOptions& so) { PoolIndexTest::open_index({.workers = 2, .space = so}); }
  // Closes (cleanly, or like a crash) and opens the pool again, without the
  // background cleaner, so what is read is what the media holds.
  void reopen(bool crash) {
    if (crash) idx_->TEST_abandon();
    ASSERT_NO_FATAL_FAILURE(open_pool());
    ASSERT_NO_FATAL_FAILURE(open(SpaceOptions{}));
    idx_->wait_repaired();
  }
  Result set(unsigned w, uint64_t i, uint64_t seq) {
    const std::string k = key_of(i), v = value_of(i, seq);
    Op op = Op::set(k, v);
    return idx_->worker(w).execute_one(op);
  }
  // The key's value, or "" if absent.
  std::string get(uint64_t i) {
    std::string out;
    const std::string k = key_of(i);
    Op op = Op::get(k, &out);
    return idx_->worker(0).execute_one(op) == Result::kOk ? out : std::string();
  }
  static SpaceOptions managed(bool evict = false) {
    SpaceOptions so;
    so.background_cleaner = true;
    so.evict = evict;
    so.max_wait_ms = 5000;
    return so;
  }

};

TEST_F(SpaceTest, CapacityIsWhatThePoolCanHold) {
  for (auto [size, seg] : {std::pair<std::size_t, std::size_t>{64u << 20, 4u << 20}, {64u << 20, 2u << 20},
                           {256u << 20, 4u << 20}}) {
    // What a fresh pool of this size can allocate, in segments.
    create(size, seg);
    pmem::SegmentAllocator a(*pool_);
    uint64_t n = 0;
    while (a.allocate(pmem::SegmentKind::kLog, 0, {}, false).is_ok()) ++n;
    create(size, seg);
    open(SpaceOptions{});
    const IndexStats st = idx_->stats();
    EXPECT_LE(st.capacity_bytes, n * seg) << size << "/" << seg << ": capacity above what can be allocated";
    EXPECT_GE(st.capacity_bytes, (n - 1) * seg) << size << "/" << seg << ": capacity more than a segment short";
    EXPECT_LE(st.free_bytes, st.capacity_bytes);
  }
}

TEST_F(SpaceTest, OptionsOutOfOrderOrAPoolTooSmallAreRefusedAtOpen) {
  create(64u << 20, 2u << 20);
  SpaceOptions so = managed();
  so.low_watermark = 0.3;
  so.high_watermark = 0.2;
  auto i = open_index(so);
  ASSERT_FALSE(i.is_ok());
  EXPECT_NE(i.status().message().find("watermarks"), std::string::npos) << i.status().to_string();
  so = managed();
  so.reserve = 0.7;
  i = open_index(so);
  ASSERT_FALSE(i.is_ok());
  EXPECT_NE(i.status().message().find("reserve"), std::string::npos) << i.status().to_string();
  // 16 MiB of 4 MiB segments: 3 segments, the cleaner keeps 2.
  create(16u << 20, 4u << 20);
  i = open_index(managed());
  ASSERT_FALSE(i.is_ok());
  EXPECT_NE(i.status().message().find("too small for its reserve"), std::string::npos) << i.status().to_string();
  // The same pool without a background cleaner opens as before.
  EXPECT_TRUE(open_index(SpaceOptions{}).is_ok());
}

TEST_F(SpaceTest, LiveDataAtTheLimitIsRefusedWithItsReasonAndDeletesMakeRoom) {
  create(64u << 20, 2u << 20);
  open(managed());
  uint64_t n = 0;
  Result r = Result::kOk;
  for (; n < 200000; ++n) {
    r = set(0, n, 1);
    if (r != Result::kOk) break;
  }
  ASSERT_EQ(r, Result::kLiveFull) << "after " << n << " keys";
  IndexStats st = idx_->stats();
  EXPECT_GE(st.log_bytes_live + 2 * kRecord, st.live_limit_bytes) << "refused below the limit";
  EXPECT_LE(st.log_bytes_live, st.capacity_bytes);
  EXPECT_EQ(st.refused_live_full, 1u);
  EXPECT_EQ(st.refused_cleaner_behind, 0u);
  EXPECT_EQ(get(0), value_of(0, 1)) << "reads go on";
  EXPECT_EQ(set(1, n, 1), Result::kLiveFull) << "every worker is refused";
  // Deleting half the keys leaves room: writes succeed again (the cleaner
  // frees the dead space; the writer may wait for it).
  for (uint64_t i = 0; i < n; i += 2) {
    const std::string k = key_of(i);
    Op d = Op::del(k);
    ASSERT_EQ(idx_->worker(0).execute_one(d), Result::kOk);
  }
  for (uint64_t i = 0; i < n / 4; ++i) ASSERT_EQ(set(0, n + i, 1), Result::kOk) << i;
  for (uint64_t i = 1; i < n; i += 2) ASSERT_EQ(get(i), value_of(i, 1)) << i;
}

TEST_F(SpaceTest, OverwritesInASmallPoolNeverFail) {
  // Live data at half the pool, two workers overwriting their own keys: the
  // pool is written over many times, and no write may fail.
  create(64u << 20, 2u << 20);
  open(managed());
  const uint64_t keys = (32u << 20) / kRecord;
  // Each round overwrites about the live data once: 4 rounds (TSan's
  // scale) already write the pool over twice.
  const uint64_t rounds = std::max<uint64_t>(4, static_cast<uint64_t>(8 * scale()));
  std::vector<uint64_t> seq(keys, 0);
  std::atomic<uint64_t> failed{0};
  auto writer = [&](unsigned w) {
    std::vector<Op> ops(8);
    std::vector<std::string> ks(8), vs(8);
    uint64_t x = 88172645463325252ull + w;
    for (uint64_t i = w; i < keys; i += 2) failed += set(w, i, ++seq[i]) != Result::kOk;
    for (uint64_t b = 0; b < rounds * keys / 16; ++b) {  // bursts of 8, half the keys each
      std::size_t n = 0;
      for (; n < 8; ++n) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const uint64_t i = (x % (keys / 2)) * 2 + w;
        bool dup = false;
        for (std::size_t j = 0; j < n; ++j) dup |= ks[j] == key_of(i);
        if (dup) break;
        ks[n] = key_of(i);
        vs[n] = value_of(i, ++seq[i]);
        ops[n] = Op::set(ks[n], vs[n]);
      }
      idx_->worker(w).execute(std::span<Op>(ops.data(), n));
      for (std::size_t j = 0; j < n; ++j) failed += ops[j].result != Result::kOk;
    }
  };
  std::thread t0(writer, 0), t1(writer, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(failed.load(), 0u);
  idx_->TEST_stop_cleaner();  // a move in flight counts its bytes in two steps
  const IndexStats st = idx_->stats();
  EXPECT_EQ(st.refused_live_full + st.refused_cleaner_behind, 0u);
  EXPECT_GT(st.cleaner_segments_freed, 0u);
  EXPECT_GT(st.bytes_appended, 2 * st.capacity_bytes) << "the pool was not turned over";
  EXPECT_EQ(st.log_bytes_live, keys * kRecord);
  EXPECT_EQ(st.keys, keys);
  for (uint64_t i = 0; i < keys; ++i) ASSERT_EQ(get(i), value_of(i, seq[i])) << i;
  reopen(/*crash=*/true);
  for (uint64_t i = 0; i < keys; ++i) ASSERT_EQ(get(i), value_of(i, seq[i])) << "after a crash: " << i;
}

// Appends and prepends to one key (issue 17): each writes a new record with
// the whole value, so growing a value to 1 MiB in 1000-byte steps writes
// ~0.5 GB for 1 MiB live. The cleaner must reclaim the dead versions as fast
// as they are written: every op succeeds up to the value limit, and only an
// append that would pass it is refused (kTooLarge; the value is unchanged).
TEST_F(SpaceTest, AppendsToOneKeyUpToTheValueLimitNeverFail) {
  create(64u << 20, 2u << 20);
  open(managed());
  constexpr std::size_t kChunk = 1000;
  const std::string k = "append-key";
  std::string want = "x";
  Op s = Op::set(k, want);
  ASSERT_EQ(idx_->worker(0).execute_one(s), Result::kOk);
  uint64_t ops = 0;
  while (want.size() + kChunk <= kMaxValueLen) {
    const std::string piece(kChunk, static_cast<char>('a' + ops % 26));
    Op a;
    a.code = ops % 2 == 0 ? OpCode::kAppend : OpCode::kPrepend;
    a.key = k;
    a.value = piece;
    ASSERT_EQ(idx_->worker(0).execute_one(a), Result::kOk) << "op " << ops << " at value length " << want.size();
    want = ops % 2 == 0 ? want + piece : piece + want;
    ++ops;
    if (ops % 128 == 0) {
      std::string got;
      Op g = Op::get(k, &got);
      ASSERT_EQ(idx_->worker(1).execute_one(g), Result::kOk);
      ASSERT_EQ(got, want) << "after " << ops << " ops";
    }
  }
  const std::string piece(kChunk, '!');
  Op a;
  a.code = OpCode::kAppend;
  a.key = k;
  a.value = piece;
  EXPECT_EQ(idx_->worker(0).execute_one(a), Result::kTooLarge) << "an append past the value limit";
  std::string got;
  Op g = Op::get(k, &got);
  ASSERT_EQ(idx_->worker(1).execute_one(g), Result::kOk);
  EXPECT_EQ(got, want);
  EXPECT_EQ(ops, (kMaxValueLen - 1) / kChunk);
  idx_->TEST_stop_cleaner();
  const IndexStats st = idx_->stats();
  EXPECT_EQ(st.refused_live_full + st.refused_cleaner_behind, 0u);
  EXPECT_GT(st.bytes_appended, 4 * st.capacity_bytes) << "the pool was not written over";
  EXPECT_EQ(st.log_bytes_live, (24 + k.size() + want.size() + 7) / 8 * 8) << "only the last version is live";
}

// Sustained appends on two workers, each growing its own key to 1 MiB and
// then deleting it or overwriting it with a short value, round after round:
// many times the pool is appended while live data stays small, and no write
// is refused.
TEST_F(SpaceTest, SustainedAppendsWithDeletesAndOverwritesReclaimSpace) {
  create(64u << 20, 2u << 20);
  open(managed());
  constexpr std::size_t kChunk = 8192;
  const unsigned rounds = std::max(2u, static_cast<unsigned>(6 * scale()));
  std::atomic<uint64_t> failed{0}, wrong{0};
  auto writer = [&](unsigned w) {
    const std::string k = "sustained-" + std::to_string(w);
    for (unsigned r = 0; r < rounds; ++r) {
      std::string want = std::to_string(r);
      Op s = Op::set(k, want);
      failed += idx_->worker(w).execute_one(s) != Result::kOk;
      for (std::size_t i = 0; want.size() + kChunk <= kMaxValueLen; ++i) {
        const std::string piece(kChunk, static_cast<char>('a' + (i + r) % 26));
        Op a;
        a.code = i % 3 == 0 ? OpCode::kPrepend : OpCode::kAppend;
        a.key = k;
        a.value = piece;
        failed += idx_->worker(w).execute_one(a) != Result::kOk;
        want = a.code == OpCode::kPrepend ? piece + want : want + piece;
      }
      std::string got;
      Op g = Op::get(k, &got);
      wrong += idx_->worker(w).execute_one(g) != Result::kOk || got != want;
      Op end = r % 2 == 0 ? Op::del(k) : Op::set(k, "short");
      failed += idx_->worker(w).execute_one(end) != Result::kOk;
    }
  };
  std::thread t0(writer, 0), t1(writer, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
  idx_->TEST_stop_cleaner();
  const IndexStats st = idx_->stats();
  EXPECT_EQ(st.refused_live_full + st.refused_cleaner_behind, 0u);
  // Each round writes the pool over about twice (measured: 4.2x in 2 rounds,
  // FERRITE_STRESS_SCALE=0.1); at least once per round is asked.
  EXPECT_GT(st.bytes_appended, uint64_t{rounds} * st.capacity_bytes) << "the pool was not written over many times";
  // What is left: each key as the last round ended it (absent or "short").
  uint64_t live = 0;
  for (unsigned w = 0; w < 2; ++w) {
    std::string got;
    const std::string k = "sustained-" + std::to_string(w);
    Op g = Op::get(k, &got);
    const Result r = idx_->worker(w).execute_one(g);
    if ((rounds - 1) % 2 == 0) {
      EXPECT_EQ(r, Result::kNotFound) << k;
    } else {
      ASSERT_EQ(r, Result::kOk) << k;
      EXPECT_EQ(got, "short");
      live += (24 + k.size() + got.size() + 7) / 8 * 8;
    }
  }
  EXPECT_EQ(st.log_bytes_live, live);
}

TEST_F(SpaceTest, EvictionKeepsKeysThatAreReadAndDropsColdOnes) {
  create(64u << 20, 2u << 20);
  open(managed(/*evict=*/true));
  // 500 hot keys, read after every 1000 writes; a stream of new cold keys
  // three times the pool.
  constexpr uint64_t kHot = 500;
  for (uint64_t i = 0; i < kHot; ++i) ASSERT_EQ(set(0, i, 1), Result::kOk);
  const uint64_t cold = 3 * (64u << 20) / kRecord;
  for (uint64_t c = 0; c < cold; ++c) {
    ASSERT_EQ(set(0, kHot + c, 1), Result::kOk) << "evict mode refused a write, cold key " << c;
    if (c % 1000 == 0) {
      for (uint64_t i = 0; i < kHot; ++i) ASSERT_EQ(get(i), value_of(i, 1)) << "hot key " << i << " evicted";
    }
  }
  const IndexStats st0 = idx_->stats();
  EXPECT_GT(st0.evictions, cold / 2);
  EXPECT_EQ(st0.refused_live_full + st0.refused_cleaner_behind, 0u);
  // The cleaner may still be evicting down to the limit: count on a pool
  // reopened without it.
  reopen(/*crash=*/false);
  const IndexStats st = idx_->stats();
  EXPECT_LE(st.log_bytes_live, st.capacity_bytes);
  uint64_t present = 0;
  for (uint64_t c = 0; c < cold; ++c) present += get(kHot + c).empty() ? 0 : 1;
  EXPECT_EQ(st.keys, kHot + present);
  EXPECT_LT(present, cold / 2);
  // The oldest cold keys went first (FIFO hand): the first tenth is gone.
  uint64_t old_present = 0;
  for (uint64_t c = 0; c < cold / 10; ++c) old_present += get(kHot + c).empty() ? 0 : 1;
  EXPECT_EQ(old_present, 0u);
}

TEST_F(SpaceTest, EvictedKeysStayGoneAfterACrashAndARestart) {
  create(64u << 20, 2u << 20);
  open(managed(/*evict=*/true));
  const uint64_t n = 3 * (64u << 20) / 2 / kRecord;  // 150% of the pool
  for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(set(i % 2, i, 1), Result::kOk) << i;
  idx_->TEST_stop_cleaner();  // it may still be evicting down to the limit
  std::vector<bool> present(n);
  uint64_t npresent = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const std::string v = get(i);
    present[i] = !v.empty();
    npresent += present[i];
    if (present[i]) {
      ASSERT_EQ(v, value_of(i, 1)) << i;
    }
  }
  ASSERT_GT(npresent, 0u);
  ASSERT_LT(npresent, n);
  for (bool crash : {true, false}) {
    reopen(crash);
    for (uint64_t i = 0; i < n; ++i) {
      const std::string v = get(i);
      ASSERT_EQ(!v.empty(), present[i]) << (crash ? "after a crash: " : "after a restart: ") << key_of(i)
                                        << (present[i] ? " lost" : " evicted, back");
      if (present[i]) {
        ASSERT_EQ(v, value_of(i, 1)) << i;
      }
    }
    EXPECT_EQ(idx_->count(), npresent);
  }
}

}  // namespace
}  // namespace ferrite::index

namespace ferrite::index {
namespace {

// Live bytes per log segment steer the cleaner and the live limit: they
// must survive a crash, its repair, a clean close and a clean open (the
// close once saved them as 0 for segments whose tail the crash left
// unknown).
TEST_F(SpaceTest, LiveBytesSurviveCrashRepairCleanCloseAndReopen) {
  create(64u << 20, 2u << 20);
  open(SpaceOptions{});
  constexpr uint64_t kKeys = 20000;
  for (uint64_t i = 0; i < kKeys; ++i) ASSERT_EQ(set(i % 2, i, 1), Result::kOk);
  EXPECT_EQ(idx_->stats().log_bytes_live, kKeys * kRecord);
  reopen(/*crash=*/true);
  EXPECT_EQ(idx_->stats().log_bytes_live, kKeys * kRecord) << "after the crash repair";
  reopen(/*crash=*/false);
  EXPECT_EQ(idx_->stats().log_bytes_live, kKeys * kRecord) << "after a clean close of the repaired pool";
  reopen(/*crash=*/false);
  EXPECT_EQ(idx_->stats().log_bytes_live, kKeys * kRecord) << "and again";
}

// The segment table's checks (segtab.h; FERRITE_CHECK: on in every build).
// An entry is removed only by the cleaner that owns it (kSegCleaning), past
// its grace period; a removal of any other entry aborts.
TEST(LogSegTableDeathTest, RemoveOfAnEntryNotBeingCleanedAborts) {
  constexpr uint64_t kSeg = 4u << 20;
  LogSegTable t(16 * kSeg, kSeg);
  const uint32_t id = t.add(kSeg, 0, kSegSealed, 0, 0, 1);
  EXPECT_DEATH(t.remove(id), "check failed: off != 0 && .*== kSegCleaning");
  t.at(id).use.store(kSegCleaning);
  t.remove(id);
  EXPECT_EQ(t.count(), 0u);
  EXPECT_EQ(t.find(kSeg + 64), nullptr);
}

}  // namespace
}  // namespace ferrite::index
