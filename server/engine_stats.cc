// The native engine's stats entries (server/engine.h, common/stats.h): the
// engine's per-worker counters, summed on read, and the index's figures from
// one index::IndexStats snapshot per sample. Engine::register_stats
// (engine.cc) places them; the order here is the order of the `stats` op's
// lines, which clients and tests read by name (docs/protocol.md).
//
// Thread safety: called in the Engine's constructor, before any worker; the
// read functions load relaxed atomics and call Index::stats(), both safe
// from any thread.
#include <cstdint>
#include <string>

#include "server/engine.h"

namespace ferrite::server {

namespace {

struct Counter {
  const char* name;
  std::atomic<uint64_t> EngineStats::*field;
  const char* help;
};

// Engine counters, in output order.
constexpr Counter kEngineCounters[] = {
    {"requests", &EngineStats::requests, "request messages received"},
    {"ops", &EngineStats::ops, "ops decoded from requests"},
    {"get", &EngineStats::gets, "get ops"},
    {"get_hits", &EngineStats::hits, "get ops that found the key"},
    {"get_misses", &EngineStats::misses, "get ops that did not find the key"},
    {"writes", &EngineStats::writes, "set, delete, incr and decr ops"},
    {"drop_not_allowed", &EngineStats::drop_not_allowed, "datagrams dropped: source outside server.allow"},
    {"drop_bad_header", &EngineStats::drop_bad_header, "datagrams dropped: bad native header"},
    {"drop_bad_fragment", &EngineStats::drop_bad_fragment, "datagrams dropped: fragment inconsistent with its message"},
    {"drop_partial_evicted", &EngineStats::drop_partial_evicted, "partial messages dropped, all reasons"},
    {"drop_partial_source_budget", &EngineStats::drop_partial_source_budget,
     "partial messages dropped: their source held too many"},
    {"drop_partial_oldest", &EngineStats::drop_partial_oldest, "partial messages dropped: oldest, table full"},
    {"drop_partial_expired", &EngineStats::drop_partial_expired, "partial messages dropped: incomplete for 1 s"},
    {"idle_sweep_steps", &EngineStats::idle_sweep_steps, "expiry sweep steps run in workers' idle time"},
    {"idle_sweep_expired", &EngineStats::idle_sweep_expired, "expired keys removed by idle-time sweeps"},
    {"malformed", &EngineStats::malformed, "requests whose ops did not decode"},
    {"unknown_opcode", &EngineStats::unknown_opcode, "ops with an unknown opcode"},
    {"too_large", &EngineStats::too_large, "ops refused: key or value over the limit"},
    {"reply_too_large", &EngineStats::reply_too_large, "gets answered too_large: the reply would pass kMaxMessage"},
    {"out_of_memory", &EngineStats::out_of_memory, "writes refused for lack of space"},
    {"cookie_replies", &EngineStats::cookie_replies, "requests answered with a cookie (anti-amplification)"},
};

}  // namespace

void add_index_stats(stats::Registry& reg, const index::Index& idx) {
  using S = index::IndexStats;
  stats::Section<S> s = reg.section<S>([&idx] { return idx.stats(); });
  s.gauge("keys", "live keys (approximate under concurrent writes)", &S::keys)
      .gauge("table_segments", "index table segments", &S::table_segments)
      .gauge("global_depth", "directory global depth", &S::global_depth)
      .gauge("log_segments", "log segments in the pool", &S::log_segments)
      .gauge("log_bytes_live", "bytes of records the index points at", &S::log_bytes_live)
      .gauge("log_bytes_dead", "appended bytes no slot points at", &S::log_bytes_dead)
      .counter("splits", "table segment splits", &S::splits);
  // Space (index/space.h; docs/operations.md, "Sizing a pool").
  s.gauge("pool_capacity_bytes", "bytes the pool's heap can hold", &S::capacity_bytes)
      .gauge("pool_free_bytes", "capacity minus every allocated object", &S::free_bytes)
      .gauge("live_limit_bytes", "capacity x (1 - reserve)", &S::live_limit_bytes)
      .counter("bytes_appended", "record bytes written by workers since open", &S::bytes_appended)
      .counter("cleaner_bytes_copied", "live record bytes relocated by the cleaner", &S::cleaner_bytes_copied)
      .counter("cleaner_bytes_freed", "log segment bytes returned to the pool", &S::cleaner_bytes_freed)
      .counter("cleaner_segments_freed", "log segments freed by the cleaner", &S::cleaner_segments_freed)
      .counter("cleaner_segments_freed_empty", "of which had nothing live", &S::cleaner_segments_freed_empty)
      .real("write_amplification", "(bytes_appended + cleaner_bytes_copied) / bytes_appended", 3,
            &S::write_amplification)
      .counter("evictions", "live keys evicted to make room", &S::evictions)
      .counter("expired_reclaimed", "expired keys dropped by the cleaner", &S::expired_reclaimed)
      .counter("backpressure_waits", "bursts that waited for the cleaner", &S::backpressure_waits)
      .counter("backpressure_wait_us", "total time bursts waited for the cleaner", &S::backpressure_wait_us)
      .counter("refused_writes_live_full", "writes refused: live data above the limit", &S::refused_live_full)
      .counter("refused_writes_cleaner_behind", "writes refused: no room within max_wait_ms",
               &S::refused_cleaner_behind);
  // Open and crash repair (index/repair.cc); keys is exact once index_repair_done is 1.
  s.gauge("index_open_us", "duration of Index::open",
          [](const S& x) { return static_cast<uint64_t>(x.open_ms * 1000.0); })
      .gauge("index_repair_us", "from open until crash repair finished (0: none)",
             [](const S& x) { return static_cast<uint64_t>(x.repair_ms * 1000.0); })
      .gauge("index_repair_done", "1 once no table segment awaits crash repair", &S::repair_done)
      .gauge("recovery_pending_segments", "table segments not yet repaired", &S::recovery_pending_segments)
      .counter("recovery_segments_lazy", "table segments repaired on first touch", &S::recovery_segments_lazy)
      .counter("recovery_segments_background", "table segments repaired by the background pass",
               &S::recovery_segments_background)
      .counter("recovery_bad_records", "slots naming a torn or foreign record, made dead by repair",
               &S::recovery_bad_records)
      .counter("read_bad_records", "records that failed their checksum when read (answered as a miss)",
               &S::read_bad_records);
}

void add_engine_counters(stats::Registry& reg, const stats::Workers<EngineStats>& workers) {
  for (const Counter& c : kEngineCounters) reg.counter(c.name, c.help, workers.summed(c.field));
}

}  // namespace ferrite::server
