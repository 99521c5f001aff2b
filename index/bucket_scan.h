// One bucket's eight slot words (slot.h) reduced to three bit masks (bit i =
// slot i): which slots are candidates for a key's tag (tag equal, not a dead
// tombstone), which are empty, which are dirty. find() (lookup.cc) decides a
// lookup from the masks without a branch per slot.
//
// Two implementations of one definition: scan_bucket_ref() applies slot.h's
// predicates word by word (the definition, and the fallback); scan_bucket()
// computes the same masks with SSE4.1 (x86-64-v2, the build's floor: all
// eight words in four registers, about 60 instructions where the loop
// compiles to about 160, which a lone get pays in full). index/
// bucket_scan_test.cc holds them equal on every class of word.
//
// Pure functions of values already loaded (the caller's acquire loads, A3 in
// lookup.cc): no memory access, no concurrency contract of their own.
#pragma once

#include <cstdint>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

#include "index/slot.h"
#include "index/table.h"

namespace ferrite::index {

struct BucketMasks {
  unsigned match = 0;  // tag equal and not a dead tombstone: the record may hold the key
  unsigned empty = 0;  // slot::is_empty
  unsigned dirty = 0;  // slot::is_dirty
};

inline BucketMasks scan_bucket_ref(const uint64_t (&w)[kSlotsPerBucket], uint16_t tag) noexcept {
  BucketMasks m;
  for (unsigned i = 0; i < kSlotsPerBucket; ++i) {
    const uint64_t v = w[i];
    if (slot::tag(v) == tag && !slot::is_dead(v)) m.match |= 1u << i;
    if (slot::is_empty(v)) m.empty |= 1u << i;
    if (slot::is_dirty(v)) m.dirty |= 1u << i;
  }
  return m;
}

#if defined(__SSE4_1__)
inline BucketMasks scan_bucket(const uint64_t (&w)[kSlotsPerBucket], uint16_t tag) noexcept {
  static_assert(kSlotsPerBucket == 8, "four 2-lane registers");
  const __m128i tag_mask = _mm_set1_epi64x(static_cast<long long>(slot::kTagMask));
  const __m128i tag_want = _mm_set1_epi64x(static_cast<long long>(static_cast<uint64_t>(tag) << slot::kTagShift));
  // is_dead: (v & (kTombstone | kTagMask | kOffMask)) == kTombstone
  const __m128i dead_mask = _mm_set1_epi64x(static_cast<long long>(slot::kTombstone | slot::kTagMask | slot::kOffMask));
  const __m128i dead_want = _mm_set1_epi64x(static_cast<long long>(slot::kTombstone));
  // is_empty: (v & ~(kDirty | kMoved)) == 0
  const __m128i live_bits = _mm_set1_epi64x(static_cast<long long>(~(slot::kDirty | slot::kMoved)));
  const __m128i zero = _mm_setzero_si128();
  __m128i match[4], empty[4], word[4];
  for (unsigned r = 0; r < 4; ++r) {
    const __m128i v = _mm_set_epi64x(static_cast<long long>(w[2 * r + 1]), static_cast<long long>(w[2 * r]));
    const __m128i tag_eq = _mm_cmpeq_epi64(_mm_and_si128(v, tag_mask), tag_want);
    const __m128i dead = _mm_cmpeq_epi64(_mm_and_si128(v, dead_mask), dead_want);
    match[r] = _mm_andnot_si128(dead, tag_eq);
    empty[r] = _mm_cmpeq_epi64(_mm_and_si128(v, live_bits), zero);
    word[r] = v;
  }
  // Lane results are all-ones or zero per 64-bit lane; the dirty bit is the
  // sign of the lane's high half. Gather one 32-bit half per slot (low
  // halves of the masks, high halves of the words), narrow to one byte per
  // slot with signed saturation (which keeps the sign), then movemask.
  auto halves = [](__m128i a, __m128i b, bool high) {
    const __m128 fa = _mm_castsi128_ps(a), fb = _mm_castsi128_ps(b);
    return _mm_castps_si128(high ? _mm_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))
                                 : _mm_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0)));
  };
  const __m128i m16 = _mm_packs_epi32(halves(match[0], match[1], false), halves(match[2], match[3], false));
  const __m128i e16 = _mm_packs_epi32(halves(empty[0], empty[1], false), halves(empty[2], empty[3], false));
  const __m128i d16 = _mm_packs_epi32(halves(word[0], word[1], true), halves(word[2], word[3], true));
  const auto me = static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(m16, e16)));
  const auto d = static_cast<unsigned>(_mm_movemask_epi8(_mm_packs_epi16(d16, zero)));
  return BucketMasks{me & 0xffu, me >> 8, d};
}
#else
inline BucketMasks scan_bucket(const uint64_t (&w)[kSlotsPerBucket], uint16_t tag) noexcept {
  return scan_bucket_ref(w, tag);
}
#endif

}  // namespace ferrite::index
