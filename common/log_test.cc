// common/log.h: log levels filter what is written, level names parse, and a
// line logged from any thread reaches stderr whole (one write per line).
// Captures stderr by pointing fd 2 at a temporary file.
//
// Thread safety: log_*() from several threads in one test; the level is set
// before they start.
#include "common/log.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ferrite {
namespace {

// Runs fn with stderr redirected; returns what was written to it.
template <typename Fn>
std::string capture_stderr(Fn&& fn) {
  std::FILE* tmp = std::tmpfile();
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(::fileno(tmp), STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), tmp)) > 0) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

class Log : public ::testing::Test {
 protected:
  void TearDown() override { set_log_level(saved_); }
  LogLevel saved_ = log_level();
};

TEST_F(Log, LevelFiltersLines) {
  set_log_level(LogLevel::kWarn);
  EXPECT_EQ(log_level(), LogLevel::kWarn);
  const std::string out = capture_stderr([] {
    log_debug("d {}", 1);
    log_info("i {}", 2);
    log_warn("w {}", 3);
    log_error("e {}", 4);
  });
  EXPECT_EQ(out.find("msg=\"d 1\""), std::string::npos);
  EXPECT_EQ(out.find("msg=\"i 2\""), std::string::npos);
  EXPECT_NE(out.find("level=warn msg=\"w 3\"\n"), std::string::npos) << out;
  EXPECT_NE(out.find("level=error msg=\"e 4\"\n"), std::string::npos) << out;
  set_log_level(LogLevel::kOff);
  EXPECT_EQ(capture_stderr([] { log_error("nothing"); }), "");
  set_log_level(LogLevel::kDebug);
  EXPECT_NE(capture_stderr([] { log_debug("x"); }).find("level=debug msg=\"x\""), std::string::npos);
}

TEST_F(Log, ParsesLevelNames) {
  const std::pair<const char*, LogLevel> all[] = {{"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
                                                  {"warn", LogLevel::kWarn},   {"error", LogLevel::kError},
                                                  {"off", LogLevel::kOff}};
  for (const auto& [name, want] : all) {
    LogLevel got = LogLevel::kInfo;
    EXPECT_TRUE(parse_log_level(name, &got)) << name;
    EXPECT_EQ(got, want) << name;
  }
  LogLevel untouched = LogLevel::kError;
  for (const char* bad : {"", "WARN", "warning", "info ", "5"}) {
    EXPECT_FALSE(parse_log_level(bad, &untouched)) << bad;
  }
  EXPECT_EQ(untouched, LogLevel::kError) << "a failed parse leaves the output alone";
}

TEST_F(Log, LinesFromManyThreadsDoNotInterleave) {
  set_log_level(LogLevel::kInfo);
  const std::string payload(200, 'p');
  const std::string out = capture_stderr([&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) log_info("t{} {}", t, payload);
      });
    }
    for (auto& t : ts) t.join();
  });
  std::istringstream in(out);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_TRUE(line.starts_with("ts=")) << line;
    EXPECT_TRUE(line.ends_with(payload + "\"")) << line;
  }
  EXPECT_EQ(lines, 400);
}

}  // namespace
}  // namespace ferrite
