// ferrite-bench's result rows (perf/bench/report.h): a label with commas,
// quotes, newlines, backslashes or bytes that are not UTF-8 reads back from
// the CSV row (an RFC 4180 reader) and from the JSON row (nlohmann's parser)
// as the label, with every column in its place.
//
// Thread safety: single-threaded tests.
#include "perf/bench/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ferrite::bench {
namespace {

// One RFC 4180 record (the row ends with "\n"); nullopt when malformed.
std::optional<std::vector<std::string>> read_csv_record(std::string_view row) {
  if (row.empty() || row.back() != '\n') return std::nullopt;
  row.remove_suffix(1);
  std::vector<std::string> fields(1);
  std::size_t i = 0;
  bool at_start = true;
  while (i < row.size()) {
    const char ch = row[i];
    if (at_start && ch == '"') {
      ++i;
      for (;;) {
        if (i >= row.size()) return std::nullopt;  // unterminated quote
        if (row[i] == '"') {
          if (i + 1 < row.size() && row[i + 1] == '"') {
            fields.back() += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        fields.back() += row[i++];
      }
      if (i < row.size() && row[i] != ',') return std::nullopt;  // text after the closing quote
      at_start = false;
      continue;
    }
    if (ch == ',') {
      fields.emplace_back();
      at_start = true;
      ++i;
      continue;
    }
    if (ch == '"' || ch == '\n' || ch == '\r') return std::nullopt;  // must have been quoted
    fields.back() += ch;
    at_start = false;
    ++i;
  }
  return fields;
}

RunResult some_result() {
  RunResult r;
  r.seconds = 2.0;
  r.ops_done = r.requests_done = 2000;
  r.get_hits = 900;
  r.get_misses = 100;
  r.sets_ok = 1000;
  for (uint64_t v = 1; v <= 1000; ++v) r.latency.record(v * 1000);
  return r;
}

const std::string kNasty[] = {
    "plain",
    "a,b",
    "say \"hi\", \"there\"",
    "two\nlines\r\nand \\backslash\\",
    "tab\tand \x01 control",
    "utf-8 na\xc3\xafve \xe2\x9c\x93",
    "\"",
    "",
};

TEST(Report, CsvRowReadsBackWithTheLabelAndEveryColumn) {
  const std::string header = csv_header();
  const std::size_t columns = csv_columns(std::string_view(header).substr(0, header.size() - 1));
  ASSERT_EQ(columns, 33u);
  for (const std::string& label : kNasty) {
    RunLabel l{label, "native", "closed", 2, 8};
    const std::string row = csv_row(l, RunConfig{}, some_result());
    auto fields = read_csv_record(row);
    ASSERT_TRUE(fields.has_value()) << "not RFC 4180: " << row;
    ASSERT_EQ(fields->size(), columns) << row;
    EXPECT_EQ((*fields)[0], label);
    EXPECT_EQ((*fields)[1], "native");
    EXPECT_EQ((*fields)[3], "2");
    EXPECT_EQ((*fields)[14], "2000");  // ops
    // csv_prefix keeps quoted commas inside their field.
    auto prefix = read_csv_record(csv_prefix(row, 32));
    ASSERT_TRUE(prefix.has_value());
    EXPECT_EQ(prefix->size(), 32u);
    EXPECT_EQ((*prefix)[0], label);
  }
}

TEST(Report, JsonRowParsesWithTheLabel) {
  for (const std::string& label : kNasty) {
    RunLabel l{label, "memcached", "open", 1, 4};
    const std::string row = json_row(l, RunConfig{}, some_result());
    ASSERT_EQ(row.back(), '\n');
    EXPECT_EQ(row.find('\n'), row.size() - 1) << "one object per line";
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(row)) << row;
    EXPECT_EQ(j.at("label").get<std::string>(), label);
    EXPECT_EQ(j.at("protocol"), "memcached");
    EXPECT_EQ(j.at("ops"), 2000);
    EXPECT_DOUBLE_EQ(j.at("hit_ratio").get<double>(), 0.9);
    EXPECT_TRUE(j.at("latency_us").at("p99").is_number());
  }
}

TEST(Report, JsonRowReplacesBytesThatAreNotUtf8) {
  RunLabel l{"latin-1 \xe9t\xe9", "native", "closed", 1, 1};
  const std::string row = json_row(l, RunConfig{}, some_result());
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(row)) << row;
  EXPECT_EQ(j.at("label").get<std::string>(), "latin-1 \xef\xbf\xbdt\xef\xbf\xbd");
  EXPECT_TRUE(j.at("hit_ratio").is_number());
  RunResult no_gets;
  EXPECT_TRUE(nlohmann::json::parse(json_row(l, RunConfig{}, no_gets)).at("hit_ratio").is_null());
}

}  // namespace
}  // namespace ferrite::bench
