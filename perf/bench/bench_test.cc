// Unit tests of ferrite-bench's pieces: the Zipf and uniform key choice,
// the Poisson schedule, key formatting, memcached UDP requests and reply
// parsing (the histogram and the frame header are tested in common/ and
// proto/), the per-second timeline, CSV/JSON quoting and
// the hit ratio.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>

#include "perf/bench/memcache_udp.h"
#include "perf/bench/runner.h"
#include "perf/bench/timeline.h"
#include "perf/bench/workload.h"

namespace ferrite::bench {
namespace {

// ---- keys ----

TEST(Zipf, FrequenciesFollowTheLaw) {
  const uint64_t n = 1000;
  const double theta = 0.99;
  Zipf z(n, theta);
  double total = 0;
  for (uint64_t i = 0; i < n; ++i) total += z.probability(i);
  EXPECT_NEAR(total, 1.0, 1e-9);
  std::mt19937_64 rng(3);
  const int draws = 2000000;
  std::vector<uint64_t> cnt(n, 0);
  for (int i = 0; i < draws; ++i) {
    const uint64_t k = z.next(rng);
    ASSERT_LT(k, n);
    ++cnt[k];
  }
  // The head ranks (most of the mass) within 5 standard deviations.
  for (uint64_t i = 0; i < 20; ++i) {
    const double p = z.probability(i);
    const double sd = std::sqrt(draws * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(cnt[i]), draws * p, 5 * sd) << "rank " << i;
  }
  // Rank 0 against rank 1: 2^theta.
  EXPECT_NEAR(static_cast<double>(cnt[0]) / static_cast<double>(cnt[1]), std::pow(2.0, theta), 0.05);
  // Tail (ranks 100..999) as a whole, within 1%.
  double tail_p = 0;
  uint64_t tail_n = 0;
  for (uint64_t i = 100; i < n; ++i) {
    tail_p += z.probability(i);
    tail_n += cnt[i];
  }
  EXPECT_NEAR(static_cast<double>(tail_n) / draws, tail_p, 0.01 * tail_p);
}

TEST(Zipf, EdgesAndArguments) {
  std::mt19937_64 rng(9);
  Zipf one(1, 0.5);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(one.next(rng), 0u);
  Zipf z(100000, 0.9);
  uint64_t lo = 0, hi = 0;
  for (int i = 0; i < 1000000; ++i) {
    const uint64_t k = z.next(rng);
    ASSERT_LT(k, 100000u);
    lo += k < 10;
    hi += k >= 99990;
  }
  // Ranks 1..10 against the last ten: (100000/10)^0.9-ish times as likely.
  EXPECT_GT(lo, 100 * hi);
  EXPECT_GT(hi, 0u);  // the tail is reached
  EXPECT_THROW(Zipf(10, 1.0), std::invalid_argument);
  EXPECT_THROW(Zipf(10, 0.0), std::invalid_argument);
  EXPECT_THROW(Zipf(0, 0.5), std::invalid_argument);
}

TEST(KeyChooser, UniformCoversEveryKeyEvenly) {
  KeyChooser kc(100, 0, 4);
  std::vector<uint64_t> cnt(100, 0);
  const int draws = 1000000;
  for (int i = 0; i < draws; ++i) ++cnt[kc.next()];
  const double p = 0.01, sd = std::sqrt(draws * p * (1 - p));
  for (uint64_t c : cnt) EXPECT_NEAR(static_cast<double>(c), draws * p, 5 * sd);
}

TEST(KeyChooser, ZipfIsSkewed) {
  KeyChooser kc(10000, 0.99, 5);
  uint64_t zero = 0;
  for (int i = 0; i < 100000; ++i) zero += kc.next() == 0;
  EXPECT_GT(zero, 5000u);  // ~9.6% under Zipf 0.99 over 10k keys; 0.01% if uniform
}

TEST(FormatKey, FixedWidthAndDistinct) {
  char b[16];
  format_key(42, b, sizeof(b));
  EXPECT_EQ(std::string(b, sizeof(b)), "k000000000000042");
  std::set<std::string> seen;
  char k[8];
  for (uint64_t i = 0; i < 100000; ++i) {
    format_key(i, k, sizeof(k));
    seen.insert(std::string(k, sizeof(k)));
  }
  EXPECT_EQ(seen.size(), 100000u);
}

// ---- Poisson schedule ----

TEST(Poisson, GapsAreExponentialAtTheRate) {
  const double rate = 100000;  // per second: mean gap 10 us
  PoissonSchedule s(rate, 6);
  const int n = 400000;
  double prev = 0, sum = 0, sum2 = 0;
  std::map<uint64_t, uint64_t> per_ms;
  for (int i = 0; i < n; ++i) {
    const double t = s.next();
    ASSERT_GT(t, prev);
    const double g = t - prev;
    sum += g;
    sum2 += g * g;
    ++per_ms[static_cast<uint64_t>(t / 1e6)];
    prev = t;
  }
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 1e9 / rate, 0.01 * 1e9 / rate);
  EXPECT_NEAR(std::sqrt(var) / mean, 1.0, 0.02);  // exponential: CV = 1
  // Counts per 1 ms window: Poisson, so variance / mean ~ 1 (index of dispersion).
  per_ms.erase(std::prev(per_ms.end()));  // the last window is partial
  double cm = 0, cv = 0;
  for (auto& [w, c] : per_ms) cm += static_cast<double>(c);
  cm /= static_cast<double>(per_ms.size());
  for (auto& [w, c] : per_ms) cv += (static_cast<double>(c) - cm) * (static_cast<double>(c) - cm);
  cv /= static_cast<double>(per_ms.size());
  EXPECT_NEAR(cm, 100.0, 2.0);
  EXPECT_NEAR(cv / cm, 1.0, 0.15);
}

// ---- memcached UDP ----

TEST(MemcacheUdp, RequestsAreExactBytes) {
  std::vector<uint8_t> out;
  mc::append_get(&out, 0xabcd, "key1");
  EXPECT_EQ(std::string(out.begin(), out.end()), std::string("\xab\xcd\0\0\0\x01\0\0get key1\r\n", 18));
  out.clear();
  mc::append_set(&out, 7, "k", "hello", 3, 60);
  EXPECT_EQ(std::string(out.begin(), out.end()), std::string("\0\x07\0\0\0\x01\0\0set k 3 60 5\r\nhello\r\n", 29));
}

TEST(MemcacheUdp, ParsesEveryReplyKind) {
  mc::Reply r;
  EXPECT_EQ(mc::parse_reply("VALUE k1 7 5\r\nhello\r\nEND\r\n", &r), mc::ReplyKind::kHit);
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(r.flags, 7u);
  EXPECT_EQ(mc::parse_reply("VALUE k1 0 5 991\r\nhello\r\nEND\r\n", &r), mc::ReplyKind::kHit);  // gets: cas
  // The value is taken by its byte count, whatever it contains.
  EXPECT_EQ(mc::parse_reply(std::string_view("VALUE k 0 7\r\n\r\nEND\r\n\r\nEND\r\n"), &r), mc::ReplyKind::kHit);
  EXPECT_EQ(r.value, "\r\nEND\r\n");
  EXPECT_EQ(mc::parse_reply("END\r\n", &r), mc::ReplyKind::kMiss);
  EXPECT_EQ(mc::parse_reply("STORED\r\n", &r), mc::ReplyKind::kStored);
  EXPECT_EQ(mc::parse_reply("NOT_STORED\r\n", &r), mc::ReplyKind::kNotStored);
  EXPECT_EQ(mc::parse_reply("ERROR\r\n", &r), mc::ReplyKind::kError);
  EXPECT_EQ(mc::parse_reply("SERVER_ERROR out of memory\r\n", &r), mc::ReplyKind::kError);
  EXPECT_EQ(mc::parse_reply("CLIENT_ERROR bad data chunk\r\n", &r), mc::ReplyKind::kError);
  for (const char* bad : {"VALUE k x 5\r\nhello\r\nEND\r\n", "VALUE k 0 5\r\nhelloXXEND\r\n", "END\r\nmore",
                          "hello\r\n", "VALUE  0 5\r\nhello\r\nEND\r\n", "VALUE k 0 5 zz\r\nhello\r\nEND\r\n",
                          "STORED\r\nSTORED\r\n", "VALUE k 0\r\n", "X"}) {
    EXPECT_EQ(mc::parse_reply(bad, &r), mc::ReplyKind::kMalformed) << bad;
  }
}

TEST(MemcacheUdp, EveryProperPrefixIsIncomplete) {
  mc::Reply r;
  for (std::string full : {"VALUE key:1 0 5\r\nhello\r\nEND\r\n", "END\r\n", "STORED\r\n", "NOT_STORED\r\n"}) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      EXPECT_EQ(mc::parse_reply(std::string_view(full).substr(0, n), &r), mc::ReplyKind::kIncomplete)
          << full << " cut at " << n;
    }
  }
}

TEST(MemcacheUdp, AssemblerOrdersDatagramsAndRejectsOddOnes) {
  mc::ReplyAssembler a;
  auto bytes = [](std::string_view s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  EXPECT_FALSE(a.add({9, 2, 3, 0}, bytes("END\r\n")));
  EXPECT_FALSE(a.add({9, 2, 3, 0}, bytes("END\r\n")));  // duplicate
  EXPECT_FALSE(a.add({9, 1, 4, 0}, bytes("x")));        // count disagrees
  EXPECT_EQ(a.rejected(), 2u);
  EXPECT_FALSE(a.add({9, 0, 3, 0}, bytes("VALUE k 0 5\r\nhel")));
  ASSERT_TRUE(a.add({9, 1, 3, 0}, bytes("lo\r\n")));
  EXPECT_EQ(a.text(), "VALUE k 0 5\r\nhello\r\nEND\r\n");
  mc::Reply r;
  EXPECT_EQ(mc::parse_reply(a.text(), &r), mc::ReplyKind::kHit);
  EXPECT_EQ(r.value, "hello");
  a.reset();
  EXPECT_FALSE(a.add({1, 0, mc::kMaxReplyDatagrams + 1, 0}, bytes("x")));  // more than any reply needs
  EXPECT_EQ(a.rejected(), 3u);
  EXPECT_TRUE(a.add({1, 0, 1, 0}, bytes("STORED\r\n")));
  EXPECT_EQ(a.text(), "STORED\r\n");
}

// ---- timeline ----

constexpr uint64_t kS = 1000000000ull;

Counts counts(uint64_t ops, uint64_t sets_ok = 0, uint64_t sets_failed = 0, uint64_t hits = 0, uint64_t misses = 0,
              uint64_t lost = 0, uint64_t errors = 0) {
  return Counts{ops, sets_ok, sets_failed, hits, misses, lost, errors};
}

TEST(Timeline, OneRowPerSecondWithRatesOverRealLengths) {
  const uint64_t t0 = 5 * kS;  // any clock origin
  // Marks taken a little after each whole second (the loop's granularity),
  // the last one closing the window at 3.0004 s.
  const std::vector<TimelineMark> marks = {
      {t0, counts(0)},
      {t0 + kS + 2000000, counts(1002, 900, 2, 80, 20, 1, 0)},         // 1.002 s
      {t0 + 2 * kS + 1000000, counts(2000, 1800, 2, 170, 30, 1, 1)},  // 2.001 s
      {t0 + 3 * kS + 400000, counts(3000, 2700, 5, 250, 45, 3, 1)},   // 3.0004 s: closes the window
  };
  const auto rows = timeline_rows(marks);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].second, 1u);
  EXPECT_EQ(rows[1].second, 2u);
  EXPECT_EQ(rows[2].second, 3u);
  EXPECT_NEAR(rows[0].length_s, 1.002, 1e-9);
  EXPECT_NEAR(rows[1].length_s, 0.999, 1e-9);
  EXPECT_NEAR(rows[2].length_s, 0.9994, 1e-9);
  EXPECT_EQ(rows[0].c, counts(1002, 900, 2, 80, 20, 1, 0));
  EXPECT_EQ(rows[1].c, counts(998, 900, 0, 90, 10, 0, 1));
  EXPECT_EQ(rows[2].c, counts(1000, 900, 3, 80, 15, 2, 0));
  EXPECT_NEAR(rows[0].ops_per_s, 1000.0, 1e-6);
  EXPECT_NEAR(rows[1].ops_per_s, 998 / 0.999, 1e-6);
  EXPECT_NEAR(rows[2].ops_per_s, 1000 / 0.9994, 1e-6);
  // Nothing lost or counted twice: the rows add up to the last mark.
  Counts sum;
  for (const auto& r : rows) sum += r.c;
  EXPECT_EQ(sum, marks.back().total);
}

TEST(Timeline, AShortTailFoldsIntoTheRowBefore) {
  // A 2-second window that closed 0.3 ms late: 2 rows, not 2 and a sliver.
  std::vector<TimelineMark> marks = {{0, counts(0)}, {kS, counts(100)}, {2 * kS, counts(300)},
                                     {2 * kS + 300000, counts(301)}};
  auto rows = timeline_rows(marks);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].second, 2u);
  EXPECT_EQ(rows[1].c.ops, 201u);
  EXPECT_NEAR(rows[1].length_s, 1.0003, 1e-9);
  EXPECT_NEAR(rows[1].ops_per_s, 201 / 1.0003, 1e-6);
  // A tail of half a second or more is its own row, named by the second it ends in.
  marks.back() = {2 * kS + 600000000, counts(360)};
  rows = timeline_rows(marks);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].second, 3u);
  EXPECT_NEAR(rows[2].length_s, 0.6, 1e-9);
  EXPECT_NEAR(rows[2].ops_per_s, 100.0, 1e-6);
  // A window shorter than the tail limit still gives its one row.
  rows = timeline_rows({{0, counts(0)}, {200000000, counts(50)}});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].second, 1u);
  EXPECT_NEAR(rows[0].ops_per_s, 250.0, 1e-6);
  EXPECT_TRUE(timeline_rows({}).empty());
  EXPECT_TRUE(timeline_rows({{0, counts(0)}}).empty());
}

TEST(Timeline, AStalledGeneratorGivesOneLongRowNotGaps) {
  // Marks at 1 s, then (a 2.5-s stall) at 3.5 s, then the window ends at 4 s.
  const auto rows = timeline_rows({{0, counts(0)}, {kS, counts(10)}, {3 * kS + kS / 2, counts(35)},
                                   {4 * kS, counts(45)}});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].second, 1u);
  EXPECT_EQ(rows[1].second, 3u);  // floor(3.5)
  EXPECT_NEAR(rows[1].length_s, 2.5, 1e-9);
  EXPECT_NEAR(rows[1].ops_per_s, 10.0, 1e-9);
  EXPECT_EQ(rows[2].second, 4u);
  EXPECT_NEAR(rows[2].ops_per_s, 20.0, 1e-9);
}

TEST(Timeline, ThreadsMergeRowByRow) {
  std::vector<TimelineRow> a = timeline_rows({{0, counts(0)}, {kS, counts(100, 10)}, {2 * kS, counts(300, 30)}});
  const std::vector<TimelineRow> b =
      timeline_rows({{7, counts(0)}, {kS + 7, counts(50, 5)}, {2 * kS + 7, counts(60, 6)}, {3 * kS + 7, counts(70, 7)}});
  merge_timeline(&a, b);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].c, counts(150, 15));
  EXPECT_NEAR(a[0].ops_per_s, 150.0, 1e-9);
  EXPECT_EQ(a[1].c, counts(210, 21));
  EXPECT_EQ(a[2].c, counts(10, 1));
  EXPECT_EQ(a[2].second, 3u);
  // Through RunResult::merge as ferrite-bench merges its threads.
  RunResult x, y;
  x.timeline = timeline_rows({{0, counts(0)}, {kS, counts(4)}});
  y.timeline = timeline_rows({{0, counts(0)}, {kS, counts(6)}});
  x.fills = 3;
  y.fills = 4;
  x.merge(y);
  ASSERT_EQ(x.timeline.size(), 1u);
  EXPECT_EQ(x.timeline[0].c.ops, 10u);
  EXPECT_EQ(x.fills, 7u);
}

TEST(Timeline, CsvHasTheHeaderAndOneNumericLinePerRow) {
  const auto rows = timeline_rows({{0, counts(0)}, {kS, counts(1500, 1300, 7, 150, 43, 2, 1)},
                                   {2 * kS, counts(2500, 2200, 7, 240, 50, 2, 1)}});
  EXPECT_EQ(timeline_csv(rows),
            "second,ops,ops_per_s,sets_ok,sets_failed,get_hits,get_misses,lost,errors\n"
            "1,1500,1500.0,1300,7,150,43,2,1\n"
            "2,1000,1000.0,900,0,90,7,0,0\n");
  EXPECT_EQ(timeline_csv({}), std::string(kTimelineHeader));
}

TEST(Quoting, CsvFieldsFollowRfc4180) {
  EXPECT_EQ(csv_field("mix90/ferrited"), "mix90/ferrited");  // plain labels unchanged (old outputs stay as they were)
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
}

TEST(Quoting, JsonStringsEscapeQuotesBackslashesAndControls) {
  EXPECT_EQ(json_string("run"), "\"run\"");
  EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_string(std::string("t\tn\n\x01", 5)), "\"t\\tn\\n\\u0001\"");
}

// ---- hit ratio ----

TEST(RunResult, HitRatioIsHitsOverGets) {
  RunResult r;
  EXPECT_LT(r.hit_ratio(), 0);  // no gets: undefined, reported as such
  r.get_hits = 3;
  r.get_misses = 1;
  EXPECT_DOUBLE_EQ(r.hit_ratio(), 0.75);
  r.sets_ok = 1000;  // sets do not count
  EXPECT_DOUBLE_EQ(r.hit_ratio(), 0.75);
  RunResult o;
  o.get_misses = 4;
  r.merge(o);  // merged over threads from the summed counts, not averaged
  EXPECT_DOUBLE_EQ(r.hit_ratio(), 3.0 / 8.0);
  r.get_hits = 0;
  EXPECT_DOUBLE_EQ(r.hit_ratio(), 0.0);
}

}  // namespace
}  // namespace ferrite::bench
