// Result: the hot-path status (parse, lookup, insert, reply). A one-byte enum:
// no allocation, no exceptions, no strings. Human text only via result_name().
#pragma once

#include <cstdint>
#include <string_view>

namespace ferrite {

enum class [[nodiscard]] Result : uint8_t {
  kOk = 0,
  kNotFound,     // key absent (or expired)
  kExists,       // add on a present key
  kNotStored,    // replace/append/prepend on an absent key
  kCasMismatch,  // cas version differs
  kNoSpace,      // no room for the write now (the cleaner could not free any in time): reads go on
  kLiveFull,     // live data fills the pool (above capacity x (1 - reserve)): writes refused, reads go on
  kTooLarge,     // key or value beyond documented limits
  kBadKey,       // empty key
  kNotNumeric,   // incr/decr on a value that is not a decimal u64
  kRetry,        // transient: caller retries (e.g. growth in progress)
  kMalformed,    // wire input could not be decoded
};

constexpr std::string_view result_name(Result r) noexcept {
  switch (r) {
    case Result::kOk: return "ok";
    case Result::kNotFound: return "not found";
    case Result::kExists: return "exists";
    case Result::kNotStored: return "not stored";
    case Result::kCasMismatch: return "cas mismatch";
    case Result::kNoSpace: return "out of memory";
    case Result::kLiveFull: return "out of memory: live data fills the pool";
    case Result::kTooLarge: return "too large";
    case Result::kBadKey: return "bad key";
    case Result::kNotNumeric: return "not numeric";
    case Result::kRetry: return "retry";
    case Result::kMalformed: return "malformed";
  }
  return "unknown";
}

}  // namespace ferrite
