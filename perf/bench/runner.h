// The load loop of ferrite-bench: one generator thread drives F flows of a
// Transport, closed loop (depth requests outstanding per flow) or open loop
// (Poisson arrivals at a target rate; each request's latency runs from its
// INTENDED send time, so a server or generator that falls behind shows up in
// the latencies instead of hiding it: no coordinated omission).
//
// A request that gets no complete reply within timeout_ms is lost: counted,
// its slot freed, never resent and never entered into the latency figures.
// Every run is bounded by time (warmup + duration + one timeout to drain)
// and optionally by a count of ops.
//
// Cache-aside (fill_on_miss): a get that misses is followed, as the next
// request of the same flow, by a set of that key (closed loop: it takes the
// freed slot; open loop: it is sent as soon as a slot is free, besides the
// Poisson arrivals).
//
// Every run keeps a timeline: its counters marked about every second of the
// measurement window (RunResult::timeline, see timeline.h).
//
// Thread safety: a Runner belongs to one thread; progress() may be read
// from another thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/histogram.h"
#include "perf/bench/timeline.h"
#include "perf/bench/transport.h"

namespace ferrite::bench {

enum class Protocol : uint8_t { kNative, kMemcached };
enum class Mode : uint8_t { kClosed, kOpen };

struct RunConfig {
  Protocol protocol = Protocol::kNative;
  Mode mode = Mode::kClosed;
  unsigned depth = 16;       // closed: requests outstanding per flow; open: most in flight per flow
  double rate = 0;           // open: target ops/s for this runner (requests/s = rate / batch)
  uint64_t keys = 100000;
  std::size_t key_size = 16;
  std::size_t value_size = 32;
  double get_ratio = 0.9;
  double zipf_theta = 0;     // 0: uniform keys
  unsigned batch = 1;        // ops per request datagram (native only)
  double warmup_s = 0;
  double duration_s = 5;
  uint64_t max_ops = 0;      // 0: bounded by time only
  int timeout_ms = 500;
  uint64_t seed = 1;
  bool preload = false;      // set keys [key_begin, key_end) once each, then stop
  bool fill_on_miss = false; // cache-aside: each get miss is followed by a set of its key (same flow)
  uint64_t key_begin = 0, key_end = 0;
};

struct RunResult {
  double seconds = 0;            // measurement window (after warmup)
  uint64_t requests_sent = 0;
  uint64_t requests_done = 0;    // complete replies
  uint64_t ops_done = 0;         // ops in complete replies, in the window
  uint64_t lost = 0;             // requests with no complete reply in time
  uint64_t send_failed = 0;      // requests the transport refused (also lost)
  uint64_t errors = 0;           // error replies, malformed replies, wrong values
  uint64_t get_hits = 0, get_misses = 0;
  uint64_t sets_ok = 0, sets_failed = 0;  // failed: any refusal (native status, NOT_STORED, SERVER_ERROR)
  uint64_t fills = 0;            // fill_on_miss: sets sent for a missed get (also in sets_*)
  uint64_t stale = 0;            // datagrams matching no outstanding request
  uint64_t cookie_refreshes = 0; // native: the server asked for a new handshake
  uint64_t backlog_dropped = 0;  // open loop: arrivals over the generator's backlog limit (also lost)
  uint64_t max_send_lag_ns = 0;  // open loop: worst intended-to-actual send delay
  Histogram latency;             // ns per request (from the intended send time)
  // One row per second of the measurement window; the drain after a
  // time-bounded window is not in it (so its ops add up to ops_done).
  std::vector<TimelineRow> timeline;
  void merge(const RunResult& o);
  double ops_per_s() const noexcept { return seconds > 0 ? static_cast<double>(ops_done) / seconds : 0; }
  // get_hits / (get_hits + get_misses); negative when there were no gets.
  double hit_ratio() const noexcept {
    const uint64_t g = get_hits + get_misses;
    return g ? static_cast<double>(get_hits) / static_cast<double>(g) : -1;
  }
  double loss_ratio() const noexcept {
    const uint64_t t = requests_done + lost;
    return t ? static_cast<double>(lost) / static_cast<double>(t) : 0;
  }
};

// Live figures for a progress line, published by the runner about every
// 100 ms and taken (and reset) by the reader.
class Progress {
 public:
  void publish(uint64_t ops, uint64_t lost, const Histogram& h);
  void take(uint64_t* ops, uint64_t* lost, Histogram* h);

 private:
  std::mutex mu_;
  uint64_t ops_ = 0, lost_ = 0;
  Histogram h_;
};

// Validates a configuration (sizes against one datagram, batch with the
// memcached protocol, ranges); "" if fine, else the problem.
std::string check_config(const RunConfig& c);
// Most ops of this configuration that fit one request datagram (>= 1).
unsigned max_batch(const RunConfig& c);

class Runner {
 public:
  Runner(const RunConfig& c, Transport& t, Progress* progress = nullptr);
  ~Runner();
  // Native: hello/cookie handshake on every flow. Status not ok if a flow
  // gets no cookie within ~1 s.
  Status handshake();
  RunResult run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferrite::bench
