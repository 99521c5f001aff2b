// PartialTable: the fragmented requests a worker is still collecting, with
// slots shared fairly between sources (issue 15, item 8).
//
// A fragmented message holds a slot from its first fragment until it is
// complete. Slots are bounded (max_partial per worker). Before this table a
// new message was refused when all slots were taken, so one client that kept
// opening messages and never finished them starved every other client. Now:
//
//  E1  Per-source budget: a source (IPv4 address + UDP port) holds at most
//      per_source = min(max_partial, max(2, max_partial / 8)) partial
//      messages. A new message from a source at its budget evicts that
//      source's OWN oldest message (counted: source_budget).
//  E2  Otherwise, when every slot is taken, the oldest message of all is
//      evicted (counted: oldest). A new message always gets a slot.
//  E3  A message incomplete after the timeout is dropped by expire()
//      (counted: expired); the engine calls it from idle time.
// Consequence: a source that opens messages faster than it completes them
// only recycles its own per_source slots; everyone else keeps at least
// max_partial - per_source. A message is lost to E2 only if max_partial newer
// messages were opened while it was incomplete. (Many sources acting together
// can still push that far; the bound is per source, not per host.)
//
// Eviction is O(number of partial messages) at worst (a scan of the age list
// for the source's oldest); max_partial is small (64 by default).
//
// Thread safety: none. One table per worker, used only on that worker's
// thread (_st, as the engine's other per-worker state).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include "proto/native.h"

namespace ferrite::server {

struct PartialKey {
  uint64_t source;  // ip << 16 | port
  uint64_t rid;     // request_id
  bool operator==(const PartialKey&) const = default;
};

struct PartialEvictions {
  uint64_t source_budget = 0;  // E1
  uint64_t oldest = 0;         // E2
  uint64_t expired = 0;        // E3
};

class PartialTable {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PartialTable(std::size_t max_partial);

  std::size_t max_partial() const noexcept { return max_partial_; }
  std::size_t per_source() const noexcept { return per_source_; }
  std::size_t size() const noexcept { return by_key_.size(); }
  std::size_t held_by(uint64_t source) const noexcept;
  bool contains(const PartialKey& key) const noexcept { return by_key_.count(key) != 0; }

  // The message (key)'s reassembly state, opened now if new; opening may
  // evict another message (E1/E2), counted in *ev. Never null.
  proto::Reassembly& find_or_open_st(const PartialKey& key, Clock::time_point now, PartialEvictions* ev);
  // Drops the message (completed or bad); no-op if absent.
  void erase_st(const PartialKey& key);
  // Drops messages opened more than max_age before now (E3); returns how many.
  // `now` must never go backwards between calls (the age list is in opening
  // order, so the expired messages are its prefix).
  std::size_t expire_st(Clock::time_point now, Clock::duration max_age, PartialEvictions* ev);

 private:
  struct Node {
    PartialKey key;
    Clock::time_point started;
    proto::Reassembly r;
  };
  struct KeyHash {
    std::size_t operator()(const PartialKey& k) const noexcept { return k.source * 0x9e3779b97f4a7c15ull ^ k.rid; }
  };
  using Age = std::list<Node>;  // oldest first: messages are appended as they open

  void remove(Age::iterator it);

  std::size_t max_partial_;
  std::size_t per_source_;
  Age age_;
  std::unordered_map<PartialKey, Age::iterator, KeyHash> by_key_;
  std::unordered_map<uint64_t, uint32_t> per_source_count_;  // sources with >= 1 partial message
};

}  // namespace ferrite::server
