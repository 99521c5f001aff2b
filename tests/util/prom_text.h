// The tests' one parser of Prometheus text exposition format 0.0.4 (what
// stats::render_prometheus writes and ferrited's /metrics serves), strict
// about what a scraper rejects: every sample's family has one # HELP and one
// # TYPE line before its sample, names match [a-zA-Z_:][a-zA-Z0-9_:]*, a
// family appears once, each value parses as a float (NaN, +Inf, -Inf
// included) and a counter's value is not negative. Written from the format's
// description, independently of the renderer it checks.
//
// Thread safety: pure functions.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace ferrite::testing {

struct PromMetric {
  std::string help;    // unescaped
  std::string type;    // "counter", "gauge", ...
  std::string labels;  // the text between { and } (escapes kept), "" without
  double value = 0;
};

struct PromText {
  std::map<std::string, PromMetric> metrics;
  std::string error;  // the first violation ("" if none), with its line
  bool ok() const { return error.empty(); }
  bool has(const std::string& name) const { return metrics.count(name) != 0; }
  // The value, or NaN when the metric is absent (fails any comparison).
  double operator[](const std::string& name) const {
    auto it = metrics.find(name);
    return it == metrics.end() ? std::nan("") : it->second.value;
  }
};

namespace prom_detail {

inline bool valid_name(const std::string& n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

inline bool parse_value(const std::string& s, double* v) {
  if (s == "NaN") return *v = std::nan(""), true;
  if (s == "+Inf") return *v = INFINITY, true;
  if (s == "-Inf") return *v = -INFINITY, true;
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

inline std::string unescape_help(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
      out.push_back(s[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace prom_detail

inline PromText parse_prom_text(const std::string& text) {
  using namespace prom_detail;
  PromText pt;
  std::map<std::string, PromMetric> pending;  // families with HELP/TYPE but no sample yet
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto fail = [&](const std::string& why) {
    if (pt.error.empty()) pt.error = "line " + std::to_string(n) + ": " + why + ": \"" + line + "\"";
  };
  if (!text.empty() && text.back() != '\n') {
    pt.error = "the text does not end with a newline";
    return pt;
  }
  while (std::getline(in, line) && pt.ok()) {
    ++n;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const std::size_t sp = rest.find(' ');
      const std::string name = rest.substr(0, sp);
      if (!valid_name(name) || sp == std::string::npos) {
        fail("bad metadata line");
        continue;
      }
      if (pt.metrics.count(name)) fail("metadata after the family's sample");
      PromMetric& m = pending[name];
      if (line[2] == 'H') {
        if (!m.help.empty()) fail("second HELP");
        m.help = unescape_help(rest.substr(sp + 1));
      } else {
        if (!m.type.empty()) fail("second TYPE");
        m.type = rest.substr(sp + 1);
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;  // comments are allowed
    std::size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos) {
      fail("no value");
      continue;
    }
    const std::string name = line.substr(0, name_end);
    std::string labels;
    if (line[name_end] == '{') {
      const std::size_t close = line.find("} ", name_end);
      if (close == std::string::npos) {
        fail("unclosed labels");
        continue;
      }
      labels = line.substr(name_end + 1, close - name_end - 1);
      name_end = close + 1;
    }
    auto it = pending.find(name);
    if (!valid_name(name)) fail("bad metric name");
    if (pt.metrics.count(name)) fail("a family named twice");
    if (it == pending.end() || it->second.help.empty() || it->second.type.empty()) {
      fail("sample without HELP and TYPE");
      continue;
    }
    PromMetric m = it->second;
    pending.erase(it);
    m.labels = labels;
    if (!parse_value(line.substr(name_end + 1), &m.value)) fail("value is not a float");
    if (m.type == "counter" && !(m.value >= 0)) fail("negative counter");
    pt.metrics[name] = m;
  }
  if (pt.ok() && !pending.empty()) pt.error = "metadata without a sample: " + pending.begin()->first;
  return pt;
}

}  // namespace ferrite::testing
