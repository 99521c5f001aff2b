// The tests' one parser of stats text ("name value" lines, as ferrited's
// native stats and ferritectl print them). Integer values parse exactly;
// a fractional value (write_amplification 1.294) is kept in `real` and its
// integer part in the map, so one such line does not end the parse.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace ferrite::testing {

struct StatsText {
  std::map<std::string, uint64_t> ints;
  std::map<std::string, double> real;
  uint64_t operator[](const std::string& k) const {
    auto it = ints.find(k);
    return it == ints.end() ? 0 : it->second;
  }
};

inline StatsText parse_stats_text(const std::string& text) {
  StatsText st;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0) continue;
    const std::string name = line.substr(0, sp), value = line.substr(sp + 1);
    char* end = nullptr;
    const double d = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) continue;
    st.real[name] = d;
    st.ints[name] = std::strtoull(value.c_str(), nullptr, 10);
  }
  return st;
}

// name -> integer value, for tests that index it like a map.
inline std::map<std::string, uint64_t> parse_stats(const std::string& text) { return parse_stats_text(text).ints; }

}  // namespace ferrite::testing
