// memcached's per-prefix statistics (`stats detail on|off|dump`): while on,
// every get (per key, and whether it hit), storage command and delete of a
// key that holds the delimiter ':' is counted under the key's prefix (the
// bytes before the first ':'); keys without one are not counted, as in
// memcached 1.6.18. `stats detail dump` lists what was counted (also after
// `off`), `stats reset` forgets it. At most 65536 prefixes (memcached's
// bound); keys of further prefixes are not counted.
//
// What counts, as memcached 1.6.18 counts it: text get/gets/gat/gats each
// key (hit or not), set/add/replace/append/prepend/cas a set whatever their
// outcome, delete a del whatever its outcome; the binary protocol's get,
// set/add/replace, append/prepend and delete likewise. Meta commands and
// incr/decr/touch are not counted (memcached does not).
//
// Thread safety: any serving thread. While off, a record is one relaxed
// load; while on, it takes one mutex (as memcached takes its stats lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferrite::server {

class PrefixStats {
 public:
  static constexpr char kDelimiter = ':';
  static constexpr std::size_t kMaxPrefixes = 1u << 16;

  bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }
  void set_enabled(bool on) noexcept { enabled_.store(on, std::memory_order_relaxed); }

  void record_get(std::string_view key, bool hit) {
    if (enabled()) record(key, hit ? Kind::kHit : Kind::kGet);
  }
  void record_set(std::string_view key) {
    if (enabled()) record(key, Kind::kSet);
  }
  void record_delete(std::string_view key) {
    if (enabled()) record(key, Kind::kDel);
  }

  // "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n" per prefix, in the
  // order they were first seen, then "END\r\n".
  std::string dump() const;
  void clear();

 private:
  enum class Kind : uint8_t { kGet, kHit, kSet, kDel };
  struct Counts {
    uint64_t get = 0, hit = 0, set = 0, del = 0;
  };
  void record(std::string_view key, Kind k);

  std::atomic<bool> enabled_{false};
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::size_t> index_;  // GUARDED_BY(mu_): prefix -> entries_ position
  std::vector<std::pair<std::string, Counts>> entries_;  // GUARDED_BY(mu_)
};

}  // namespace ferrite::server
