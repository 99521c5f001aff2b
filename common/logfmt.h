// The logfmt text of a log line (common/log.h writes it): the message is
// quoted, with \, " and control characters escaped (\n, \t, \r, \u00XX), so
// one event is always one parseable line whatever the text holds (a path, a
// key, a peer's bytes). Bytes >= 0x80 pass through (UTF-8 stays readable).
//
// Thread safety: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/log.h"

namespace ferrite {

// The logfmt quoted form of s, quotes included.
std::string logfmt_quote(std::string_view s);
// The line log_line writes (with its "\n") at the given time.
std::string format_log_line(LogLevel level, std::string_view text, std::chrono::system_clock::time_point now);

}  // namespace ferrite
