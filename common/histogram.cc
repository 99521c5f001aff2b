// Log-linear latency histogram (see histogram.h).
#include "common/histogram.h"

#include <algorithm>
#include <cmath>

namespace ferrite {

uint64_t Histogram::bucket_low(std::size_t b) noexcept {
  if (b < kSub) return b;
  const std::size_t shift = b / kSub - 1;
  return (kSub + b % kSub) << shift;
}

uint64_t Histogram::bucket_high(std::size_t b) noexcept {
  if (b < kSub) return b;
  const std::size_t shift = b / kSub - 1;
  const uint64_t low = bucket_low(b);
  const uint64_t width = uint64_t{1} << shift;
  return low + (width - 1);  // the top bucket ends at UINT64_MAX without overflow
}

void Histogram::merge(const Histogram& o) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  if (o.count_) {
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }
}

void Histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t Histogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucket_high(i), min(), max());
  }
  return max();
}

}  // namespace ferrite
