// memcached's rules for the numeric arguments of its commands, as pure
// functions over one token. Classic commands follow memcached 1.6.18's
// util.c (safe_strtol / safe_strtoul / safe_strtoull over strtol & co.),
// so that malformed numbers get memcached's answers; meta flags' numbers
// follow the stricter parse_argument_* rule.
//
// Thread safety: stateless functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferrite::proto::mc {

// Classic commands. Each accepts optional leading white space and one sign,
// decimal digits, then the token's end or white space; a value beyond the
// 64-bit type is refused.
// safe_strtol: a long, stored in 32 bits (exptimes: "4294967296" is 0).
bool read_int32(std::string_view s, int64_t* v) noexcept;
// safe_strtoull: wraps like strtoull; refused if negative as a signed
// number and written with '-' ("-1" refused, "-0" is 0).
bool read_uint64(std::string_view s, uint64_t* v) noexcept;
// safe_strtoul: the same, stored in 32 bits (client flags: "4294967297" is 1).
bool read_uint32(std::string_view s, uint32_t* v) noexcept;
// A data block's length: 0 to INT_MAX - 2 as memcached takes it. memcached
// keeps the low 32 bits of a longer number ("4294967300" reads as 4);
// Ferrite refuses those (docs/memcached.md).
bool read_length(std::string_view s, std::size_t* n) noexcept;

// Meta flags' numbers: digits only, no sign, no overflow (the _i64 form
// allows one sign). Not the rule for a stored counter (index/worker.cc
// parse_counter_value).
bool parse_argument_u64(std::string_view s, uint64_t* v) noexcept;
bool parse_argument_i64(std::string_view s, int64_t* v) noexcept;

}  // namespace ferrite::proto::mc
