// memcached's stats (see engine.h): the STAT entries in McEngine's stats
// registry (common/stats.h), stats settings, the per-class answers (stats
// items, slabs, sizes) and stats detail, and stats reset. Text `stats` renders the registry as STAT lines,
// binary stat sends one packet per entry; the counters are McStats (per
// context, summed on read) and McEngine's connection counters. ferrited
// includes the native engine's registry after these entries, prefixed
// "ferrite_".
//
// Thread safety: register_stats runs in the constructor; the read functions
// load relaxed atomics and call Index::stats(), so a reply may mix values
// from slightly different moments. Contexts are all added before serving.
#include "server/memcached/engine.h"

#include <sys/resource.h>
#include <unistd.h>

#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;
using proto::mc::Request;

namespace {

struct McCounter {
  const char* name;
  std::atomic<uint64_t> McStats::*field;
  const char* help;
  bool reset;  // zeroed by `stats reset`
};

// memcached's per-context counters, in STAT order.
constexpr McCounter kMcCounters[] = {
    {"cmd_get", &McStats::cmd_get, "keys requested by get commands", true},
    {"cmd_set", &McStats::cmd_set, "storage commands", true},
    {"cmd_flush", &McStats::cmd_flush, "flush_all commands", true},
    {"cmd_touch", &McStats::cmd_touch, "keys touched (touch, gat, gats)", true},
    {"cmd_meta", &McStats::cmd_meta, "meta commands", true},
    {"get_hits", &McStats::get_hits, "keys requested and found", true},
    {"get_misses", &McStats::get_misses, "keys requested and not found", true},
    {"delete_misses", &McStats::delete_misses, "deletes of a missing key", true},
    {"delete_hits", &McStats::delete_hits, "deletes that removed a key", true},
    {"incr_misses", &McStats::incr_misses, "incr of a missing key", true},
    {"incr_hits", &McStats::incr_hits, "incr of an existing key", true},
    {"decr_misses", &McStats::decr_misses, "decr of a missing key", true},
    {"decr_hits", &McStats::decr_hits, "decr of an existing key", true},
    {"cas_misses", &McStats::cas_misses, "cas of a missing key", true},
    {"cas_hits", &McStats::cas_hits, "cas that stored", true},
    {"cas_badval", &McStats::cas_badval, "cas refused: the CAS value did not match", true},
    {"touch_hits", &McStats::touch_hits, "touches of an existing key", true},
    {"touch_misses", &McStats::touch_misses, "touches of a missing key", true},
    {"store_too_large", &McStats::store_too_large, "storage commands refused: value too large", true},
    {"store_no_memory", &McStats::store_no_memory, "storage commands refused: out of memory", true},
    {"bytes_read", &McStats::bytes_read, "bytes read from clients", false},
    {"bytes_written", &McStats::bytes_written, "bytes sent to clients", false},
};

// Ferrite's own per-context counters (no memcached equivalent), in STAT order.
constexpr McCounter kFerriteCounters[] = {
    {"ferrite_errors", &McStats::errors, "ERROR replies (unknown command)", false},
    {"ferrite_client_errors", &McStats::client_errors, "CLIENT_ERROR replies", false},
    {"ferrite_out_of_memory", &McStats::out_of_memory, "writes refused for lack of space", false},
    {"ferrite_udp_requests", &McStats::udp_requests, "UDP request datagrams", false},
    {"ferrite_udp_drop_multi_datagram", &McStats::udp_drop_multi, "UDP requests of several datagrams (dropped)", false},
    {"ferrite_udp_drop_short", &McStats::udp_drop_short, "UDP datagrams shorter than the frame header", false},
    {"ferrite_udp_drop_not_allowed", &McStats::udp_drop_not_allowed, "UDP datagrams from outside server.allow", false},
    {"ferrite_udp_incomplete_request", &McStats::udp_incomplete, "UDP datagrams ending inside a request", false},
    {"ferrite_udp_reply_datagrams", &McStats::udp_reply_datagrams, "UDP reply datagrams", false},
    {"ferrite_udp_batched_requests", &McStats::udp_batched_requests, "UDP gets executed in a batch", false},
    {"ferrite_binary_connections", &McStats::binary_connections, "TCP connections speaking the binary protocol", false},
    {"ferrite_udp_reply_too_large", &McStats::udp_reply_too_large, "UDP replies refused: larger than udp_max_reply", false},
    {"ferrite_tcp_output_paused", &McStats::tcp_output_paused, "TCP reads paused: output over its bound", false},
    {"ferrite_get_chunks_paused", &McStats::get_chunks_paused, "multi-key gets paused between chunks", false},
    {"ferrite_http_refused", &McStats::http_refused,
     "lines that looked like HTTP: TCP connection closed, UDP datagram dropped, no reply", false},
    // Pipelined TCP requests in shared index bursts (batch.cc, issue 18).
    {"ferrite_tcp_batched_requests", &McStats::tcp_batched_requests,
     "pipelined TCP text requests executed in an index burst with others", false},
    {"ferrite_tcp_batches", &McStats::tcp_batches, "index bursts of several pipelined TCP text requests", false},
};

// memcached's -m: the pool's size when the caller gave it, else what the
// index's heap can hold.
uint64_t limit_maxbytes(const McOptions& o, uint64_t capacity) { return o.pool_bytes != 0 ? o.pool_bytes : capacity; }

}  // namespace

void McEngine::register_stats() {
  // memcached 1.6.18's `stats` keys that Ferrite gives, in memcached's order
  // (docs/memcached.md lists the others), then Ferrite's own, ferrite_*.
  stats::Registry& r = registry_;
  r.gauge("pid", "process id", [] { return static_cast<uint64_t>(getpid()); });
  r.section<uint64_t>([] { return unix_now_s(); })  // one clock read for both
      .gauge("uptime", "seconds since the memcached engine started", [this](uint64_t now) { return now - start_unix_; })
      .gauge("time", "unix time", [](uint64_t now) { return now; });
  r.text("version", "memcached version emulated", [] { return std::string(kMcVersion); });
  r.gauge("pointer_size", "bits of a pointer", [] { return sizeof(void*) * 8; });
  // memcached's "seconds.microseconds" (%ld.%06ld): six fixed decimals.
  r.section<rusage>([] {
     rusage u{};
     (void)::getrusage(RUSAGE_SELF, &u);
     return u;
   })
      .real("rusage_user", "user CPU seconds of the process", 6,
            [](const rusage& u) { return static_cast<double>(u.ru_utime.tv_sec) + u.ru_utime.tv_usec / 1e6; })
      .real("rusage_system", "system CPU seconds of the process", 6,
            [](const rusage& u) { return static_cast<double>(u.ru_stime.tv_sec) + u.ru_stime.tv_usec / 1e6; });
  r.gauge("max_connections", "TCP connections accepted at most (memcached: -c)",
          [this] { return max_connections.load(std::memory_order_relaxed); });
  r.gauge("curr_connections", "open TCP connections", [this] { return curr_connections.load(std::memory_order_relaxed); });
  r.counter("total_connections", "TCP connections accepted", [this] { return total_connections.load(std::memory_order_relaxed); });
  r.counter("rejected_connections", "TCP connections refused (allowlist, or server.max_connections open)",
            [this] { return rejected_connections.load(std::memory_order_relaxed); });
  const stats::Workers<McStats> w = stat_workers();
  for (const McCounter& c : kMcCounters) r.counter(c.name, c.help, w.summed(c.field));
  using S = index::IndexStats;
  r.section<S>([this] { return idx_.stats(); })
      .gauge("limit_maxbytes", "the pool's size (memcached: -m)",
             [this](const S& s) { return limit_maxbytes(opts_, s.capacity_bytes); })
      .gauge("threads", "execution contexts (worker threads)", [this](const S&) { return contexts_.size(); })
      .gauge("bytes", "bytes of live records", [](const S& s) { return s.log_bytes_live; })
      .gauge("curr_items", "live keys", [this](const S&) { return idx_.count(); })
      .counter("total_items", "items stored since start", [w](const S&) { return w.sum(&McStats::total_items); })
      .counter("evictions", "live keys evicted to make room", [](const S& s) { return s.evictions; })
      .counter("reclaimed", "expired keys dropped by the cleaner", [](const S& s) { return s.expired_reclaimed; });
  for (const McCounter& c : kFerriteCounters) r.counter(c.name, c.help, w.summed(c.field));
  r.counter("ferrite_tcp_accept_paused", "TCP accepts paused: out of file descriptors",
            [this] { return accept_paused.load(std::memory_order_relaxed); });
  r.gauge("ferrite_tcp_input_peak", "most input bytes one TCP connection held (bounded by its budget)",
          [this] { return tcp_input_peak.load(std::memory_order_relaxed); });
  stats_.include(registry_, "");
}

std::string McEngine::stats_lines() const { return stats::render_memcached(stats_.sample()); }

void McEngine::exec_stats(McContext& cx, const Request& r, std::string* out) {
  if (r.stats_arg.empty()) {
    out->append(stats_lines());
    out->append("END\r\n");
  } else if (r.stats_arg == "reset") {
    reset_stats();
    crlf(out, "RESET");
  } else if (r.stats_arg == "settings") {
    // The settings Ferrite has, in memcached 1.6.18's order.
    out->append("STAT maxbytes ");
    append_num(out, limit_maxbytes(opts_, idx_.stats().capacity_bytes));
    out->append("\r\nSTAT maxconns ");
    append_num(out, max_connections.load(std::memory_order_relaxed));
    out->append("\r\nSTAT evictions ");
    out->append(idx_.space_options().evict ? "on\r\n" : "off\r\n");
    out->append("STAT num_threads ");
    append_num(out, contexts_.size());
    out->append("\r\nSTAT cas_enabled yes\r\nSTAT item_size_max 1048576\r\nSTAT flush_enabled yes\r\nEND\r\n");
  } else if (each_class_stat(r.stats_arg, [&](std::string_view name, std::string_view value) {
               out->append("STAT ").append(name).append(" ").append(value).append("\r\n");
             })) {
    out->append("END\r\n");
  } else if (r.stats_arg == "detail") {
    exec_stats_detail(r.stats_arg2, out);
  } else if (r.stats_arg == "conns") {
    crlf(out, "END");  // connections are not listed (docs/memcached.md)
  } else if (r.stats_arg == "sizes_enable" || r.stats_arg == "sizes_disable") {
    // memcached's refusal (its reply when it cannot track sizes), ended with
    // END where memcached 1.6.18 ends these two without it.
    out->append(r.stats_arg == "sizes_enable" ? "STAT sizes_status error\r\nSTAT sizes_error not_supported\r\n"
                                              : "STAT sizes_status disabled\r\n");
    out->append("END\r\n");
  } else {
    inc(cx.stats_.errors);
    crlf(out, "ERROR");
  }
}

void McEngine::reset_stats() {
  prefix_stats_.clear();  // as memcached's stats reset
  for (auto& c : contexts_) {
    for (const McCounter& k : kMcCounters) {
      if (k.reset) (c->stats_.*k.field).store(0, std::memory_order_relaxed);
    }
    c->stats_.total_items.store(0, std::memory_order_relaxed);  // memcached resets it too
  }
  total_connections.store(0, std::memory_order_relaxed);  // as memcached's
  rejected_connections.store(0, std::memory_order_relaxed);
}

// ---- stats items / slabs / sizes, stats detail ----
// Per size class from the index's item census (index/census.h: kept by every
// write, saved at a clean close), by memcached's default classes (items.h).
// Only what Ferrite can say is given (docs/memcached.md lists the rest):
// items:<c>:number and items:<c>:mem_requested (memcached's item sizes,
// summed) for classes holding items; <c>:chunk_size (the class's largest
// item) and <c>:used_chunks (its items), active_slabs (classes holding
// items) and total_malloced (bytes of the pool the index holds). sizes:
// memcached's answer with its size histogram off.
bool McEngine::each_class_stat(std::string_view section,
                               const std::function<void(std::string_view name, std::string_view value)>& fn) const {
  if (section == "sizes") {
    fn("sizes_status", "disabled");
    return true;
  }
  if (section != "items" && section != "slabs") return false;
  const std::vector<index::ClassCount> census = idx_.item_census();
  const std::span<const uint32_t> chunks = memcached_chunk_sizes();
  if (census.size() != chunks.size()) return true;  // the index counts no classes: nothing to say
  std::string name, value;
  auto emit = [&](unsigned cls, std::string_view what, uint64_t v) {
    name.clear();
    if (section == "items") name.append("items:");
    append_num(&name, cls);
    name.append(":").append(what);
    value.clear();
    append_num(&value, v);
    fn(name, value);
  };
  uint64_t active = 0;
  for (unsigned c = 0; c < census.size(); ++c) {
    if (census[c].items == 0) continue;
    ++active;
    if (section == "items") {
      emit(c + 1, "number", census[c].items);
      emit(c + 1, "mem_requested", census[c].bytes);
    } else {
      emit(c + 1, "chunk_size", chunks[c]);
      emit(c + 1, "used_chunks", census[c].items);
    }
  }
  if (section == "slabs") {
    const index::IndexStats st = idx_.stats();
    value.clear();
    append_num(&value, active);
    fn("active_slabs", value);
    value.clear();
    append_num(&value, st.capacity_bytes - std::min(st.capacity_bytes, st.free_bytes));
    fn("total_malloced", value);
  }
  return true;
}

void McEngine::exec_stats_detail(std::string_view arg, std::string* out) {
  if (arg == "on" || arg == "off") {
    prefix_stats_.set_enabled(arg == "on");
    crlf(out, "OK");
  } else if (arg == "dump") {
    out->append(prefix_stats_.dump());
  } else {
    crlf(out, "CLIENT_ERROR usage: stats detail on|off|dump");
  }
}

void McEngine::each_stat(const std::function<void(std::string_view name, std::string_view value)>& fn) const {
  for (const stats::Sample& s : stats_.sample()) fn(s.name, stats::format_value(s));
}

}  // namespace ferrite::server
