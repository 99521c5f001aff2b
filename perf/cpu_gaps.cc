// cpu_gaps: how much of a CPU a busy-polling thread really gets. One thread
// per given CPU spins reading the TSC; every jump longer than --min-us is a
// gap in which the thread did not run: an interrupt, a kernel thread, or the
// hypervisor running something else on the vCPU (invisible to the guest's
// scheduler). The thread's involuntary context switches tell the two apart:
// gaps far more numerous than those are not the guest's doing. Polling servers and generators lose the same time, so gaps
// longer than a latency target bound that target's percentile from below.
//
//   cpu_gaps --cpus 0,1 --seconds 3      (perf/dpdk_compare.sh prints it before its rows)
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <x86intrin.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

struct Result {
  uint64_t gaps = 0, over20 = 0, over100 = 0, over1000 = 0;
  long preempted = 0;  // involuntary context switches: the guest scheduler ran something else
  double total_us = 0, max_us = 0;
};

Result spin(int cpu, double seconds, double min_us, double hz) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  Result r;
  const auto thr = static_cast<uint64_t>(hz * min_us * 1e-6);
  uint64_t prev = __rdtsc();
  const uint64_t end = prev + static_cast<uint64_t>(hz * seconds);
  while (prev < end) {
    const uint64_t c = __rdtsc();
    if (c - prev > thr) {
      const double us = static_cast<double>(c - prev) * 1e6 / hz;
      ++r.gaps;
      r.over20 += us > 20;
      r.over100 += us > 100;
      r.over1000 += us > 1000;
      r.total_us += us;
      r.max_us = std::max(r.max_us, us);
    }
    prev = c;
  }
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) == 0) r.preempted = ru.ru_nivcsw;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cpu_gaps: time a busy-polling thread loses on each CPU"};
  std::vector<int> cpus{0};
  double seconds = 3, min_us = 5;
  app.add_option("--cpus", cpus, "CPUs to measure at once (one spinning thread each)")->delimiter(',');
  app.add_option("--seconds", seconds)->check(CLI::Range(0.1, 60.0));
  app.add_option("--min-us", min_us, "shortest jump counted as a gap")->check(CLI::Range(1.0, 1000.0));
  CLI11_PARSE(app, argc, argv);

  // TSC rate against the monotonic clock.
  const auto w0 = std::chrono::steady_clock::now();
  const uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double hz = static_cast<double>(__rdtsc() - c0) /
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();

  std::vector<Result> res(cpus.size());
  std::vector<std::thread> ts;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    ts.emplace_back([&, i] { res[i] = spin(cpus[i], seconds, min_us, hz); });
  }
  for (auto& t : ts) t.join();
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    const Result& r = res[i];
    std::printf("cpu_gaps: CPU %d: %.2f%% of %.0f s lost in %llu gaps > %.0f us (%.0f/s > 20 us, %.0f/s > 100 us, "
                "%llu > 1 ms), longest %.0f us; preempted by the guest scheduler %ld times\n",
                cpus[i], r.total_us / (seconds * 1e4), seconds, static_cast<unsigned long long>(r.gaps), min_us,
                static_cast<double>(r.over20) / seconds, static_cast<double>(r.over100) / seconds,
                static_cast<unsigned long long>(r.over1000), r.max_us, r.preempted);
  }
  return 0;
}
