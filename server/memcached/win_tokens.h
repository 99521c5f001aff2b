// memcached's win tokens (meta mg N / R / W / Z, protocol.txt "stale-while-
// revalidate"): which item versions have had their one win token handed out.
//
//   WinTokens t;
//   if (t.try_win(key, version)) reply W;     // the first caller for this version
//   else if (t.sent(key, version)) reply Z;   // someone else won already
//   t.carry(key, old_version, new_version);   // a write that keeps the item's state
//
// An entry is (key -> the version whose token was sent). A token belongs to
// one version of an item: any write that makes a new version (set, delete,
// md I) ends it, without touching this table, because the entry's version no
// longer matches; writes that memcached applies to the item in place (touch,
// incr, ms I on an older CAS) call carry(). Versions are 0 for no item.
//
// DRAM only, by design: a token is a hint between live clients about who
// refreshes a value, not data. After a restart every item may hand out one
// more token (docs/memcached.md). Entries of versions that are gone stay
// until the shard is full; then its oldest quarter is dropped, so the table
// stays bounded (kMaxEntries keys) whatever clients do. A dropped entry of a
// live version lets that version hand out a second token: the table holds a
// million keys, so only a client that makes tokens for over a million keys
// without rewriting them sees that.
//
// Thread safety: all members may be called from any thread; one mutex per
// shard. While no token is outstanding, every call is one relaxed load.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/cacheline.h"
#include "common/hash.h"

namespace ferrite::server {

class WinTokens {
 public:
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kMaxEntries = 1u << 20;

  // True if no token was sent for (key, version) yet: records one, and the
  // caller hands it out (W). Exactly one caller per version gets true.
  bool try_win(std::string_view key, uint64_t version) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      Entry& e = it->second;
      if (e.pending || e.version[0] == version || e.version[1] == version) return false;
      // Keep the previous version too: a client that read an older version
      // while a newer one was written and won must not erase the newer one.
      e.version[1] = e.version[0];
      e.version[0] = version;
      e.stamp = ++s.clock;
      return true;
    }
    if (s.map.size() >= kMaxEntries / kShards) evict_oldest(s);
    s.map.emplace(std::string(key), Entry{{version, 0}, ++s.clock, false});
    entries_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Vivify (mg N on a miss): the token of the item about to be created is
  // taken before it exists, so no reader can see the new item without a
  // token. True: the caller holds it and must call resolve() or cancel().
  // False: another vivifier holds it (the caller's reply is Z).
  bool reserve(std::string_view key) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      if (it->second.pending) return false;
      it->second.pending = true;
      it->second.stamp = ++s.clock;
      return true;
    }
    if (s.map.size() >= kMaxEntries / kShards) evict_oldest(s);
    s.map.emplace(std::string(key), Entry{{0, 0}, ++s.clock, true});
    entries_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // The reserved token is version's (the item created, or found). False if
  // that version's token was sent already (another vivifier reserved,
  // created and resolved it between this one's miss and its reserve()).
  bool resolve(std::string_view key, uint64_t version) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto [it, fresh] = s.map.try_emplace(std::string(key), Entry{{0, 0}, ++s.clock, false});
    if (fresh) entries_.fetch_add(1, std::memory_order_relaxed);
    Entry& e = it->second;
    e.pending = false;
    if (e.version[0] == version || e.version[1] == version) return false;
    e.version[1] = e.version[0];
    e.version[0] = version;
    return true;
  }
  void cancel(std::string_view key) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) it->second.pending = false;
  }

  // True if the token of (key, version) was sent (Z).
  bool sent(std::string_view key, uint64_t version) {
    if (entries_.load(std::memory_order_relaxed) == 0) return false;
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.map.find(key);
    return it != s.map.end() &&
           (it->second.pending || it->second.version[0] == version || it->second.version[1] == version);
  }

  // A write replaced version `from` by `to` keeping the item's state: a token
  // sent for `from` counts as sent for `to`.
  void carry(std::string_view key, uint64_t from, uint64_t to) {
    if (from == 0 || entries_.load(std::memory_order_relaxed) == 0) return;
    Shard& s = shard(key);
    std::lock_guard<std::mutex> g(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return;
    for (uint64_t& v : it->second.version) {
      if (v == from) v = to;
    }
  }

  std::size_t size() const noexcept { return entries_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint64_t version[2];  // the versions whose token was sent, newest first (0: none)
    uint64_t stamp;  // insertion order within the shard (eviction)
    bool pending;    // reserved by a vivifier: counts as sent for every version
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept { return hash_bytes(k.data(), k.size()); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  struct alignas(kCacheLine) Shard {
    std::mutex mu;
    Map map;        // GUARDED_BY(mu)
    uint64_t clock = 0;
  };

  Shard& shard(std::string_view key) noexcept { return shards_[hash_bytes(key.data(), key.size()) >> 60]; }
  void evict_oldest(Shard& s) {
    std::vector<uint64_t> stamps;
    stamps.reserve(s.map.size());
    for (const auto& [k, e] : s.map) stamps.push_back(e.stamp);
    auto q = stamps.begin() + static_cast<std::ptrdiff_t>(stamps.size() / 4);
    std::nth_element(stamps.begin(), q, stamps.end());
    const uint64_t cut = *q;
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (it->second.stamp <= cut) {
        it = s.map.erase(it);
        entries_.fetch_sub(1, std::memory_order_relaxed);
      } else {
        ++it;
      }
    }
  }

  static_assert(kShards == 16, "shard() takes the hash's top 4 bits");
  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> entries_{0};
};

}  // namespace ferrite::server
