// Engine: the server's PacketHandler. Decodes native-protocol datagrams,
// executes every op of a received burst as ONE index burst (one fence pair
// for the whole burst), and queues the replies; the backend sends them only
// after on_burst() returns, i.e. after the effects are durable (invariant 3).
// A burst with more than 32 gets runs as consecutive index bursts of 32 gets,
// and a get whose value would push its message's reply past kMaxMessage is
// answered too_large (counted: reply_too_large), so the values in memory at
// once stay bounded whatever a datagram asks for.
//
// Per datagram: allowlist (CIDR) -> header -> cookie (anti-amplification) ->
// duplicate request id (answered from memory) -> reassembly of fragments ->
// op decoding. Drops and errors are counted per reason in EngineStats.
//
// Thread safety: on_burst()/on_idle() for worker w run only on w's thread and
// touch only w's state; stats are relaxed atomics read through the stats
// registry (common/stats.h) by the stats op, the server and tests, from any
// thread.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/cacheline.h"
#include "common/stats.h"
#include "common/status.h"
#include "index/index.h"
#include "net/handler.h"
#include "proto/native.h"
#include "server/cookie.h"

namespace ferrite::server {

struct Cidr {
  uint32_t net = 0;   // host byte order
  uint32_t mask = 0;
  bool contains(uint32_t ip) const noexcept { return (ip & mask) == net; }
};
StatusOr<Cidr> parse_cidr(const std::string& s);

struct EngineOptions {
  std::vector<Cidr> allow;          // empty: allow nobody
  // The cookie secret rotates this often; cookies under the current or the
  // previous secret are accepted (server/cookie.h).
  std::chrono::seconds cookie_rotation{600};
  std::size_t max_datagram = proto::kDefaultDatagram;
  std::size_t dup_window = 4096;    // remembered replies per worker (direct-mapped slots)
  // Incomplete fragmented messages per worker; one source (address + port)
  // holds at most max(2, max_partial / 8) of them (server/reassembly.h).
  std::size_t max_partial = 64;
  // Expiry sweep in the workers' idle time (DPDK: nothing else may run on a
  // polling core): an idle worker sweeps this many index slots at most once
  // per idle_sweep_interval, a step of a few microseconds. 0 = off (the
  // server's housekeeping thread sweeps instead).
  uint32_t idle_sweep_slots = 0;
  std::chrono::microseconds idle_sweep_interval{1000};
};

struct alignas(kCacheLine) EngineStats {
  std::atomic<uint64_t> requests{0}, ops{0}, gets{0}, hits{0}, misses{0}, writes{0};
  std::atomic<uint64_t> drop_not_allowed{0}, drop_bad_header{0}, drop_bad_fragment{0};
  // Partial messages dropped, by reason (server/reassembly.h E1-E3), and their sum.
  std::atomic<uint64_t> drop_partial_source_budget{0}, drop_partial_oldest{0}, drop_partial_expired{0};
  std::atomic<uint64_t> drop_partial_evicted{0};
  std::atomic<uint64_t> malformed{0}, unknown_opcode{0}, too_large{0}, out_of_memory{0};
  std::atomic<uint64_t> cookie_replies{0}, duplicates{0}, replies{0};
  std::atomic<uint64_t> reply_too_large{0};  // gets answered too_large: the reply would pass kMaxMessage
  std::atomic<uint64_t> idle_sweep_steps{0}, idle_sweep_expired{0};
};

// Stats entries (engine_stats.cc): the EngineStats counters from requests to
// cookie_replies, summed over workers; the index's figures (keys .. read_bad_records).
void add_engine_counters(stats::Registry& reg, const stats::Workers<EngineStats>& workers);
void add_index_stats(stats::Registry& reg, const index::Index& idx);

class Engine : public net::PacketHandler {
 public:
  Engine(index::Index& idx, const EngineOptions& opts);
  ~Engine() override;

  void on_burst(unsigned worker, std::span<const net::Datagram> in, net::TxQueue& out) override;
  void on_idle(unsigned worker) override;

  // The cookie peer must send (under the current secret).
  uint64_t cookie_for(const sockaddr_in& peer) const noexcept;
  // Called by the server's housekeeping thread (one caller): rotates the
  // cookie secret when a period has passed; true if it did.
  bool maybe_rotate_cookie_secret(std::chrono::steady_clock::time_point now) noexcept {
    return cookies_.maybe_rotate(now);
  }
  CookieKeys& TEST_cookies() noexcept { return cookies_; }
  const EngineStats& stats(unsigned worker) const;
  // The `stats` op's entries: engine, index, then what the server registers
  // after them (pool, backend). Register before the backend starts.
  stats::Registry& stats_registry() noexcept { return registry_; }
  const stats::Registry& stats_registry() const noexcept { return registry_; }
  // The `stats` op's reply: "name value\n" lines (stats::render_native).
  std::string stats_text() const { return stats::render_native(registry_.sample()); }

 private:
  struct Message;     // one decoded request in the current burst
  struct WorkerState;
  void handle_datagram(WorkerState& ws, const net::Datagram& d, net::TxQueue& out);
  void start_message(WorkerState& ws, const sockaddr_in& peer, const proto::Header& h,
                     std::span<const uint8_t> body, std::size_t request_bytes, net::TxQueue& out);
  void finish_burst(WorkerState& ws, net::TxQueue& out);
  // Executes the burst's ops in sub-bursts of bounded get count; a get whose
  // value does not fit its message's reply becomes kTooLarge.
  void execute_bounded(WorkerState& ws);
  void register_stats();  // the constructor's last step

  index::Index& idx_;
  EngineOptions opts_;
  CookieKeys cookies_;
  uint64_t start_unix_ = 0;
  std::vector<std::unique_ptr<WorkerState>> workers_;
  stats::Registry registry_;
};

}  // namespace ferrite::server
