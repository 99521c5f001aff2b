// ferrite-bench's per-second timeline (--timeline FILE) and the CSV field
// quoting its result rows share: the runner marks its cumulative counters
// about every second of the measurement window; timeline_rows() turns the
// marks into one row per interval with a rate over the interval's real
// length.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferrite::bench {

// The counters a timeline row carries (ops: ops in complete replies).
struct Counts {
  uint64_t ops = 0, sets_ok = 0, sets_failed = 0, get_hits = 0, get_misses = 0, lost = 0, errors = 0;
  Counts& operator+=(const Counts& o) noexcept;
  Counts operator-(const Counts& o) const noexcept;  // field by field; callers pass later - earlier
  bool operator==(const Counts&) const = default;
};

// The cumulative counters at time t_ns (any clock; only differences count).
struct TimelineMark {
  uint64_t t_ns = 0;
  Counts total;
};

struct TimelineRow {
  unsigned second = 0;   // the interval ends this many whole seconds into the window
  double length_s = 0;   // the interval's real length
  Counts c;              // what happened in it
  double ops_per_s = 0;  // c.ops / length_s (summed over threads after merge_timeline)
};

// One row per pair of consecutive marks; marks.front() is the window start.
// Every mark but the last is taken at (or just after) a whole second into
// the window: its row's second is floor(offset). The last mark closes the
// window; its row's second is offset rounded to the nearest whole (at least
// one more than the row before), and if that last interval is shorter than
// min_tail_s it is folded into the row before it (counts added, length
// extended) so a run of 60.0003 seconds gives 60 rows, not 60 and a 0.3-ms
// one with a meaningless rate.
// Fewer than two marks: no rows.
std::vector<TimelineRow> timeline_rows(const std::vector<TimelineMark>& marks, double min_tail_s = 0.5);

// Adds b into *a row by row (the timelines of generator threads that started
// together): counts and rates add, the length is the longer one; rows beyond
// the shorter timeline are kept as they are.
void merge_timeline(std::vector<TimelineRow>* a, const std::vector<TimelineRow>& b);

// The header line (with its "\n") and one CSV line per row.
inline constexpr std::string_view kTimelineHeader =
    "second,ops,ops_per_s,sets_ok,sets_failed,get_hits,get_misses,lost,errors\n";
std::string timeline_csv(const std::vector<TimelineRow>& rows);

// One RFC 4180 field: as is when it holds no comma, double quote, CR or LF;
// else wrapped in double quotes with each double quote doubled.
std::string csv_field(std::string_view s);

// A JSON string literal (quotes included) with ", \ and control characters escaped.
std::string json_string(std::string_view s);

}  // namespace ferrite::bench
