// memcached's rules for numeric arguments (see mc_numbers.h).
#include "proto/mc_numbers.h"

namespace ferrite::proto::mc {
namespace {

// isspace() in the C locale.
bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The sign and magnitude of s as strtoull reads it.
bool c_number(std::string_view s, bool* neg, uint64_t* mag) {
  std::size_t i = 0;
  while (i < s.size() && is_c_space(s[i])) ++i;
  *neg = i < s.size() && s[i] == '-';
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t first = i;
  uint64_t v = 0;
  bool over = false;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const auto d = static_cast<uint64_t>(s[i] - '0');
    over = over || v > (UINT64_MAX - d) / 10;
    v = v * 10 + d;
  }
  if (i == first || over || (i < s.size() && !is_c_space(s[i]))) return false;
  *mag = v;
  return true;
}

}  // namespace

bool read_int32(std::string_view s, int64_t* v) noexcept {
  bool neg = false;
  uint64_t mag = 0;
  if (!c_number(s, &neg, &mag) || mag > (neg ? uint64_t{1} << 63 : uint64_t{INT64_MAX})) return false;
  const uint64_t l = neg ? 0 - mag : mag;
  *v = static_cast<int32_t>(static_cast<uint32_t>(l));
  return true;
}

bool read_uint64(std::string_view s, uint64_t* v) noexcept {
  bool neg = false;
  uint64_t mag = 0;
  if (!c_number(s, &neg, &mag)) return false;
  const uint64_t l = neg ? 0 - mag : mag;
  if (static_cast<int64_t>(l) < 0 && s.find('-') != std::string_view::npos) return false;
  *v = l;
  return true;
}

bool read_uint32(std::string_view s, uint32_t* v) noexcept {
  uint64_t l = 0;
  if (!read_uint64(s, &l)) return false;
  *v = static_cast<uint32_t>(l);
  return true;
}

bool read_length(std::string_view s, std::size_t* n) noexcept {
  bool neg = false;
  uint64_t mag = 0;
  if (!c_number(s, &neg, &mag) || (neg && mag != 0) || mag > uint64_t{INT32_MAX} - 2) return false;
  *n = static_cast<std::size_t>(mag);
  return true;
}

bool parse_argument_u64(std::string_view s, uint64_t* v) noexcept {
  if (s.empty() || s.size() > 20) return false;
  uint64_t r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (r > (UINT64_MAX - d) / 10) return false;
    r = r * 10 + d;
  }
  *v = r;
  return true;
}

bool parse_argument_i64(std::string_view s, int64_t* v) noexcept {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t u = 0;
  if (!parse_argument_u64(s, &u) || u > static_cast<uint64_t>(INT64_MAX)) return false;
  *v = neg ? -static_cast<int64_t>(u) : static_cast<int64_t>(u);
  return true;
}

}  // namespace ferrite::proto::mc
