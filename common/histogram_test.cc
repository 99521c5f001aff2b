// Unit tests of the latency histogram (common/histogram.h): bucket tiling
// and error bound, percentiles of known data, merge.
#include "common/histogram.h"

#include <gtest/gtest.h>

#include <random>

namespace ferrite {
namespace {

TEST(Histogram, BucketsTileEveryValueWithBoundedError) {
  for (std::size_t b = 0; b + 1 < Histogram::kBuckets; ++b) {
    ASSERT_EQ(Histogram::bucket_high(b) + 1, Histogram::bucket_low(b + 1)) << b;
  }
  EXPECT_EQ(Histogram::bucket_high(Histogram::kBuckets - 1), UINT64_MAX);
  EXPECT_EQ(Histogram::bucket_of(UINT64_MAX), Histogram::kBuckets - 1);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const std::size_t b = Histogram::bucket_of(v);
    ASSERT_LE(Histogram::bucket_low(b), v);
    ASSERT_GE(Histogram::bucket_high(b), v);
    if (v >= Histogram::kSub) {
      const double width = static_cast<double>(Histogram::bucket_high(b) - Histogram::bucket_low(b)) + 1;
      ASSERT_LE(width / static_cast<double>(Histogram::bucket_low(b)), 1.0 / 64 + 1e-12);
    } else {
      ASSERT_EQ(Histogram::bucket_low(b), v);  // exact below 64
      ASSERT_EQ(Histogram::bucket_high(b), v);
    }
  }
}

TEST(Histogram, PercentilesOfKnownData) {
  Histogram h;
  EXPECT_EQ(h.percentile(0.99), 0u);
  for (uint64_t v = 0; v < 64; ++v) h.record(v);
  EXPECT_EQ(h.percentile(0.5), 31u);  // rank 32 of 0..63
  EXPECT_EQ(h.percentile(1.0), 63u);
  EXPECT_EQ(h.percentile(0.0), 0u);
  h.reset();
  for (uint64_t v = 1; v <= 1000000; ++v) h.record(v * 1000);  // 1 us .. 1 s
  EXPECT_EQ(h.count(), 1000000u);
  EXPECT_EQ(h.max(), 1000000000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_NEAR(h.mean(), 500000500.0, 1.0);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 1e9;
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_GE(got, exact) << q;  // never understated
    EXPECT_LE(got, exact * (1 + 1.0 / 64)) << q;
  }
  EXPECT_EQ(h.percentile(1.0), 1000000000u);  // clamped to the real max
}

TEST(Histogram, MergeEqualsRecordingTogether) {
  Histogram a, b, all;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng() % 5000000;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.percentile(q), all.percentile(q));
}

TEST(Histogram, NoCapOnLargeValues) {
  // dpdk_loadgen's old histogram stopped at 100 ms; this one keeps the
  // order of magnitude of any value.
  Histogram h;
  for (int i = 0; i < 99; ++i) h.record(1000);
  h.record(5'000'000'000);  // 5 s
  EXPECT_GE(h.percentile(0.5), 1000u);  // the bucket's top: within 1/64 above
  EXPECT_LE(h.percentile(0.5), 1000u + 1000u / 64);
  EXPECT_EQ(h.percentile(1.0), 5'000'000'000u);
  EXPECT_GE(h.percentile(0.995), 5'000'000'000u * 63 / 64);
}

}  // namespace
}  // namespace ferrite
