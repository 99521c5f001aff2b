// ferrite-bench's per-second timeline and CSV/JSON quoting (see timeline.h).
#include "perf/bench/timeline.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ferrite::bench {

Counts& Counts::operator+=(const Counts& o) noexcept {
  ops += o.ops;
  sets_ok += o.sets_ok;
  sets_failed += o.sets_failed;
  get_hits += o.get_hits;
  get_misses += o.get_misses;
  lost += o.lost;
  errors += o.errors;
  return *this;
}

Counts Counts::operator-(const Counts& o) const noexcept {
  Counts d;
  d.ops = ops - o.ops;
  d.sets_ok = sets_ok - o.sets_ok;
  d.sets_failed = sets_failed - o.sets_failed;
  d.get_hits = get_hits - o.get_hits;
  d.get_misses = get_misses - o.get_misses;
  d.lost = lost - o.lost;
  d.errors = errors - o.errors;
  return d;
}

namespace {

double rate(const Counts& c, double length_s) { return length_s > 0 ? static_cast<double>(c.ops) / length_s : 0; }

}  // namespace

std::vector<TimelineRow> timeline_rows(const std::vector<TimelineMark>& marks, double min_tail_s) {
  std::vector<TimelineRow> rows;
  if (marks.size() < 2) return rows;
  const uint64_t t0 = marks.front().t_ns;
  for (std::size_t i = 1; i < marks.size(); ++i) {
    const TimelineMark& a = marks[i - 1];
    const TimelineMark& b = marks[i];
    const double offset = static_cast<double>(b.t_ns - t0) / 1e9;
    const double length = static_cast<double>(b.t_ns - a.t_ns) / 1e9;
    const bool last = i + 1 == marks.size();
    // 1e-9 s of slack: a mark taken exactly on a boundary is that boundary.
    unsigned second = static_cast<unsigned>(last ? std::lround(offset) : std::floor(offset + 1e-9));
    if (!rows.empty()) second = std::max(second, rows.back().second + 1);
    second = std::max(second, 1u);
    const Counts c = b.total - a.total;
    if (last && !rows.empty() && length < min_tail_s) {
      TimelineRow& prev = rows.back();
      prev.c += c;
      prev.length_s += length;
      prev.ops_per_s = rate(prev.c, prev.length_s);
      break;
    }
    rows.push_back(TimelineRow{second, length, c, rate(c, length)});
  }
  return rows;
}

void merge_timeline(std::vector<TimelineRow>* a, const std::vector<TimelineRow>& b) {
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i >= a->size()) {
      a->push_back(b[i]);
      continue;
    }
    TimelineRow& r = (*a)[i];
    r.c += b[i].c;
    r.ops_per_s += b[i].ops_per_s;
    r.length_s = std::max(r.length_s, b[i].length_s);
    r.second = std::max(r.second, b[i].second);
  }
}

std::string timeline_csv(const std::vector<TimelineRow>& rows) {
  std::string s(kTimelineHeader);
  for (const auto& r : rows) {
    s += fmt::format("{},{},{:.1f},{},{},{},{},{},{}\n", r.second, r.c.ops, r.ops_per_s, r.c.sets_ok, r.c.sets_failed,
                     r.c.get_hits, r.c.get_misses, r.c.lost, r.c.errors);
  }
  return s;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  q += '"';
  return q;
}

std::string json_string(std::string_view s) {
  // nlohmann-json's writer; bytes that are not UTF-8 become U+FFFD.
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ferrite::bench
