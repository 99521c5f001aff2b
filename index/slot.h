// Index slots: one 8-byte word per entry, in one-cache-line buckets in PMEM.
//
//   bit 63      dirty: published but not yet fenced (link-and-persist, inv. 2)
//   bit 62      moved: frozen by a segment split; writers must not CAS it
//   bit 61      tombstone: the key is deleted; the record only names the key
//               (a delete sets this bit on the key's last record, writing no
//               new record, so deletes need no log space)
//   bits 60..45 tag: 16 hash bits, so most non-matching slots cost no record read
//   bits 44..0  record offset / 8 (records are 8-byte aligned): pools to 256 TiB
//   0           empty (never held a key in this segment's lifetime)
//
// Reader rule for dirty: a reader that returns data reached through a dirty
// slot first writes the slot's line back and fences (in its own burst fence),
// so no client sees a value that a crash could take back.
#pragma once

#include <cstdint>

namespace ferrite::index::slot {

inline constexpr uint64_t kDirty = 1ull << 63;
inline constexpr uint64_t kMoved = 1ull << 62;
inline constexpr uint64_t kTombstone = 1ull << 61;
inline constexpr unsigned kTagShift = 45;
inline constexpr uint64_t kTagMask = 0xffffull << kTagShift;
inline constexpr uint64_t kOffMask = (1ull << 45) - 1;
inline constexpr uint64_t kMaxPoolBytes = (kOffMask + 1) * 8;

// A dead tombstone: occupies its slot (T1/T2 of table.h still hold) but names
// no record and matches no key. The cleaner leaves these where a deleted key's
// record was, so the record's segment can be freed without copying it.
inline constexpr uint64_t kDead = kTombstone;

constexpr uint64_t make(uint64_t rec_off, uint16_t tag, bool tombstone) noexcept {
  return (rec_off >> 3) | (static_cast<uint64_t>(tag) << kTagShift) | (tombstone ? kTombstone : 0);
}
constexpr uint64_t rec_off(uint64_t s) noexcept { return (s & kOffMask) << 3; }
constexpr uint16_t tag(uint64_t s) noexcept { return static_cast<uint16_t>((s & kTagMask) >> kTagShift); }
constexpr bool is_empty(uint64_t s) noexcept { return (s & ~(kDirty | kMoved)) == 0; }
constexpr bool is_dirty(uint64_t s) noexcept { return (s & kDirty) != 0; }
constexpr bool is_moved(uint64_t s) noexcept { return (s & kMoved) != 0; }
constexpr bool is_tombstone(uint64_t s) noexcept { return (s & kTombstone) != 0; }
constexpr bool is_dead(uint64_t s) noexcept { return (s & (kTombstone | kTagMask | kOffMask)) == kTombstone; }
// The entry without its transient bits (dirty, moved).
constexpr uint64_t entry(uint64_t s) noexcept { return s & ~(kDirty | kMoved); }

// Hash bit use (one 64-bit XXH3 per key):
//   bits 63..(64-G)  directory index (G = global depth, MSB first)
//   bits 0..7        first bucket in the segment; bits 8..15 second bucket
//   bits 16..31      tag
constexpr uint16_t tag_of(uint64_t h) noexcept { return static_cast<uint16_t>(h >> 16); }

}  // namespace ferrite::index::slot
