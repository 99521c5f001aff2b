// Unit tests of common/clock.h: the unix clock agrees with time(2), the
// monotonic one never goes back and measures a sleep.
#include "common/clock.h"

#include <gtest/gtest.h>

#include <ctime>
#include <thread>

namespace ferrite {
namespace {

TEST(Clock, UnixSecondsMatchTime) {
  const auto before = static_cast<uint64_t>(std::time(nullptr));
  const uint64_t now = unix_now_s();
  const auto after = static_cast<uint64_t>(std::time(nullptr));
  EXPECT_GE(now + 1, before);  // time(2) and system_clock may round differently by < 1 s
  EXPECT_LE(now, after + 1);
  EXPECT_GT(now, 1'600'000'000u);  // seconds, not ms or ns: after 2020, before 2286
  EXPECT_LT(now, 10'000'000'000u);
}

TEST(Clock, MonotonicNanosecondsMeasureASleep) {
  uint64_t last = mono_now_ns();
  for (int i = 0; i < 1000; ++i) {
    const uint64_t t = mono_now_ns();
    ASSERT_GE(t, last);
    last = t;
  }
  const uint64_t t0 = mono_now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t dt = mono_now_ns() - t0;
  EXPECT_GE(dt, 20'000'000u);
  EXPECT_LT(dt, 20'000'000'000u);  // nanoseconds, not a larger unit
}

}  // namespace
}  // namespace ferrite
