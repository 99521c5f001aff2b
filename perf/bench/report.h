// ferrite-bench's machine-readable result rows: one CSV row (RFC 4180: every
// text field through csv_field) under csv_header(), or one JSON object per line
// written by nlohmann-json (any label, even with quotes, backslashes, control
// characters or bytes that are not UTF-8, gives valid JSON; invalid UTF-8 is
// replaced by U+FFFD).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "perf/bench/runner.h"

namespace ferrite::bench {

// What the command line said about the run, beyond RunConfig.
struct RunLabel {
  std::string label, protocol, mode;
  unsigned threads = 1, flows = 1;
};

// The CSV header line (with its "\n"); csv_row's fields in the same order.
std::string csv_header();
std::string csv_row(const RunLabel& l, const RunConfig& c, const RunResult& r);
std::string json_row(const RunLabel& l, const RunConfig& c, const RunResult& r);

// Columns of a header line (its names have no quotes), 0 for an empty line.
std::size_t csv_columns(std::string_view header);
// The first n fields of a CSV row (with its "\n"); the whole row when n is 0
// or the row has no more. Quoted fields may hold commas.
std::string csv_prefix(const std::string& row, std::size_t n);

}  // namespace ferrite::bench
