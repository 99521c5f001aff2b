// Structured log sink (see log.h) and its logfmt formatting (logfmt.h).
#include "common/log.h"
#include "common/logfmt.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace ferrite {
namespace {
// Written by set_log_level (control path), read racily by every logger;
// a stale level only changes whether one line is printed.
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

constexpr std::string_view kNames[] = {"debug", "info", "warn", "error", "off"};
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
LogLevel log_level() noexcept { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool parse_log_level(std::string_view s, LogLevel* out) noexcept {
  for (int i = 0; i < 5; ++i) {
    if (s == kNames[i]) {
      *out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

std::string logfmt_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\u{:04x}", u);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string format_log_line(LogLevel level, std::string_view text, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("ts={:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z level={} msg={}\n", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
                     kNames[static_cast<int>(level)], logfmt_quote(text));
}

void log_line(LogLevel level, std::string_view text) noexcept {
  try {
    const std::string line = format_log_line(level, text, std::chrono::system_clock::now());
    ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
    (void)rc;
  } catch (...) {
    // Logging must never take the process down.
  }
}

}  // namespace ferrite
