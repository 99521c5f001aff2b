// memcached's stats (see engine.h): the general STAT lines, stats settings
// and the empty per-class answers, and stats reset. The counters are
// McStats (per context) and McEngine's connection counters.
//
// Thread safety: any thread; counters are read with relaxed loads, so a
// reply may mix values from slightly different moments.
#include "server/memcached/engine.h"

#include <unistd.h>

#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

namespace {

// "name value\n" lines (McEngine::set_extra_stats) -> STAT lines.
void append_extra_stats(const std::string& extra, std::string* s) {
  std::string_view v(extra);
  while (!v.empty()) {
    const std::size_t nl = v.find('\n');
    const std::string_view line = v.substr(0, nl);
    if (!line.empty()) {
      *s += "STAT ";
      *s += line;
      *s += "\r\n";
    }
    if (nl == std::string_view::npos) break;
    v.remove_prefix(nl + 1);
  }
}

}  // namespace

std::string McEngine::stats_lines() const {
  std::string s;
  auto stat = [&](std::string_view name, uint64_t v) {
    s += "STAT ";
    s += name;
    s += ' ';
    append_num(&s, v);
    s += "\r\n";
  };
  const uint64_t now = unix_now();
  stat("pid", static_cast<uint64_t>(getpid()));
  stat("uptime", now - start_unix_);
  stat("time", now);
  s += "STAT version ";
  s += kMcVersion;
  s += "\r\n";
  stat("pointer_size", sizeof(void*) * 8);
  stat("curr_connections", curr_connections.load(std::memory_order_relaxed));
  stat("total_connections", total_connections.load(std::memory_order_relaxed));
  stat("rejected_connections", rejected_connections.load(std::memory_order_relaxed));
  stat("cmd_get", sum(&McStats::cmd_get));
  stat("cmd_set", sum(&McStats::cmd_set));
  stat("cmd_flush", sum(&McStats::cmd_flush));
  stat("cmd_touch", sum(&McStats::cmd_touch));
  stat("cmd_meta", sum(&McStats::cmd_meta));
  stat("get_hits", sum(&McStats::get_hits));
  stat("get_misses", sum(&McStats::get_misses));
  stat("delete_misses", sum(&McStats::delete_misses));
  stat("delete_hits", sum(&McStats::delete_hits));
  stat("incr_misses", sum(&McStats::incr_misses));
  stat("incr_hits", sum(&McStats::incr_hits));
  stat("decr_misses", sum(&McStats::decr_misses));
  stat("decr_hits", sum(&McStats::decr_hits));
  stat("cas_misses", sum(&McStats::cas_misses));
  stat("cas_hits", sum(&McStats::cas_hits));
  stat("cas_badval", sum(&McStats::cas_badval));
  stat("touch_hits", sum(&McStats::touch_hits));
  stat("touch_misses", sum(&McStats::touch_misses));
  stat("bytes_read", sum(&McStats::bytes_read));
  stat("bytes_written", sum(&McStats::bytes_written));
  const index::IndexStats is = idx_.stats();
  stat("limit_maxbytes", is.capacity_bytes);  // what the pool can hold (memcached: -m)
  stat("threads", contexts_.size());
  stat("bytes", is.log_bytes_live);
  stat("curr_items", idx_.count());
  stat("evictions", is.evictions);
  stat("reclaimed", is.expired_reclaimed);
  // Ferrite's own counters (no memcached equivalent).
  stat("ferrite_errors", sum(&McStats::errors));
  stat("ferrite_client_errors", sum(&McStats::client_errors));
  stat("ferrite_out_of_memory", sum(&McStats::out_of_memory));
  stat("ferrite_udp_requests", sum(&McStats::udp_requests));
  stat("ferrite_udp_drop_multi_datagram", sum(&McStats::udp_drop_multi));
  stat("ferrite_udp_drop_short", sum(&McStats::udp_drop_short));
  stat("ferrite_udp_drop_not_allowed", sum(&McStats::udp_drop_not_allowed));
  stat("ferrite_udp_incomplete_request", sum(&McStats::udp_incomplete));
  stat("ferrite_udp_reply_datagrams", sum(&McStats::udp_reply_datagrams));
  stat("ferrite_udp_batched_requests", sum(&McStats::udp_batched_requests));
  stat("ferrite_binary_connections", sum(&McStats::binary_connections));
  stat("ferrite_udp_reply_too_large", sum(&McStats::udp_reply_too_large));
  stat("ferrite_tcp_output_paused", sum(&McStats::tcp_output_paused));
  stat("ferrite_get_chunks_paused", sum(&McStats::get_chunks_paused));
  stat("ferrite_tcp_accept_paused", accept_paused.load(std::memory_order_relaxed));
  if (extra_stats_) append_extra_stats(extra_stats_(), &s);
  return s;
}

void McEngine::exec_stats(McContext& cx, const Request& r, std::string* out) {
  if (r.stats_arg.empty()) {
    out->append(stats_lines());
    out->append("END\r\n");
  } else if (r.stats_arg == "reset") {
    reset_stats();
    crlf(out, "RESET");
  } else if (r.stats_arg == "settings") {
    out->append("STAT item_size_max 1048576\r\nSTAT cas_enabled yes\r\nSTAT flush_enabled yes\r\nSTAT evictions ");
    out->append(idx_.space_options().evict ? "on\r\n" : "off\r\n");
    out->append("STAT num_threads ");
    append_num(out, contexts_.size());
    out->append("\r\nEND\r\n");
  } else if (r.stats_arg == "items" || r.stats_arg == "slabs" || r.stats_arg == "sizes" || r.stats_arg == "conns") {
    crlf(out, "END");  // no slab allocator, no per-class data
  } else {
    inc(cx.stats_.errors);
    crlf(out, "ERROR");
  }
}

void McEngine::reset_stats() {
  for (auto& c : contexts_) {
    McStats& st = c->stats_;
    for (auto* f : {&st.cmd_get, &st.get_hits, &st.get_misses, &st.cmd_set, &st.cmd_touch, &st.touch_hits,
                    &st.touch_misses, &st.delete_hits, &st.delete_misses, &st.incr_hits, &st.incr_misses,
                    &st.decr_hits, &st.decr_misses, &st.cas_hits, &st.cas_misses, &st.cas_badval, &st.cmd_flush,
                    &st.cmd_meta}) {
      f->store(0, std::memory_order_relaxed);
    }
  }
}

void McEngine::each_stat(const std::function<void(std::string_view name, std::string_view value)>& fn) const {
  const std::string lines = stats_lines();
  std::string_view v(lines);
  while (!v.empty()) {
    const std::size_t nl = v.find("\r\n");
    std::string_view line = v.substr(0, nl);
    v.remove_prefix(nl == std::string_view::npos ? v.size() : nl + 2);
    if (!line.starts_with("STAT ")) continue;
    line.remove_prefix(5);
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    fn(line.substr(0, sp), line.substr(sp + 1));
  }
}

}  // namespace ferrite::server
