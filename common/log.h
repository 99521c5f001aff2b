// Structured logging for the control path: one line per event on stderr,
//   ts=2026-11-24T14:00:00.123Z level=warn msg="..." key=value ...
// Never called per request; the data path counts into per-worker stats.
//
// Thread safety: log_*() may be called from any thread; a line is written with
// one write(2), so lines from different threads do not interleave.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace ferrite {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
// Parses "debug", "info", "warn", "error", "off"; false if none matches.
bool parse_log_level(std::string_view s, LogLevel* out) noexcept;

void log_line(LogLevel level, std::string_view text) noexcept;

template <typename... Args>
void log_at(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < log_level()) return;
  log_line(level, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... a) { log_at(LogLevel::kInfo, f, std::forward<Args>(a)...); }
template <typename... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... a) { log_at(LogLevel::kWarn, f, std::forward<Args>(a)...); }
template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... a) { log_at(LogLevel::kError, f, std::forward<Args>(a)...); }
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... a) { log_at(LogLevel::kDebug, f, std::forward<Args>(a)...); }

}  // namespace ferrite
