// Records: the immutable key/value entries that workers append to their PMEM
// logs. A record is written once, made durable, and only then pointed at by an
// index slot (invariant 1); it is never modified afterwards.
//
// IMPLEMENTATION DETAILS (media format, little-endian, 8-byte aligned)
//   struct RecordHeader {     // 24 bytes
//     u32 checksum;           // low 32 bits of XXH3 over bytes [4, 24 + klen + vlen)
//     u32 meta;               // key_len (bits 0..7) | value_len (8..28) | kind (29..31)
//     u32 client_flags;       // memcached's opaque flags
//     u32 expiry;             // absolute unix seconds, 0 = never
//     u64 version;            // cas value; unique per write (see Worker)
//   };
//   u8 key[key_len]; u8 value[value_len]; zero padding to a multiple of 8.
// A record whose checksum does not match is torn (a crash hit it before its
// fence) and is never live: no slot can have pointed at it durably.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/cacheline.h"
#include "common/limits.h"
#include "common/hash.h"

namespace ferrite::index {

// Record kinds. kValue: a key's value. kStale: a value marked stale by
// memcached's md I / ms I (served, with the X flag, until rewritten); the
// first kStale record of a pool is written only after the pool's incompat
// feature bit pmem::kIncompatStaleRecords is durable (IndexImpl::
// ensure_stale_feature), so a build that would not know the kind refuses the
// pool instead of dropping such records as foreign. kTombstone is reserved
// (deletes set a slot bit instead).
enum class RecordKind : uint32_t { kValue = 0, kTombstone = 1, kStale = 2 };
constexpr bool is_value_kind(RecordKind k) noexcept { return k == RecordKind::kValue || k == RecordKind::kStale; }

struct RecordHeader {
  uint32_t checksum;
  uint32_t meta;
  uint32_t client_flags;
  uint32_t expiry;
  uint64_t version;

  uint32_t key_len() const noexcept { return meta & 0xffu; }
  uint32_t value_len() const noexcept { return (meta >> 8) & 0x1fffffu; }
  RecordKind kind() const noexcept { return static_cast<RecordKind>(meta >> 29); }
  const char* key_ptr() const noexcept { return reinterpret_cast<const char*>(this) + sizeof(RecordHeader); }
  const char* value_ptr() const noexcept { return key_ptr() + key_len(); }
  std::string_view key() const noexcept { return {key_ptr(), key_len()}; }
  // key() == k without a call into libc's memcmp for keys of 8 to 16 bytes
  // (two overlapping 8-byte loads a side); a lookup compares at least once.
  bool key_is(std::string_view k) const noexcept {
    const std::size_t n = k.size();
    if (n != key_len()) return false;
    const char* a = key_ptr();
    if (n >= 8 && n <= 16) {
      uint64_t a0, a1, b0, b1;
      std::memcpy(&a0, a, 8);
      std::memcpy(&a1, a + n - 8, 8);
      std::memcpy(&b0, k.data(), 8);
      std::memcpy(&b1, k.data() + n - 8, 8);
      return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return std::memcmp(a, k.data(), n) == 0;
  }
  std::string_view value() const noexcept { return {value_ptr(), value_len()}; }
  std::size_t payload_size() const noexcept { return sizeof(RecordHeader) + key_len() + value_len(); }
  std::size_t size() const noexcept { return round_up(payload_size(), 8); }
};
static_assert(sizeof(RecordHeader) == 24, "record header is 24 bytes on media");

inline constexpr uint32_t kValueLenBits = 21;
static_assert((std::size_t{1} << kValueLenBits) > limits::kMaxValueLen, "value_len field holds the largest value");
static_assert(limits::kMaxKeyLen <= 0xffu, "key_len field (8 bits) holds the longest key");

constexpr std::size_t record_size(std::size_t klen, std::size_t vlen) noexcept {
  return round_up(sizeof(RecordHeader) + klen + vlen, 8);
}

inline uint32_t record_checksum(const RecordHeader* r) noexcept {
  return static_cast<uint32_t>(hash_bytes(reinterpret_cast<const char*>(r) + 4, r->payload_size() - 4));
}

// Writes a record at dst (which has record_size(key, v1 + v2 + spaces)
// bytes). The value is the concatenation v1 + v2 followed by `spaces` space
// characters (append/prepend build it without a copy; incr/decr pad with
// spaces as memcached does).
inline RecordHeader* write_record(char* dst, RecordKind kind, std::string_view key, std::string_view v1,
                                  std::string_view v2, uint32_t flags, uint32_t expiry, uint64_t version,
                                  std::size_t spaces = 0) noexcept {
  auto* r = reinterpret_cast<RecordHeader*>(dst);
  const std::size_t vlen = v1.size() + v2.size() + spaces;
  // The lengths fit their meta fields (8 and 21 bits): callers bound keys and
  // values (index.h kMaxKeyLen, kMaxValueLen) before they append.
  FERRITE_DCHECK(!key.empty() && key.size() <= 0xffu && vlen < (std::size_t{1} << kValueLenBits));
  r->meta = static_cast<uint32_t>(key.size()) | (static_cast<uint32_t>(vlen) << 8) |
            (static_cast<uint32_t>(kind) << 29);
  r->client_flags = flags;
  r->expiry = expiry;
  r->version = version;
  char* p = dst + sizeof(RecordHeader);
  if (!key.empty()) std::memcpy(p, key.data(), key.size());
  p += key.size();
  if (!v1.empty()) std::memcpy(p, v1.data(), v1.size());
  p += v1.size();
  if (!v2.empty()) std::memcpy(p, v2.data(), v2.size());
  p += v2.size();
  if (spaces != 0) std::memset(p, ' ', spaces);
  p += spaces;
  const std::size_t pad = record_size(key.size(), vlen) - (sizeof(RecordHeader) + key.size() + vlen);
  if (pad != 0) std::memset(p, 0, pad);
  r->checksum = record_checksum(r);
  return r;
}

// True if the record at r (with at most max_len readable bytes) is complete.
inline bool record_valid(const RecordHeader* r, std::size_t max_len) noexcept {
  if (max_len < sizeof(RecordHeader)) return false;
  if (r->key_len() == 0 || r->payload_size() > max_len) return false;
  return r->checksum == record_checksum(r);
}

}  // namespace ferrite::index
