// Helpers the memcached front end's files share and nothing else uses: the
// clock, relaxed counter bumps, reply text pieces (numbers, "\r\n" lines,
// memcached's error lines) and the counting of hits and misses. Private to
// server/memcached/ (include it from its .cc files only).
//
// Thread safety: stateless functions; counters are relaxed atomics of the
// calling thread's McContext (summed by stats).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "server/memcached/engine.h"

namespace ferrite::server::mc_detail {

using proto::mc::Cmd;
using proto::mc::MetaMode;
using proto::mc::Parse;
using proto::mc::Request;

inline void inc(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

inline void crlf(std::string* out, std::string_view s) {
  out->append(s);
  out->append("\r\n");
}

inline void append_num(std::string* out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

inline void append_signed(std::string* out, int64_t v) {
  if (v < 0) {
    out->push_back('-');
    append_num(out, static_cast<uint64_t>(-v));
  } else {
    append_num(out, static_cast<uint64_t>(v));
  }
}

inline int64_t ttl_of(uint32_t exptime, uint64_t now) {
  if (exptime == 0) return -1;
  return exptime > now ? static_cast<int64_t>(exptime - now) : 0;
}

// memcached's text, then why (clients match the prefix: libmemcached maps it
// to MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE).
inline constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory storing object";
constexpr bool is_oom(Result r) noexcept { return r == Result::kNoSpace || r == Result::kLiveFull; }
inline std::string_view oom_text(Result r) noexcept {
  if (r == Result::kLiveFull) {
    return "SERVER_ERROR out of memory storing object: live data fills the pool (pool.when_full = \"error\")";
  }
  if (r == Result::kNoSpace) return "SERVER_ERROR out of memory storing object: the cleaner freed no room in time";
  return kOutOfMemory;
}
inline constexpr std::string_view kNonNumeric = "CLIENT_ERROR cannot increment or decrement non-numeric value";

// Hit and miss counters, as memcached counts them.
inline void count_get(McStats& st, bool hit) {
  inc(st.cmd_get);
  inc(hit ? st.get_hits : st.get_misses);
}
inline void count_touch(McStats& st, Result res) {
  inc(st.cmd_touch);
  inc(res == Result::kOk ? st.touch_hits : st.touch_misses);
}
inline void count_delete(McStats& st, Result res) { inc(res == Result::kOk ? st.delete_hits : st.delete_misses); }
// incr/decr: anything but an absent key is a hit (memcached counts a
// non-numeric value as a hit too).
inline void count_arith(McStats& st, bool incr, Result res) {
  inc(res == Result::kNotFound ? (incr ? st.incr_misses : st.decr_misses) : (incr ? st.incr_hits : st.decr_hits));
}
// memcached's total_items: a write that stored an item (created or replaced it).
inline void count_stored(McStats& st, Result res) {
  if (res == Result::kOk) inc(st.total_items);
}
inline void count_cas(McStats& st, Result res) {
  inc(res == Result::kOk ? st.cas_hits : res == Result::kCasMismatch ? st.cas_badval : st.cas_misses);
}

}  // namespace ferrite::server::mc_detail
