// The two clocks the code base reads: wall-clock unix seconds (item expiry,
// uptime) and monotonic nanoseconds (latency, rate limits, intervals).
// Code that compares against a deadline keeps using std::chrono::steady_clock
// time points; these are for the places that store plain integers.
//
// Thread safety: both are safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace ferrite {

// Seconds since the unix epoch (system_clock: may step when the clock is set).
inline uint64_t unix_now_s() noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// Nanoseconds on the monotonic clock (steady_clock is CLOCK_MONOTONIC on
// Linux); only differences between two readings mean anything.
inline uint64_t mono_now_ns() noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace ferrite
