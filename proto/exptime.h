// memcached's exptime rule, which both protocols follow (the native
// protocol's exptime field means what memcached's does): the one function
// that turns a client's exptime into the absolute time the index stores.
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>

namespace ferrite::proto {

// Relative exptimes above this are absolute unix times (memcached's
// REALTIME_MAXDELTA, 30 days).
inline constexpr int64_t kMaxRelativeExptime = 30 * 24 * 3600;

// 0 never; negative already expired; up to kMaxRelativeExptime seconds
// relative to now_unix; beyond, an absolute unix time. Returns the absolute
// unix time for the index (0 = never, 1 = long past), saturated at
// UINT32_MAX.
constexpr uint32_t absolute_exptime(int64_t exptime, uint64_t now_unix) noexcept {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;  // long past: expired at once
  if (exptime <= kMaxRelativeExptime) {
    const uint64_t t = now_unix + static_cast<uint64_t>(exptime);
    return t > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(t);
  }
  return exptime > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(exptime);
}

}  // namespace ferrite::proto
