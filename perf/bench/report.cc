// ferrite-bench's CSV and JSON rows (see report.h).
#include "perf/bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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

}  // namespace

std::string csv_row(const RunLabel& l, const RunConfig& c, const RunResult& r) {
  const auto& h = r.latency;
  const std::string hit = r.hit_ratio() < 0 ? std::string() : fmt::format("{:.6f}", r.hit_ratio());
  return fmt::format(
      "{},{},{},{},{},{},{},{:.0f},{},{},{},{},{},{:.3f},{},{:.0f},{},{},{:.4f},{},{},{},{},{},{},{:.1f},{:.1f},{:.1f},"
      "{:.1f},{:.1f},{:.1f},{:.1f},{}\n",
      csv_field(l.label), csv_field(l.protocol), csv_field(l.mode), l.threads, l.flows, c.depth, c.batch,
      c.mode == Mode::kOpen ? c.rate : 0.0, c.keys, c.key_size, c.value_size, c.get_ratio, c.zipf_theta, r.seconds,
      r.ops_done, r.ops_per_s(), r.requests_done, r.lost, r.loss_ratio() * 100, r.send_failed, r.errors, r.get_hits,
      r.get_misses, r.sets_ok, r.sets_failed, us(h.percentile(0.5)), us(h.percentile(0.9)), us(h.percentile(0.99)),
      us(h.percentile(0.999)), us(h.max()), h.mean() / 1000.0, us(r.max_send_lag_ns), hit);
}

std::string json_row(const RunLabel& l, const RunConfig& c, const RunResult& r) {
  const auto& h = r.latency;
  nlohmann::ordered_json j;
  j["label"] = l.label;
  j["protocol"] = l.protocol;
  j["mode"] = l.mode;
  j["threads"] = l.threads;
  j["flows"] = l.flows;
  j["depth"] = c.depth;
  j["batch"] = c.batch;
  j["target_ops_per_s"] = std::round(c.mode == Mode::kOpen ? c.rate : 0.0);
  j["keys"] = c.keys;
  j["key_size"] = c.key_size;
  j["value_size"] = c.value_size;
  j["get_ratio"] = c.get_ratio;
  j["zipf"] = c.zipf_theta;
  j["seconds"] = round_to(r.seconds, 3);
  j["ops"] = r.ops_done;
  j["ops_per_s"] = std::round(r.ops_per_s());
  j["requests"] = r.requests_done;
  j["lost"] = r.lost;
  j["loss_pct"] = round_to(r.loss_ratio() * 100, 4);
  j["send_failed"] = r.send_failed;
  j["errors"] = r.errors;
  j["get_hits"] = r.get_hits;
  j["get_misses"] = r.get_misses;
  j["sets_ok"] = r.sets_ok;
  j["sets_failed"] = r.sets_failed;
  j["stale"] = r.stale;
  j["cookie_refreshes"] = r.cookie_refreshes;
  j["backlog_dropped"] = r.backlog_dropped;
  j["fill_on_miss"] = c.fill_on_miss;
  j["fills"] = r.fills;
  j["hit_ratio"] = r.hit_ratio() < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(round_to(r.hit_ratio(), 6));
  j["latency_us"] = {{"p50", round_to(us(h.percentile(0.5)), 1)},    {"p90", round_to(us(h.percentile(0.9)), 1)},
                     {"p99", round_to(us(h.percentile(0.99)), 1)},   {"p999", round_to(us(h.percentile(0.999)), 1)},
                     {"max", round_to(us(h.max()), 1)},              {"mean", round_to(h.mean() / 1000.0, 1)}};
  j["max_send_lag_us"] = round_to(us(r.max_send_lag_ns), 1);
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
