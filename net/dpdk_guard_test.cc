// net/dpdk_guard: munmap() from another thread never unmaps memory a poller
// is reading inside a guarded section (the net_memif disconnect race).
#include "net/dpdk_guard.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace g = ferrite::net::dpdk_guard;

namespace {

void spin_for(std::chrono::nanoseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

// Runs first: the guard is process-wide and cannot be turned off again.
TEST(DpdkGuard, OnlyMemifTurnsItOn) {
  g::enable_for_driver("net_tap");
  g::enable_for_driver("net_af_packet");
  g::enable_for_driver(nullptr);
  EXPECT_FALSE(g::enabled());
  g::enable_for_driver("net_memif");
  EXPECT_TRUE(g::enabled());
}

// A poller reads a page inside its section while the main thread clears
// the pointer and unmaps the page, round after round. Without the guard the
// poller faults on a page unmapped under it; with it munmap() waits for the
// section to end, and the poller's next section sees the cleared pointer.
TEST(DpdkGuard, MunmapWaitsForPollersInsideASection) {
  g::enable_for_driver("net_memif");
  ASSERT_TRUE(g::enabled());
  std::atomic<uint64_t*> page{nullptr};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<bool> inside{false};
  std::thread poller([&] {
    uint64_t sum = 0;
    while (!done.load(std::memory_order_relaxed)) {
      g::enter();
      if (uint64_t* p = page.load(std::memory_order_acquire); p != nullptr) {
        inside.store(true, std::memory_order_release);
        // Keeps reading for a while, as a burst call reads a ring.
        const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(2);
        do {
          for (int i = 0; i < 512; i += 8) sum += reinterpret_cast<volatile uint64_t*>(p)[i];
        } while (std::chrono::steady_clock::now() < end);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
      g::leave();
    }
    EXPECT_EQ(sum, 0u);  // fresh anonymous pages read as zero
  });
  const uint64_t waited_before = g::waited_unmaps();
  constexpr int kRounds = 5000;
  for (int r = 0; r < kRounds; ++r) {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    inside.store(false, std::memory_order_relaxed);
    page.store(static_cast<uint64_t*>(m), std::memory_order_release);
    // Until the poller is reading it (bounded: it may be descheduled), then
    // pull it away under the poller, as memif_disconnect does.
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    while (!inside.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
    }
    page.store(nullptr, std::memory_order_release);
    ASSERT_EQ(munmap(m, 4096), 0);
  }
  done = true;
  poller.join();
  EXPECT_GT(reads.load(), static_cast<uint64_t>(kRounds) / 2);
  // The poller was caught inside its section at least once, and munmap waited.
  EXPECT_GT(g::waited_unmaps(), waited_before);
  EXPECT_EQ(g::unguarded_pollers(), 0u);
}

// A poller's own munmap() inside a section passes through (no self-wait),
// and munmap() still reports errors as the real one does.
TEST(DpdkGuard, PollerOwnMunmapAndErrorsPassThrough) {
  g::enable_for_driver("net_memif");
  std::thread t([] {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    g::enter();
    EXPECT_EQ(munmap(m, 4096), 0);
    g::leave();
  });
  t.join();
  errno = 0;
  EXPECT_EQ(munmap(reinterpret_cast<void*>(1), 4096), -1);  // unaligned
  EXPECT_EQ(errno, EINVAL);
  // A poller that ended freed its slot: munmap from here does not wait on it.
  spin_for(std::chrono::microseconds(1));
  void* m = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_EQ(munmap(m, 4096), 0);
}
