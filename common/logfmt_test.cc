// logfmt lines (common/logfmt.h): whatever the message holds, a log line is
// one line that a logfmt reader splits into exactly ts, level and msg, with
// msg reading back as the original text.
//
// Thread safety: single-threaded test.
#include "common/logfmt.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferrite {
namespace {

// A logfmt reader (the go-logfmt grammar): key=value pairs separated by
// spaces; a quoted value is unescaped (\" \\ \n \r \t \uXXXX for ASCII).
std::optional<std::vector<std::pair<std::string, std::string>>> parse_logfmt(std::string_view line) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    std::string key;
    while (i < line.size() && line[i] != '=' && line[i] != ' ') key += line[i++];
    if (i >= line.size() || line[i] != '=' || key.empty()) return std::nullopt;
    ++i;
    std::string val;
    if (i < line.size() && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= line.size()) return std::nullopt;  // unterminated
        const char ch = line[i++];
        if (ch == '"') break;
        if (static_cast<unsigned char>(ch) < 0x20) return std::nullopt;  // raw control char inside quotes
        if (ch != '\\') {
          val += ch;
          continue;
        }
        if (i >= line.size()) return std::nullopt;
        const char e = line[i++];
        switch (e) {
          case '"': val += '"'; break;
          case '\\': val += '\\'; break;
          case 'n': val += '\n'; break;
          case 'r': val += '\r'; break;
          case 't': val += '\t'; break;
          case 'u': {
            if (i + 4 > line.size()) return std::nullopt;
            val += static_cast<char>(std::stoi(std::string(line.substr(i, 4)), nullptr, 16));
            i += 4;
            break;
          }
          default: return std::nullopt;
        }
      }
    } else {
      while (i < line.size() && line[i] != ' ') {
        if (line[i] == '"' || line[i] == '=') return std::nullopt;
        val += line[i++];
      }
    }
    out.emplace_back(std::move(key), std::move(val));
  }
  return out;
}

TEST(Logfmt, EveryMessageIsOneLineOfExactlyTsLevelMsg) {
  const std::string messages[] = {
      "plain text",
      "pool /dev/shm/a \"quoted\" b\\c.pool opened",
      "x\" level=error msg=\"forged",  // a field injection through an unescaped quote
      "two\nlines\r\n",
      "tab\there",
      std::string("nul\0and\x01 and \x7f and \x1b[31mred", 27),
      "utf-8: na\xc3\xafve \xe2\x9c\x93",
      "",
      "\\",
      "ends with backslash\\\"",
  };
  const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764820800123));
  for (const std::string& m : messages) {
    const std::string line = format_log_line(LogLevel::kWarn, m, now);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one event, one line: " << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    auto fields = parse_logfmt(std::string_view(line).substr(0, line.size() - 1));
    ASSERT_TRUE(fields.has_value()) << "not logfmt: " << line;
    ASSERT_EQ(fields->size(), 3u) << line;
    EXPECT_EQ((*fields)[0].first, "ts");
    EXPECT_EQ((*fields)[0].second, "2025-12-04T04:00:00.123Z");
    EXPECT_EQ((*fields)[1], (std::pair<std::string, std::string>{"level", "warn"}));
    EXPECT_EQ((*fields)[2].first, "msg");
    EXPECT_EQ((*fields)[2].second, m) << line;
  }
}

TEST(Logfmt, QuoteEscapes) {
  EXPECT_EQ(logfmt_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(logfmt_quote("l1\nl2\t"), "\"l1\\nl2\\t\"");
  EXPECT_EQ(logfmt_quote(std::string("\x01\x7f", 2)), "\"\\u0001\\u007f\"");
  EXPECT_EQ(logfmt_quote(""), "\"\"");
}

}  // namespace
}  // namespace ferrite
