// ferrite-bench's CSV and JSON rows (see report.h).
#include "perf/bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <variant>
#include <vector>
#include <nlohmann/json.hpp>

#include "perf/bench/timeline.h"

namespace ferrite::bench {
namespace {

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }
// Rounded to `digits` decimals, as the CSV prints them.
double round_to(double v, int digits) {
  const double m = std::pow(10.0, digits);
  return std::round(v * m) / m;
}

// One field of a result row. Text and counts print as they are; a measure
// prints with `digits` decimals in CSV and is rounded to as many in JSON
// (-1: as it is). A NaN measure is absent: an empty CSV field, JSON null.
struct Field {
  std::string_view name;  // JSON key; the CSV column name (latency fields add "_us")
  std::variant<std::string_view, uint64_t, double, bool> value;
  int digits = -1;
  bool csv = true;        // false: JSON only
  bool latency = false;   // JSON: inside "latency_us"
};

// The field list, written once: CSV order (which must not change, rows are
// appended to older files), with the JSON-only fields among them.
std::vector<Field> fields(const RunLabel& l, const RunConfig& c, const RunResult& r) {
  const auto& h = r.latency;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {
      {"label", l.label}, {"protocol", l.protocol}, {"mode", l.mode},
      {"threads", uint64_t{l.threads}}, {"flows", uint64_t{l.flows}}, {"depth", uint64_t{c.depth}},
      {"batch", uint64_t{c.batch}}, {"target_ops_per_s", c.mode == Mode::kOpen ? c.rate : 0.0, 0},
      {"keys", c.keys}, {"key_size", uint64_t{c.key_size}}, {"value_size", uint64_t{c.value_size}},
      {"get_ratio", c.get_ratio}, {"zipf", c.zipf_theta}, {"seconds", r.seconds, 3},
      {"ops", r.ops_done}, {"ops_per_s", r.ops_per_s(), 0}, {"requests", r.requests_done}, {"lost", r.lost},
      {"loss_pct", r.loss_ratio() * 100, 4}, {"send_failed", r.send_failed}, {"errors", r.errors},
      {"get_hits", r.get_hits}, {"get_misses", r.get_misses}, {"sets_ok", r.sets_ok},
      {"sets_failed", r.sets_failed},
      {"stale", r.stale, -1, false}, {"cookie_refreshes", r.cookie_refreshes, -1, false},
      {"backlog_dropped", r.backlog_dropped, -1, false}, {"fill_on_miss", c.fill_on_miss, -1, false},
      {"fills", r.fills, -1, false},
      {"p50", us(h.percentile(0.5)), 1, true, true}, {"p90", us(h.percentile(0.9)), 1, true, true},
      {"p99", us(h.percentile(0.99)), 1, true, true}, {"p999", us(h.percentile(0.999)), 1, true, true},
      {"max", us(h.max()), 1, true, true}, {"mean", h.mean() / 1000.0, 1, true, true},
      {"max_send_lag_us", us(r.max_send_lag_ns), 1},
      {"hit_ratio", r.hit_ratio() < 0 ? nan : r.hit_ratio(), 6},
  };
}

std::string csv_value(const Field& f) {
  if (const auto* s = std::get_if<std::string_view>(&f.value)) return csv_field(*s);
  if (const auto* n = std::get_if<uint64_t>(&f.value)) return fmt::format("{}", *n);
  if (const auto* b = std::get_if<bool>(&f.value)) return *b ? "1" : "0";
  const double d = std::get<double>(f.value);
  if (std::isnan(d)) return {};
  return f.digits < 0 ? fmt::format("{}", d) : fmt::format("{:.{}f}", d, f.digits);
}

nlohmann::ordered_json json_value(const Field& f) {
  if (const auto* s = std::get_if<std::string_view>(&f.value)) return std::string(*s);
  if (const auto* n = std::get_if<uint64_t>(&f.value)) return *n;
  if (const auto* b = std::get_if<bool>(&f.value)) return *b;
  const double d = std::get<double>(f.value);
  if (std::isnan(d)) return nullptr;
  return f.digits < 0 ? d : round_to(d, f.digits);
}

}  // namespace

std::string csv_header() {
  std::string out;
  for (const Field& f : fields(RunLabel{}, RunConfig{}, RunResult{})) {
    if (!f.csv) continue;
    out += f.name;
    out += f.latency ? "_us," : ",";
  }
  out.back() = '\n';
  return out;
}

std::string csv_row(const RunLabel& l, const RunConfig& c, const RunResult& r) {
  std::string out;
  for (const Field& f : fields(l, c, r)) {
    if (!f.csv) continue;
    out += csv_value(f);
    out += ',';
  }
  out.back() = '\n';  // the list has CSV fields, so out ends in ','
  return out;
}

std::string json_row(const RunLabel& l, const RunConfig& c, const RunResult& r) {
  nlohmann::ordered_json j;
  for (const Field& f : fields(l, c, r)) {
    if (f.latency) {
      j["latency_us"][std::string(f.name)] = json_value(f);
    } else {
      j[std::string(f.name)] = json_value(f);
    }
  }
  // Bytes that are not UTF-8 (a --label from a Latin-1 shell) become U+FFFD
  // instead of an exception.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::size_t csv_columns(std::string_view header) {
  if (header.empty()) return 0;
  return static_cast<std::size_t>(std::count(header.begin(), header.end(), ',')) + 1;
}

std::string csv_prefix(const std::string& row, std::size_t n) {
  if (n == 0) return row;
  std::size_t fields = 1;
  bool quoted = false;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (row[i] == '"') quoted = !quoted;
    if (row[i] == ',' && !quoted && ++fields > n) return row.substr(0, i) + "\n";
  }
  return row;
}

}  // namespace ferrite::bench
