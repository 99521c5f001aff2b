// The stats registry (common/stats.h): per-worker counters summed on read,
// registration order kept through sections and included registries, one
// snapshot per section per sample, omitted entries, kinds, and each renderer
// read back by an independent parser (nlohmann's for JSON, a split for the
// line formats, tests/util/prom_text.h for Prometheus's).
//
// Thread safety: single-threaded tests, except ConcurrentIncrementsAreAllCounted
// (writer threads, one reader).
#include "common/stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/util/prom_text.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace ferrite::stats {
namespace {

using ::testing::ElementsAre;

struct alignas(64) WorkerCounters {
  std::atomic<uint64_t> hits{0}, misses{0};
};

struct Fixture {
  std::vector<WorkerCounters> per_worker;
  Workers<WorkerCounters> workers;
  explicit Fixture(std::size_t n) : per_worker(n) {
    workers = {[this] { return per_worker.size(); }, [this](std::size_t w) -> const WorkerCounters& { return per_worker[w]; }};
  }
};

std::vector<std::string> names(const Samples& s) {
  std::vector<std::string> n;
  for (const Sample& e : s) n.push_back(e.name);
  return n;
}

// "name value" lines (sep " ", end "\n") or "STAT name value\r\n" lines, split back.
std::vector<std::pair<std::string, std::string>> split_lines(const std::string& text, std::string_view lead,
                                                             std::string_view eol) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find(eol, pos);
    EXPECT_NE(end, std::string::npos) << "unterminated line in " << text;
    if (end == std::string::npos) break;
    std::string line = text.substr(pos, end - pos);
    EXPECT_EQ(line.substr(0, lead.size()), lead);
    line.erase(0, lead.size());
    const std::size_t sp = line.find(' ');
    out.emplace_back(line.substr(0, sp), sp == std::string::npos ? "" : line.substr(sp + 1));
    pos = end + eol.size();
  }
  return out;
}

TEST(StatsRegistry, CountersSumEveryWorkerOnRead) {
  Fixture f(3);
  Registry r;
  r.counter("hits", "lookups that found the key", f.workers.summed(&WorkerCounters::hits));
  r.counter("misses", "lookups that did not", f.workers.summed(&WorkerCounters::misses));
  for (std::size_t w = 0; w < 3; ++w) r.counter("worker" + std::to_string(w) + "_hits", "hits of one worker",
                                                [&f, w] { return f.workers.of(w, &WorkerCounters::hits); });
  f.per_worker[0].hits += 2;
  f.per_worker[1].hits += 5;
  f.per_worker[2].misses += 7;
  Samples s = r.sample();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(std::get<uint64_t>(s[0].value), 7u);
  EXPECT_EQ(std::get<uint64_t>(s[1].value), 7u);
  EXPECT_EQ(std::get<uint64_t>(s[2].value), 2u);
  EXPECT_EQ(std::get<uint64_t>(s[3].value), 5u);
  EXPECT_EQ(std::get<uint64_t>(s[4].value), 0u);
  // Read on every sample, not at registration.
  f.per_worker[2].hits += 1;
  EXPECT_EQ(std::get<uint64_t>(r.sample()[0].value), 8u);
}

TEST(StatsRegistry, ConcurrentIncrementsAreAllCounted) {
  Fixture f(4);
  Registry r;
  r.counter("hits", "h", f.workers.summed(&WorkerCounters::hits));
  constexpr uint64_t kEach = 20000;
  std::vector<std::thread> ts;
  for (std::size_t w = 0; w < 4; ++w) {
    ts.emplace_back([&f, w] {
      for (uint64_t i = 0; i < kEach; ++i) f.per_worker[w].hits.fetch_add(1, std::memory_order_relaxed);
    });
  }
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t now = std::get<uint64_t>(r.sample()[0].value);
    EXPECT_GE(now, last);  // each worker's counter only grows, so the sum does too
    last = now;
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(std::get<uint64_t>(r.sample()[0].value), 4 * kEach);
}

TEST(StatsRegistry, OrderIsRegistrationOrderThroughSectionsAndIncludes) {
  Registry inner;
  inner.counter("a", "inner a", [] { return 1; });
  Registry r;
  r.gauge("first", "f", [] { return 10; });
  r.section<int>([] { return 3; }).gauge("sec1", "s", [](int x) { return x; }).gauge("sec2", "s", [](int x) { return 2 * x; });
  r.include(inner, "pre_");
  r.counter("last", "l", [] { return 4; });
  inner.counter("b", "inner b, registered after the include", [] { return 2; });
  const Samples s = r.sample();
  EXPECT_THAT(names(s), ElementsAre("first", "sec1", "sec2", "pre_a", "pre_b", "last"));
  EXPECT_EQ(std::get<uint64_t>(s[2].value), 6u);
  EXPECT_EQ(std::get<uint64_t>(s[4].value), 2u);
  EXPECT_EQ(s[3].help, "inner a");
  EXPECT_EQ(r.size(), 6u);
  EXPECT_EQ(names(r.sample()), names(s));  // stable from sample to sample
}

TEST(StatsRegistry, SectionSnapshotIsTakenOncePerSample) {
  int taken = 0;
  Registry r;
  auto sec = r.section<int>([&taken] { return ++taken; });
  for (int i = 0; i < 5; ++i) sec.counter("c" + std::to_string(i), "c", [](int x) { return x; });
  const Samples s1 = r.sample();
  EXPECT_EQ(taken, 1);
  for (const Sample& e : s1) EXPECT_EQ(std::get<uint64_t>(e.value), 1u);
  (void)r.sample();
  EXPECT_EQ(taken, 2);
}

TEST(StatsRegistry, SectionEntriesMayBeMembersOfTheSnapshot) {
  struct Snap {
    uint64_t keys;
    double ratio;
    bool done;
  };
  Snap now{5, 1.5, true};
  Registry r;
  r.section<Snap>([&now] { return now; })
      .gauge("keys", "k", &Snap::keys)
      .real("ratio", "r", 1, &Snap::ratio)
      .gauge("done", "d", &Snap::done);
  EXPECT_EQ(render_native(r.sample()), "keys 5\nratio 1.5\ndone 1\n");
  now = {6, 0.26, false};
  EXPECT_EQ(render_native(r.sample()), "keys 6\nratio 0.3\ndone 0\n");
}

TEST(StatsRegistry, NulloptOmitsTheEntryFromThatSample) {
  bool link = false;
  Registry r;
  r.gauge("before", "b", [] { return 1; });
  r.gauge("link_up", "present only when the link is readable",
          [&link]() -> std::optional<uint64_t> { return link ? std::optional<uint64_t>(1) : std::nullopt; });
  r.gauge("after", "a", [] { return 2; });
  EXPECT_THAT(names(r.sample()), ElementsAre("before", "after"));
  link = true;
  EXPECT_THAT(names(r.sample()), ElementsAre("before", "link_up", "after"));
}

Registry& kinds_registry() {
  static Registry r;
  static bool once = [] {
    r.counter("requests", "requests received", [] { return 42; });
    r.gauge("keys", "live keys", [] { return 7; });
    r.real("write_amplification", "bytes written per byte appended", 3, [] { return 1.0; });
    r.real("ratio", "a ratio", 2, [] { return 0.126; });
    r.text("version", "server version", [] { return std::string("1.6.18-x"); });
    return true;
  }();
  (void)once;
  return r;
}

TEST(StatsRegistry, KindsAndHelpTravelWithEachSample) {
  const Samples s = kinds_registry().sample();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].kind, Kind::kCounter);
  EXPECT_EQ(s[1].kind, Kind::kGauge);
  EXPECT_EQ(s[2].kind, Kind::kReal);
  EXPECT_EQ(s[4].kind, Kind::kText);
  EXPECT_EQ(kind_name(s[0].kind), "counter");
  EXPECT_EQ(kind_name(s[2].kind), "real");
  EXPECT_EQ(s[1].help, "live keys");
  EXPECT_EQ(format_value(s[2]), "1.000");
  EXPECT_EQ(format_value(s[3]), "0.13");  // fixed decimals, rounded
  EXPECT_EQ(format_value(s[4]), "1.6.18-x");
}

TEST(StatsRenderers, NativeIsNameSpaceValueLines) {
  const std::string t = render_native(kinds_registry().sample());
  EXPECT_EQ(t, "requests 42\nkeys 7\nwrite_amplification 1.000\nratio 0.13\nversion 1.6.18-x\n");
  const auto lines = split_lines(t, "", "\n");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[1], std::make_pair(std::string("keys"), std::string("7")));
}

TEST(StatsRenderers, MemcachedIsStatLinesWithCrlf) {
  const Samples s = kinds_registry().sample();
  const std::string t = render_memcached(s);
  const auto lines = split_lines(t, "STAT ", "\r\n");
  ASSERT_EQ(lines.size(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(lines[i].first, s[i].name);
    EXPECT_EQ(lines[i].second, format_value(s[i]));
  }
  EXPECT_EQ(t.find("END"), std::string::npos);  // the caller ends the reply
}

TEST(StatsRenderers, JsonIsOneObjectInSampleOrderWithTypedValues) {
  const std::string t = render_json(kinds_registry().sample());
  const auto j = nlohmann::ordered_json::parse(t);
  ASSERT_TRUE(j.is_object());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("requests", "keys", "write_amplification", "ratio", "version"));
  EXPECT_TRUE(j["requests"].is_number_unsigned());
  EXPECT_EQ(j["requests"].get<uint64_t>(), 42u);
  EXPECT_TRUE(j["write_amplification"].is_number_float());
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 0.126);  // full precision, not the text's 2 decimals
  EXPECT_EQ(j["version"].get<std::string>(), "1.6.18-x");
  EXPECT_EQ(render_json({}), "{}");
}

TEST(StatsRenderers, LogfmtIsSpaceSeparatedPairsAndQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(render_logfmt(kinds_registry().sample()),
            "requests=42 keys=7 write_amplification=1.000 ratio=0.13 version=1.6.18-x");
  Registry r;
  r.text("msg", "m", [] { return std::string("a b=\"c\""); });
  r.counter("n", "n", [] { return 1; });
  EXPECT_EQ(render_logfmt(r.sample()), "msg=\"a b=\\\"c\\\"\" n=1");
  EXPECT_EQ(render_logfmt({}), "");
}

TEST(StatsRenderers, IncludedNamesArePrefixedInEveryRenderer) {
  Registry inner;
  inner.counter("ops", "o", [] { return 3; });
  Registry outer;
  outer.counter("cmd_get", "g", [] { return 1; });
  outer.include(inner, "ferrite_");
  const Samples s = outer.sample();
  EXPECT_EQ(render_native(s), "cmd_get 1\nferrite_ops 3\n");
  EXPECT_EQ(render_memcached(s), "STAT cmd_get 1\r\nSTAT ferrite_ops 3\r\n");
  EXPECT_EQ(render_logfmt(s), "cmd_get=1 ferrite_ops=3");
  EXPECT_EQ(nlohmann::json::parse(render_json(s))["ferrite_ops"].get<uint64_t>(), 3u);
}

// Prometheus text (render_prometheus), read back by tests/util/prom_text.h.
std::string prometheus(const Samples& s, std::string_view prefix) {
  std::string out;
  std::unordered_set<std::string> seen;
  render_prometheus(s, prefix, &out, &seen);
  return out;
}

TEST(StatsRenderers, PrometheusGivesEveryKindItsTypeAndValue) {
  const Samples s = kinds_registry().sample();
  const std::string t = prometheus(s, "ferrite_");
  const testing::PromText p = testing::parse_prom_text(t);
  ASSERT_TRUE(p.ok()) << p.error << "\n" << t;
  ASSERT_EQ(p.metrics.size(), s.size());
  const testing::PromMetric& req = p.metrics.at("ferrite_requests_total");  // a counter ends _total
  EXPECT_EQ(req.type, "counter");
  EXPECT_EQ(req.value, 42);
  EXPECT_EQ(req.help, s[0].help);
  EXPECT_EQ(p.metrics.at("ferrite_keys").type, "gauge");
  EXPECT_EQ(p["ferrite_keys"], 7);
  EXPECT_EQ(p.metrics.at("ferrite_ratio").type, "gauge");
  EXPECT_DOUBLE_EQ(p["ferrite_ratio"], 0.126);  // full precision, not the text's 2 decimals
  const testing::PromMetric& v = p.metrics.at("ferrite_version_info");  // a text is an info gauge
  EXPECT_EQ(v.type, "gauge");
  EXPECT_EQ(v.labels, "value=\"1.6.18-x\"");
  EXPECT_EQ(v.value, 1);
  // The first lines, exactly: HELP, TYPE, sample.
  EXPECT_EQ(t.substr(0, t.find("# HELP", 1)),
            "# HELP ferrite_requests_total " + std::string(s[0].help) +
                "\n# TYPE ferrite_requests_total counter\nferrite_requests_total 42\n");
}

TEST(StatsRenderers, PrometheusNamesAreValidAndUnique) {
  Registry r;
  r.counter("total_items", "items stored", [] { return 5; });        // not total_items_total
  r.counter("bytes_total", "already ends _total", [] { return 6; });
  r.gauge("ferrite_tcp_input_peak", "own prefix", [] { return 7; });  // under ferrite_memcached_
  r.gauge("nic.rx-q0", "bad bytes", [] { return 8; });
  r.gauge("dup", "first", [] { return 9; });
  r.gauge("dup", "second", [] { return 10; });
  r.real("nan", "not a number", 1, [] { return std::nan(""); });
  r.real("inf", "infinite", 1, [] { return INFINITY; });
  r.text("quoted", "a \\ and a\nnewline", [] { return std::string("say \"hi\"\\\n"); });
  std::string out;
  std::unordered_set<std::string> seen{"ferrite_memcached_taken"};
  render_prometheus(r.sample(), "ferrite_memcached_", &out, &seen);
  Registry r2;
  r2.gauge("taken", "named by the earlier call", [] { return 1; });
  render_prometheus(r2.sample(), "ferrite_memcached_", &out, &seen);
  const testing::PromText p = testing::parse_prom_text(out);
  ASSERT_TRUE(p.ok()) << p.error << "\n" << out;
  EXPECT_EQ(p["ferrite_memcached_items_total"], 5);
  EXPECT_EQ(p["ferrite_memcached_bytes_total"], 6);
  EXPECT_EQ(p["ferrite_memcached_tcp_input_peak"], 7);
  EXPECT_EQ(p["ferrite_memcached_nic_rx_q0"], 8);
  EXPECT_EQ(p["ferrite_memcached_dup"], 9);  // the first kept, the second skipped
  EXPECT_TRUE(std::isnan(p["ferrite_memcached_nan"]) && p.has("ferrite_memcached_nan"));
  EXPECT_EQ(p["ferrite_memcached_inf"], INFINITY);
  EXPECT_FALSE(p.has("ferrite_memcached_taken"));
  EXPECT_EQ(p.metrics.at("ferrite_memcached_quoted_info").help, "a \\ and a\nnewline");
  EXPECT_EQ(p.metrics.at("ferrite_memcached_quoted_info").labels, "value=\"say \\\"hi\\\"\\\\\\n\"");
  EXPECT_EQ(p.metrics.size(), 8u);
}

TEST(StatsRenderers, PromParserRejectsWhatAScraperRejects) {  // the test's parser can fail
  EXPECT_FALSE(testing::parse_prom_text("x 1\n").ok());                                          // no HELP/TYPE
  EXPECT_FALSE(testing::parse_prom_text("# HELP x h\n# TYPE x gauge\nx 1\nx 2\n").ok());        // twice
  EXPECT_FALSE(testing::parse_prom_text("# HELP x h\n# TYPE x gauge\nx one\n").ok());           // value
  EXPECT_FALSE(testing::parse_prom_text("# HELP 1x h\n# TYPE 1x gauge\n1x 1\n").ok());          // name
  EXPECT_FALSE(testing::parse_prom_text("# HELP x h\n# TYPE x counter\nx -1\n").ok());          // counter
  EXPECT_FALSE(testing::parse_prom_text("# HELP x h\n# TYPE x gauge\nx 1").ok());                // no newline
  EXPECT_TRUE(testing::parse_prom_text("# HELP x h\n# TYPE x gauge\nx 1\n").ok());
}

}  // namespace
}  // namespace ferrite::stats
