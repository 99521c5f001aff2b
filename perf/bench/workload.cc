// Key choice and arrival schedule (see workload.h).
#include "perf/bench/workload.h"

#include <cmath>
#include <stdexcept>

namespace ferrite::bench {

namespace {
// log1p(x)/x and (exp(x)-1)/x, continuous at 0.
double helper1(double x) noexcept { return std::fabs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x / 3.0); }
double helper2(double x) noexcept { return std::fabs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x / 3.0); }
}  // namespace

// Ranks are 1..n inside (the paper's form); next() returns rank - 1.
Zipf::Zipf(uint64_t n, double theta) : n_(n), theta_(theta) {
  if (n == 0) throw std::invalid_argument("Zipf: n must be >= 1");
  if (!(theta > 0.0 && theta < 1.0)) throw std::invalid_argument("Zipf: theta must be in (0, 1)");
  h_x1_ = big_h(1.5) - 1.0;
  h_n_ = big_h(static_cast<double>(n) + 0.5);
  s_ = 2.0 - big_h_inv(big_h(2.5) - h(2.0));
}

double Zipf::h(double x) const noexcept { return std::exp(-theta_ * std::log(x)); }
// Integral of h: (x^(1-theta) - 1) / (1 - theta).
double Zipf::big_h(double x) const noexcept {
  const double lx = std::log(x);
  return helper2((1.0 - theta_) * lx) * lx;
}
double Zipf::big_h_inv(double x) const noexcept {
  double t = x * (1.0 - theta_);
  if (t < -1.0) t = -1.0;  // rounding at the domain's edge
  return std::exp(helper1(t) * x);
}

bool Zipf::try_sample(double u01, uint64_t* out) const noexcept {
  const double u = h_n_ + u01 * (h_x1_ - h_n_);
  const double x = big_h_inv(u);
  double kd = std::floor(x + 0.5);
  if (kd < 1) kd = 1;
  if (kd > static_cast<double>(n_)) kd = static_cast<double>(n_);
  if (kd - x <= s_ || u >= big_h(kd + 0.5) - h(kd)) {
    *out = static_cast<uint64_t>(kd) - 1;
    return true;
  }
  return false;
}

double Zipf::probability(uint64_t i) {
  if (zetan_ == 0) {
    for (uint64_t r = 1; r <= n_; ++r) zetan_ += 1.0 / std::pow(static_cast<double>(r), theta_);
  }
  return 1.0 / std::pow(static_cast<double>(i + 1), theta_) / zetan_;
}

KeyChooser::KeyChooser(uint64_t keys, double theta, uint64_t seed)
    : keys_(keys), zipf_(theta > 0), z_(keys, theta > 0 ? theta : 0.5), rng_(seed) {}

uint64_t KeyChooser::next() {
  if (zipf_) return z_.next(rng_);
  return std::uniform_int_distribution<uint64_t>(0, keys_ - 1)(rng_);
}

void format_key(uint64_t i, char* out, std::size_t size) noexcept {
  out[0] = 'k';
  for (std::size_t p = size - 1; p >= 1; --p) {
    out[p] = static_cast<char>('0' + i % 10);
    i /= 10;
  }
}

}  // namespace ferrite::bench
