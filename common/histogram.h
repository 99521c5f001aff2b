// The one latency histogram every perf tool (ferrite-bench, server_bench,
// index_bench, recovery_bench, dpdk_loadgen, ferrite-crashtest) records into
// and takes percentiles from. Log-linear: exact below 64 units, then 64
// sub-buckets per power of two (relative error under 1.6%); every uint64
// value fits, so there is no cap on what it can hold. Percentiles report
// the bucket's upper bound clamped to the observed min and max, so they never
// understate a latency. Units are the caller's (the tools record ns).
//
// Thread safety: a Histogram belongs to one thread; merge() copies of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferrite {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  Histogram() : counts_(kBuckets, 0) {}

  void record(uint64_t v) noexcept {
    ++counts_[bucket_of(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  void merge(const Histogram& o) noexcept;
  void reset() noexcept;

  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return count_ ? max_ : 0; }
  uint64_t min() const noexcept { return count_ ? min_ : 0; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
  // Smallest recorded-bucket upper bound b such that at least q of the
  // values are <= b (q in [0,1]); 0 when empty.
  uint64_t percentile(double q) const noexcept;

  static std::size_t bucket_of(uint64_t v) noexcept {
    if (v < kSub) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    const unsigned shift = msb - kSubBits;
    return (static_cast<std::size_t>(shift) + 1) * kSub + static_cast<std::size_t>((v >> shift) - kSub);
  }
  static uint64_t bucket_low(std::size_t b) noexcept;
  static uint64_t bucket_high(std::size_t b) noexcept;

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace ferrite
