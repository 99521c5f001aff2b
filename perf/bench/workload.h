// What the load generator asks for: key choice (uniform or Zipf), key
// formatting, and the open-loop arrival schedule (Poisson process).
//
// Thread safety: each object belongs to one thread (each owns its RNG).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace ferrite::bench {

// Zipf(theta) over ranks [0, n), rank 0 the most popular: P(i) is
// proportional to 1/(i+1)^theta. Exact, by rejection-inversion (Hoermann and
// Derflinger, "Rejection-inversion to generate variates from monotone
// discrete distributions", 1996): O(1) set-up and expected O(1) per draw.
// (Gray et al.'s closed form, used by YCSB, is approximate: it gives rank 2
// ~16% too much at theta 0.99; the unit test checks the ranks' frequencies.)
// theta in (0, 1).
class Zipf {
 public:
  Zipf(uint64_t n, double theta);
  template <typename Rng>
  uint64_t next(Rng& rng) {
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (;;) {
      uint64_t k;
      if (try_sample(u01(rng), &k)) return k;
    }
  }
  // One rejection-inversion trial for a uniform u in [0,1); true with *k set
  // if accepted.
  bool try_sample(double u, uint64_t* k) const noexcept;
  uint64_t n() const noexcept { return n_; }
  // Probability of rank i (O(n) the first call: it sums zeta(n); for tests).
  double probability(uint64_t i);

 private:
  double h(double x) const noexcept;
  double big_h(double x) const noexcept;
  double big_h_inv(double x) const noexcept;
  uint64_t n_;
  double theta_, h_x1_, h_n_, s_;
  double zetan_ = 0;
};

class KeyChooser {
 public:
  // theta == 0: uniform.
  KeyChooser(uint64_t keys, double theta, uint64_t seed);
  uint64_t next();

 private:
  uint64_t keys_;
  bool zipf_;
  Zipf z_;
  std::mt19937_64 rng_;
};

// Writes key number i into out[0..size): "k" then i in decimal, zero padded
// to fill size bytes (size >= 8; ids beyond size-1 digits are cut to the
// low digits). The same i always gives the same key for a size.
void format_key(uint64_t i, char* out, std::size_t size) noexcept;

// Arrival times of a Poisson process at rate per second: exponential gaps
// with mean 1/rate, from t=0, in nanoseconds (double, so rates above 1e9/s
// do not round to zero gaps).
class PoissonSchedule {
 public:
  PoissonSchedule(double rate_per_s, uint64_t seed) : mean_gap_ns_(1e9 / rate_per_s), rng_(seed) {}
  // Intended time of the next arrival, ns from the start.
  double next() {
    t_ += std::exponential_distribution<double>(1.0)(rng_) * mean_gap_ns_;
    return t_;
  }
  double peek_last() const noexcept { return t_; }

 private:
  double mean_gap_ns_;
  double t_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ferrite::bench
