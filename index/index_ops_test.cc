// Index: every op and edge, bursts, expiry, growth, cleaner, scan, and
// reopen (clean and crash-like) in one process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <map>
#include <optional>
#include <set>

#include "index/index.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {


std::atomic<uint32_t> g_now{1000000};
uint32_t fake_clock() { return g_now.load(); }

class IndexTest : public testing::PoolIndexTest {
 protected:
  IndexTest() : PoolIndexTest("idx") {}
  void SetUp() override { open(/*create=*/true); }
  // The index again; with create, over a fresh pool; else over pool_, or
  // the pool file reopened if pool_ is closed.
  void open(bool create, std::size_t size = 256u << 20, std::size_t seg = 2u << 20) {
    idx_.reset();
    if (create) {
      ASSERT_NO_FATAL_FAILURE(create_pool(size, seg));
    } else if (!pool_) {
      ASSERT_NO_FATAL_FAILURE(open_pool());
    }
    open_index({.workers = 2, .clock = fake_clock});
  }
  void reopen_pool() {
    close_all();
    open(false);
  }
  Worker& w() { return idx_->worker(0); }
  Result run(Op op) { return w().execute_one(op); }
  Result set(std::string_view k, std::string_view v, uint32_t flags = 0, uint32_t exp = 0) {
    return run(Op::set(k, v, flags, exp));
  }
  std::string get(std::string_view k, Result* r = nullptr, uint32_t* flags = nullptr, uint64_t* ver = nullptr) {
    std::string out;
    Op o = Op::get(k, &out);
    Result res = w().execute_one(o);
    if (r) *r = res;
    if (flags) *flags = o.out_flags;
    if (ver) *ver = o.out_version;
    return res == Result::kOk ? out : "<" + std::string(result_name(res)) + ">";
  }
  Op make(OpCode c, std::string_view k, std::string_view v = {}) {
    Op o;
    o.code = c;
    o.key = k;
    o.value = v;
    return o;
  }
};

TEST_F(IndexTest, SetGetOverwriteFlags) {
  EXPECT_EQ(get("a"), "<not found>");
  EXPECT_EQ(set("a", "1", 42), Result::kOk);
  uint32_t flags = 0;
  EXPECT_EQ(get("a", nullptr, &flags), "1");
  EXPECT_EQ(flags, 42u);
  EXPECT_EQ(set("a", "two"), Result::kOk);
  EXPECT_EQ(get("a"), "two");
  EXPECT_EQ(idx_->count(), 1u);
}

TEST_F(IndexTest, AddReplace) {
  EXPECT_EQ(run(make(OpCode::kReplace, "k", "x")), Result::kNotStored);
  EXPECT_EQ(run(make(OpCode::kAdd, "k", "1")), Result::kOk);
  EXPECT_EQ(run(make(OpCode::kAdd, "k", "2")), Result::kExists);
  EXPECT_EQ(get("k"), "1");
  EXPECT_EQ(run(make(OpCode::kReplace, "k", "3")), Result::kOk);
  EXPECT_EQ(get("k"), "3");
}

TEST_F(IndexTest, AppendPrependKeepFlags) {
  EXPECT_EQ(run(make(OpCode::kAppend, "k", "x")), Result::kNotStored);
  EXPECT_EQ(run(make(OpCode::kPrepend, "k", "x")), Result::kNotStored);
  ASSERT_EQ(set("k", "mid", 9), Result::kOk);
  EXPECT_EQ(run(make(OpCode::kAppend, "k", ">>")), Result::kOk);
  EXPECT_EQ(run(make(OpCode::kPrepend, "k", "<<")), Result::kOk);
  uint32_t flags = 0;
  EXPECT_EQ(get("k", nullptr, &flags), "<<mid>>");
  EXPECT_EQ(flags, 9u);
  ASSERT_EQ(set("big", std::string(kMaxValueLen, 'x')), Result::kOk);
  EXPECT_EQ(run(make(OpCode::kAppend, "big", "y")), Result::kTooLarge);
}

TEST_F(IndexTest, CasVersions) {
  Op c = make(OpCode::kCas, "k", "v");
  c.cas = 1;
  EXPECT_EQ(run(c), Result::kNotFound);
  ASSERT_EQ(set("k", "1"), Result::kOk);
  uint64_t v1 = 0;
  get("k", nullptr, nullptr, &v1);
  ASSERT_EQ(set("k", "2"), Result::kOk);
  uint64_t v2 = 0;
  get("k", nullptr, nullptr, &v2);
  EXPECT_NE(v1, v2) << "every write bumps the version";
  c.cas = v1;
  EXPECT_EQ(run(c), Result::kCasMismatch);
  c.cas = v2;
  EXPECT_EQ(w().execute_one(c), Result::kOk);
  EXPECT_EQ(get("k"), "v");
  EXPECT_NE(c.out_version, v2);
}

// Op::cas != 0 on the other writes: match writes, mismatch (kCasMismatch,
// out_version = current) and absent (kNotFound) leave the key as it was.
TEST_F(IndexTest, ExpectedVersionOnEveryWrite) {
  struct Case {
    OpCode code;
    std::string_view arg;
    std::string_view after;  // value after a matching op ("" = deleted)
  };
  const Case cases[] = {
      {OpCode::kSet, "S", "S"},          {OpCode::kReplace, "R", "R"}, {OpCode::kAppend, "+", "10+"},
      {OpCode::kPrepend, "-", "-10"},    {OpCode::kIncr, "", "15"},    {OpCode::kDecr, "", "5 "},
      {OpCode::kTouch, "", "10"},        {OpCode::kDel, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.code));
    (void)run(make(OpCode::kDel, "k"));
    Op absent = make(c.code, "k", c.arg);
    absent.delta = 5;
    absent.cas = 12345;
    EXPECT_EQ(run(absent), Result::kNotFound);
    EXPECT_EQ(get("k"), "<not found>");
    ASSERT_EQ(set("k", "10"), Result::kOk);
    uint64_t v = 0;
    get("k", nullptr, nullptr, &v);
    Op bad = absent;
    bad.cas = v + 1;
    EXPECT_EQ(w().execute_one(bad), Result::kCasMismatch);
    EXPECT_EQ(bad.out_version, v);
    uint64_t v_after = 0;
    EXPECT_EQ(get("k", nullptr, nullptr, &v_after), "10");
    EXPECT_EQ(v_after, v) << "a mismatch writes nothing";
    Op good = absent;
    good.cas = v;
    good.exptime = c.code == OpCode::kTouch ? 2000000 : 0;
    EXPECT_EQ(w().execute_one(good), Result::kOk);
    EXPECT_EQ(get("k"), c.after.empty() ? "<not found>" : std::string(c.after));
    if (c.code != OpCode::kDel) {
      EXPECT_EQ(get("k", nullptr, nullptr, &v_after), std::string(c.after));
      EXPECT_EQ(v_after, good.out_version);
      EXPECT_NE(v_after, v);
      Op again = good;  // the old version no longer matches
      EXPECT_EQ(w().execute_one(again), Result::kCasMismatch);
    }
  }
  // kAdd ignores cas: it writes only when there is nothing to compare.
  (void)run(make(OpCode::kDel, "k"));
  Op add = make(OpCode::kAdd, "k", "a");
  add.cas = 777;
  EXPECT_EQ(run(add), Result::kOk);
  EXPECT_EQ(run(add), Result::kExists);
  // An op later in the same burst compares against the earlier one's write.
  uint64_t v = 0;
  get("k", nullptr, nullptr, &v);
  Op burst[2] = {make(OpCode::kAppend, "k", "b"), make(OpCode::kAppend, "k", "c")};
  burst[0].cas = v;
  burst[1].cas = v;
  w().execute(burst);
  EXPECT_EQ(burst[0].result, Result::kOk);
  EXPECT_EQ(burst[1].result, Result::kCasMismatch);
  EXPECT_EQ(burst[1].out_version, burst[0].out_version);
  EXPECT_EQ(get("k"), "ab");
}

TEST_F(IndexTest, IncrDecr) {
  Op i = make(OpCode::kIncr, "n");
  i.delta = 1;
  EXPECT_EQ(run(i), Result::kNotFound);
  ASSERT_EQ(set("n", "99"), Result::kOk);
  ASSERT_EQ(w().execute_one(i), Result::kOk);
  EXPECT_EQ(i.out_number, 100u);
  EXPECT_EQ(get("n"), "100");
  ASSERT_EQ(set("n", "18446744073709551615"), Result::kOk);
  ASSERT_EQ(w().execute_one(i), Result::kOk);
  // memcached 1.6.18 keeps the value's length when the number is not longer,
  // padding with spaces; the reply has no padding.
  EXPECT_EQ(get("n"), "0                   ") << "incr wraps at 2^64";
  Op d = make(OpCode::kDecr, "n");
  d.delta = 5;
  ASSERT_EQ(set("n", "3"), Result::kOk);
  ASSERT_EQ(w().execute_one(d), Result::kOk);
  EXPECT_EQ(get("n"), "0") << "decr floors at 0";
  ASSERT_EQ(set("n", "12  "), Result::kOk);
  ASSERT_EQ(w().execute_one(d), Result::kOk);
  EXPECT_EQ(d.out_number, 7u);
  EXPECT_EQ(get("n"), "7   ") << "trailing spaces allowed, length kept";
  d.delta = 1;
  ASSERT_EQ(set("n", "100"), Result::kOk);
  ASSERT_EQ(w().execute_one(d), Result::kOk);
  EXPECT_EQ(d.out_number, 99u);
  EXPECT_EQ(get("n"), "99 ");
  ASSERT_EQ(w().execute_one(i), Result::kOk);
  EXPECT_EQ(get("n"), "100");
  i.delta = 1000;
  ASSERT_EQ(w().execute_one(i), Result::kOk);
  EXPECT_EQ(get("n"), "1100") << "a longer number takes its own length";
  i.delta = 1;
  // Accepted as memcached's safe_strtoull does: leading white space, a sign,
  // anything after a white space; "-0" is 0.
  const std::pair<const char*, const char*> good[] = {
      {"  5", "6  "}, {" 5 6", "6   "}, {"5 ", "6 "}, {"+5", "6 "}, {"\t7", "8 "}, {"-0", "1 "},
      {"0000000000000000000000005", "6                        "},
  };
  for (const auto& [before, after] : good) {
    ASSERT_EQ(set("n", before), Result::kOk);
    EXPECT_EQ(run(i), Result::kOk) << before;
    EXPECT_EQ(get("n"), after) << before;
  }
  for (const char* bad : {"abc", "", "   ", "-1", "-5", "1x", "+5a", "+-5", "18446744073709551616", "123456789012345678901"}) {
    ASSERT_EQ(set("n", bad), Result::kOk);
    EXPECT_EQ(run(i), Result::kNotNumeric) << bad;
  }
}

TEST_F(IndexTest, DeleteAndReAdd) {
  EXPECT_EQ(run(Op::del("k")), Result::kNotFound);
  ASSERT_EQ(set("k", "1"), Result::kOk);
  EXPECT_EQ(idx_->count(), 1u);
  EXPECT_EQ(run(Op::del("k")), Result::kOk);
  EXPECT_EQ(get("k"), "<not found>");
  EXPECT_EQ(run(Op::del("k")), Result::kNotFound);
  EXPECT_EQ(idx_->count(), 0u);
  EXPECT_EQ(run(make(OpCode::kAdd, "k", "again")), Result::kOk);
  EXPECT_EQ(get("k"), "again");
  EXPECT_EQ(idx_->count(), 1u);
}

TEST_F(IndexTest, LimitsAndEdges) {
  EXPECT_EQ(set("", "v"), Result::kBadKey);
  EXPECT_EQ(set(std::string(250, 'k'), "v"), Result::kOk);
  EXPECT_EQ(get(std::string(250, 'k')), "v");
  EXPECT_EQ(set(std::string(251, 'k'), "v"), Result::kTooLarge);
  EXPECT_EQ(set("empty", ""), Result::kOk);
  Result r;
  EXPECT_EQ(get("empty", &r), "");
  EXPECT_EQ(r, Result::kOk);
  std::string mib(kMaxValueLen, 'm');
  mib[12345] = 'X';
  EXPECT_EQ(set("mib", mib), Result::kOk);
  EXPECT_TRUE(get("mib") == mib) << "1 MiB value read back differs";
  EXPECT_EQ(set("over", std::string(kMaxValueLen + 1, 'o')), Result::kTooLarge);
  std::string bin("a\0b\xff", 4);
  EXPECT_EQ(set(bin, bin), Result::kOk);
  EXPECT_EQ(get(bin), bin) << "keys and values are bytes";
}

TEST_F(IndexTest, ExpiryTouchAndSweep) {
  const uint32_t t0 = g_now.load();
  ASSERT_EQ(set("e", "v", 0, t0 + 10), Result::kOk);
  EXPECT_EQ(get("e"), "v");
  g_now = t0 + 10;
  EXPECT_EQ(get("e"), "<not found>") << "lazy expiry on read";
  EXPECT_EQ(run(make(OpCode::kAdd, "e", "new")), Result::kOk) << "add over an expired key";
  Op t = make(OpCode::kTouch, "e");
  t.exptime = t0 + 20;
  EXPECT_EQ(run(t), Result::kOk);
  g_now = t0 + 15;
  EXPECT_EQ(get("e"), "new");
  g_now = t0 + 25;
  EXPECT_EQ(get("e"), "<not found>");
  EXPECT_EQ(run(t), Result::kNotFound);
  // The sweep turns expired keys into tombstones and fixes the count.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(set("s" + std::to_string(i), "v", 0, g_now + 5), Result::kOk);
  const uint64_t before = idx_->count();
  g_now = g_now + 6;
  uint64_t swept = 0;
  for (int i = 0; i < 100 && swept < 101; ++i) swept += idx_->sweep_expired(1 << 16);
  EXPECT_EQ(swept, 101u) << "100 keys + e";
  EXPECT_EQ(idx_->count(), before - 101);
  g_now = t0;
}

TEST_F(IndexTest, BurstSeesItsOwnEarlierWrites) {
  std::string o1, o2, o3;
  Op ops[6] = {Op::set("b", "1"), Op::get("b", &o1), make(OpCode::kAppend, "b", "2"),
               Op::get("b", &o2), Op::del("b"),       Op::get("b", &o3)};
  w().execute(ops);
  EXPECT_EQ(ops[0].result, Result::kOk);
  EXPECT_EQ(o1, "1");
  EXPECT_EQ(o2, "12");
  EXPECT_EQ(ops[4].result, Result::kOk);
  EXPECT_EQ(ops[5].result, Result::kNotFound);
}

TEST_F(IndexTest, GrowthKeepsEveryKey) {
  const int n = 300000;
  std::vector<std::string> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = "grow-" + std::to_string(i);
  std::vector<Op> ops(32);
  for (int i = 0; i < n; i += 32) {
    int m = std::min(32, n - i);
    for (int j = 0; j < m; ++j) ops[j] = Op::set(keys[i + j], keys[i + j]);
    w().execute(std::span<Op>(ops.data(), m));
    for (int j = 0; j < m; ++j) ASSERT_EQ(ops[j].result, Result::kOk);
  }
  IndexStats st = idx_->stats();
  EXPECT_GT(st.splits, 100u);
  EXPECT_GE(st.global_depth, 7u);
  EXPECT_EQ(idx_->count(), static_cast<uint64_t>(n));
  for (int i = 0; i < n; i += 7) ASSERT_EQ(get(keys[i]), keys[i]);
  // scan: each key exactly once.
  std::set<std::string> seen;
  uint64_t visits = 0;
  ASSERT_TRUE(idx_->scan([&](std::string_view k, std::string_view v, uint32_t, uint32_t, uint64_t) {
    ++visits;
    seen.emplace(k);
    EXPECT_EQ(k, v);
  }).is_ok());
  EXPECT_EQ(visits, static_cast<uint64_t>(n));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
}

TEST_F(IndexTest, PagedScanVisitsEveryKeyOnce) {
  const int n = 20000;
  for (int i = 0; i < n; ++i) ASSERT_EQ(set("p" + std::to_string(i), std::string(i % 50, 'x')), Result::kOk);
  for (std::size_t page : {std::size_t{1}, std::size_t{1000}, std::size_t{64} << 10}) {
    std::map<std::string, int> seen;
    std::optional<uint64_t> cursor = 0;
    int pages = 0;
    while (cursor.has_value()) {
      cursor = idx_->scan_page(*cursor, page, [&](std::string_view k, std::string_view v, uint32_t, uint32_t, uint64_t) {
        seen[std::string(k)]++;
        EXPECT_EQ(v.size(), static_cast<std::size_t>(std::stoi(std::string(k.substr(1))) % 50));
      });
      ASSERT_LT(++pages, 10 * n) << "the scan must end";
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(n)) << "page " << page;
    for (auto& [k, c] : seen) ASSERT_EQ(c, 1) << k;
    if (page == 1) {
      EXPECT_GE(pages, n) << "a tiny budget still moves one key per page";
    }
  }
}

TEST_F(IndexTest, ScanSkipsDeletedAndExpired) {
  ASSERT_EQ(set("live", "1"), Result::kOk);
  ASSERT_EQ(set("gone", "1"), Result::kOk);
  ASSERT_EQ(run(Op::del("gone")), Result::kOk);
  ASSERT_EQ(set("old", "1", 0, g_now - 1), Result::kOk);
  std::vector<std::string> keys;
  ASSERT_TRUE(idx_->scan([&](std::string_view k, std::string_view, uint32_t, uint32_t, uint64_t) { keys.emplace_back(k); }).is_ok());
  EXPECT_THAT(keys, ::testing::ElementsAre("live"));
}

TEST_F(IndexTest, ReopenAfterCleanCloseKeepsEverything) {
  std::map<std::string, std::pair<uint32_t, uint64_t>> meta;
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "c" + std::to_string(i);
    ASSERT_EQ(set(k, k + "-v", static_cast<uint32_t>(i)), Result::kOk);
  }
  for (int i = 0; i < 5000; i += 3) ASSERT_EQ(run(Op::del("c" + std::to_string(i))), Result::kOk);
  for (int i = 0; i < 5000; ++i) {
    uint32_t f;
    uint64_t v;
    get("c" + std::to_string(i), nullptr, &f, &v);
    meta["c" + std::to_string(i)] = {f, v};
  }
  const uint64_t count = idx_->count();
  reopen_pool();
  EXPECT_EQ(idx_->count(), count);
  for (int i = 0; i < 5000; ++i) {
    const std::string k = "c" + std::to_string(i);
    Result r;
    uint32_t f;
    uint64_t v;
    std::string got = get(k, &r, &f, &v);
    if (i % 3 == 0) {
      EXPECT_EQ(r, Result::kNotFound) << k;
    } else {
      ASSERT_EQ(got, k + "-v");
      EXPECT_EQ(f, meta[k].first);
      EXPECT_EQ(v, meta[k].second) << "versions survive";
    }
  }
  ASSERT_EQ(set("after", "reopen"), Result::kOk) << "appends resume at the saved tail";
  EXPECT_EQ(get("after"), "reopen");
}

TEST_F(IndexTest, ReopenAfterAbandonKeepsAcknowledgedWritesAndRecounts) {
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(set("a" + std::to_string(i), std::to_string(i)), Result::kOk);
  for (int i = 0; i < 20000; i += 2) ASSERT_EQ(run(Op::del("a" + std::to_string(i))), Result::kOk);
  idx_->TEST_abandon();  // no clean close: counters and tails are not saved
  reopen_pool();
  idx_->wait_repaired();  // count() is exact once crash repair is done (repair.cc)
  EXPECT_EQ(idx_->count(), 10000u) << "recounted from the table";
  for (int i = 0; i < 20000; ++i) {
    Result r;
    std::string got = get("a" + std::to_string(i), &r);
    if (i % 2 == 0) {
      EXPECT_EQ(r, Result::kNotFound);
    } else {
      ASSERT_EQ(got, std::to_string(i));
    }
  }
  ASSERT_EQ(set("fresh", "segment"), Result::kOk) << "writes go to a fresh log segment";
  EXPECT_EQ(get("fresh"), "segment");
}

TEST_F(IndexTest, FullPoolRefusesWritesServesReadsAndDeletesThenRecovers) {
  open(true, 40u << 20, 2u << 20);
  std::string v(1024, 'f');
  int stored = 0;
  Result r = Result::kOk;
  for (; stored < 100000; ++stored) {
    r = set("full-" + std::to_string(stored), v);
    if (r != Result::kOk) break;
  }
  EXPECT_EQ(r, Result::kNoSpace);
  ASSERT_GT(stored, 1000);
  EXPECT_TRUE(get("full-0") == v) << "reads go on";
  EXPECT_EQ(set("another", v), Result::kNoSpace) << "writes keep failing cleanly";
  for (int i = 0; i < stored; ++i) ASSERT_EQ(run(Op::del("full-" + std::to_string(i))), Result::kOk) << "deletes need no space";
  CleanStats cs = idx_->clean({.max_live_ratio = 1.0, .max_segments = 1000});
  EXPECT_GT(cs.segments_cleaned, 10u);
  EXPECT_EQ(set("another", v), Result::kOk) << "space recovered";
  EXPECT_TRUE(get("another") == v);
  reopen_pool();
  EXPECT_TRUE(get("another") == v);
  EXPECT_EQ(get("full-5"), "<not found>");
}

TEST_F(IndexTest, CleanerMovesLiveRecordsAndFreesSegments) {
  std::string v(900, 'c');
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3000; ++i) ASSERT_EQ(set("cl-" + std::to_string(i), v + std::to_string(round)), Result::kOk);
  }
  IndexStats before = idx_->stats();
  CleanStats cs = idx_->clean({.max_live_ratio = 0.5, .max_segments = 1000});
  IndexStats after = idx_->stats();
  EXPECT_GT(cs.segments_cleaned, 0u);
  EXPECT_LT(after.log_segments, before.log_segments);
  EXPECT_LT(after.log_bytes_dead, before.log_bytes_dead);
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(get("cl-" + std::to_string(i)), v + "3");
  reopen_pool();
  for (int i = 0; i < 3000; i += 11) ASSERT_TRUE(get("cl-" + std::to_string(i)) == v + "3") << i;
}

TEST_F(IndexTest, InvalidateMarksStaleAndWritesKeepOrClearIt) {
  auto stale_of = [&](std::string_view k, uint32_t* exp = nullptr) {
    std::string out;
    Op o = Op::get(k, &out);
    EXPECT_EQ(w().execute_one(o), Result::kOk) << k;
    if (exp) *exp = o.out_exptime;
    return o.out_stale;
  };
  const uint32_t t0 = g_now.load();
  ASSERT_EQ(set("s", "12", 7, t0 + 100), Result::kOk);
  uint64_t v0 = 0;
  get("s", nullptr, nullptr, &v0);
  EXPECT_FALSE(stale_of("s"));
  EXPECT_EQ(pool_->root()->incompat_features & pmem::kIncompatStaleRecords, 0u);

  Op inv = make(OpCode::kInvalidate, "s");
  ASSERT_EQ(w().execute_one(inv), Result::kOk);
  EXPECT_TRUE(inv.out_stale);
  EXPECT_EQ(inv.out_prev_version, v0);
  EXPECT_NE(inv.out_version, v0);
  EXPECT_NE(pool_->root()->incompat_features & pmem::kIncompatStaleRecords, 0u) << "bit durable before the record";
  uint32_t flags = 0, exp = 0;
  EXPECT_EQ(get("s", nullptr, &flags), "12");
  EXPECT_EQ(flags, 7u);
  EXPECT_TRUE(stale_of("s", &exp));
  EXPECT_EQ(exp, t0 + 100) << "expiry kept without set_exptime";

  Op inv2 = make(OpCode::kInvalidate, "s");
  inv2.set_exptime = true;
  inv2.exptime = t0 + 5;
  inv2.cas = inv.out_version + 1;
  EXPECT_EQ(w().execute_one(inv2), Result::kCasMismatch);
  inv2.cas = inv.out_version;
  ASSERT_EQ(w().execute_one(inv2), Result::kOk);
  EXPECT_TRUE(stale_of("s", &exp));
  EXPECT_EQ(exp, t0 + 5);
  EXPECT_EQ(run(make(OpCode::kInvalidate, "nope")), Result::kNotFound);

  // Kept by touch and by an incr that fits the old length (memcached updates
  // those in place); cleared by a longer number, append and set.
  ASSERT_EQ(run(Op::touch("s", t0 + 50)), Result::kOk);
  EXPECT_TRUE(stale_of("s"));
  Op inc = make(OpCode::kIncr, "s");
  inc.delta = 80;
  ASSERT_EQ(run(inc), Result::kOk);
  EXPECT_EQ(get("s"), "92");
  EXPECT_TRUE(stale_of("s"));
  inc.delta = 10;
  ASSERT_EQ(run(inc), Result::kOk);
  EXPECT_EQ(get("s"), "102");
  EXPECT_FALSE(stale_of("s"));
  ASSERT_EQ(run(make(OpCode::kInvalidate, "s")), Result::kOk);
  ASSERT_EQ(run(make(OpCode::kAppend, "s", "x")), Result::kOk);
  EXPECT_FALSE(stale_of("s"));
  ASSERT_EQ(run(make(OpCode::kInvalidate, "s")), Result::kOk);
  ASSERT_EQ(set("s", "v"), Result::kOk);
  EXPECT_FALSE(stale_of("s"));
}

TEST_F(IndexTest, CasStaleIfOlderStoresAStaleValue) {
  const uint32_t t0 = g_now.load();
  ASSERT_EQ(set("c", "old", 1, t0 + 100), Result::kOk);
  uint64_t v = 0;
  get("c", nullptr, nullptr, &v);
  Op c = make(OpCode::kCas, "c", "new");
  c.flags = 9;
  c.exptime = t0 + 7;
  c.cas = v - 1;  // older
  EXPECT_EQ(w().execute_one(c), Result::kCasMismatch) << "without stale_if_older";
  c.stale_if_older = true;
  c.cas = v + 1;  // newer: a mismatch still
  EXPECT_EQ(w().execute_one(c), Result::kCasMismatch);
  c.cas = v - 1;
  ASSERT_EQ(w().execute_one(c), Result::kOk);
  EXPECT_TRUE(c.out_stale);
  EXPECT_EQ(c.out_prev_version, v);
  std::string out;
  Op g = Op::get("c", &out);
  ASSERT_EQ(w().execute_one(g), Result::kOk);
  EXPECT_EQ(out, "new");
  EXPECT_EQ(g.out_flags, 9u);
  EXPECT_EQ(g.out_exptime, t0 + 100) << "the current expiry is kept";
  EXPECT_TRUE(g.out_stale);
  // The matching version is an ordinary cas: a fresh value.
  c.cas = g.out_version;
  c.value = "cur";
  ASSERT_EQ(w().execute_one(c), Result::kOk);
  EXPECT_FALSE(c.out_stale);
  ASSERT_EQ(w().execute_one(g), Result::kOk);
  EXPECT_FALSE(g.out_stale);
  EXPECT_EQ(g.out_exptime, t0 + 7);
}

TEST_F(IndexTest, CleanerAndReopenKeepStaleRecordsStale) {
  std::string v(900, 'c');
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3000; ++i) ASSERT_EQ(set("st-" + std::to_string(i), v + std::to_string(round)), Result::kOk);
  }
  for (int i = 0; i < 3000; i += 3) {
    const std::string k = "st-" + std::to_string(i);
    ASSERT_EQ(run(make(OpCode::kInvalidate, k)), Result::kOk);
  }
  CleanStats cs = idx_->clean({.max_live_ratio = 0.5, .max_segments = 1000});
  EXPECT_GT(cs.segments_cleaned, 0u);
  auto check = [&] {
    for (int i = 0; i < 3000; ++i) {
      const std::string k = "st-" + std::to_string(i);
      std::string out;
      Op g = Op::get(k, &out);
      ASSERT_EQ(w().execute_one(g), Result::kOk) << k;
      ASSERT_EQ(out, v + "3");
      ASSERT_EQ(g.out_stale, i % 3 == 0) << k;
    }
  };
  check();
  reopen_pool();
  check();
}

}  // namespace
}  // namespace ferrite::index
