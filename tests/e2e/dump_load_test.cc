// ferritectl dump / load against a real ferrited: a round trip of N keys
// (binary keys and values with tabs, newlines, backslashes and every byte
// 0x00..0xff, client flags, absolute expiries) compares every key, value,
// flag and expiry; malformed input is refused with its line number; the old
// "key<TAB>value" format is refused; no progress line when stderr is not a
// terminal. FERRITE_DUMP_KEYS sets N (the dump_load_1m test: 1000000).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "client/dump_format.h"
#include "tests/e2e/server_harness.h"

namespace ferrite::testing {
namespace {

using ::testing::HasSubstr;
using client::dump::Record;

// Key i's record. The key ends in "#<i>" (so a dumped key names its record);
// before that up to 8 bytes cover 0x00..0xff (byte 0 is i & 0xff).
Record make(uint32_t i, uint32_t expiry_base) {
  Record r;
  for (uint32_t j = 0; j < i % 9; ++j) r.key.push_back(static_cast<char>(j == 0 ? i & 0xff : (i * 31 + j * 97) & 0xff));
  r.key += "#" + std::to_string(i);
  if (i % 7 == 1) {
    r.value = "a\tb\nc\\d\\x41\\n\\\\\r\n";  // text that looks escaped, and real tabs and newlines
  } else if (i % 997 == 0) {
    r.value.assign(3000 + i % 100, static_cast<char>('a' + i % 26));  // several datagrams
  } else if (i % 7 != 0) {
    for (uint32_t j = 0; j < i % 61; ++j) r.value.push_back(static_cast<char>((i * 7 + j * 13) & 0xff));
  }  // i % 7 == 0: an empty value
  r.flags = i * 2654435761u;
  r.exptime = i % 3 == 0 ? 0 : expiry_base + i % 1000;
  return r;
}

uint32_t key_index(const std::string& key) { return static_cast<uint32_t>(std::stoul(key.substr(key.rfind('#') + 1))); }

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class DumpLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("FERRITED") == nullptr || std::getenv("FERRITECTL") == nullptr) {
      GTEST_SKIP() << "FERRITED or FERRITECTL not set";
    }
    const char* n = std::getenv("FERRITE_DUMP_KEYS");
    keys_ = n != nullptr ? static_cast<uint32_t>(std::stoul(n)) : 20000;
    server_ = std::make_unique<ServerProcess>(
        ServerOptions{.pool_size = keys_ > 100000 ? "1GiB" : "256MiB", .start_attempts = 3});
    ASSERT_TRUE(server_->start());
  }
  // Runs `ferritectl --server 127.0.0.1:PORT ARGS`, stdout to out, stderr kept; returns the exit code.
  int ctl(const std::string& args, const std::string& out = "/dev/null") {
    const std::string cmd = fmt::format("\"{}\" --server 127.0.0.1:{} --timeout-ms 1000 {} >{} 2>{}",
                                        std::getenv("FERRITECTL"), server_->port(), args, out, err_.str());
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string err() const { return slurp(err_.str()); }

  uint32_t keys_ = 0;
  std::unique_ptr<ServerProcess> server_;
  TempPath err_{"dump-stderr"};
};

TEST_F(DumpLoad, RoundTripKeepsEveryByteFlagAndExpiry) {
  const auto expiry_base = static_cast<uint32_t>(std::time(nullptr)) + 7 * 86400;
  TempPath in("dump-in"), out("dump-out");
  {
    std::ofstream f(in.str(), std::ios::binary);
    std::string buf = std::string(client::dump::kHeader) + "\n";
    for (uint32_t i = 0; i < keys_; ++i) {
      const Record r = make(i, expiry_base);
      client::dump::append_record(&buf, r.key, r.value, r.flags, r.exptime);
      if (buf.size() > (1u << 20)) f << buf, buf.clear();
    }
    // One key already expired: skipped by load, so absent from the dump.
    client::dump::append_record(&buf, "expired#0x", "gone", 1, 1000);
    f << buf;
  }
  ASSERT_EQ(ctl("load " + in.str()), 0) << err();
  EXPECT_THAT(err(), HasSubstr(fmt::format("loaded {} keys", keys_)));
  EXPECT_THAT(err(), HasSubstr("1 already expired, skipped; 0 not stored"));
  EXPECT_EQ(err().find('\r'), std::string::npos) << "a progress line on a non-terminal: " << err();
  ASSERT_EQ(ctl("dump", out.str()), 0) << err();
  EXPECT_THAT(err(), HasSubstr(fmt::format("dumped {} keys", keys_)));

  std::ifstream f(out.str(), std::ios::binary);
  std::string line;
  ASSERT_TRUE(std::getline(f, line));
  EXPECT_EQ(line, client::dump::kHeader);
  std::vector<bool> seen(keys_);
  std::size_t lineno = 1, mismatches = 0;
  Record got;
  while (std::getline(f, line)) {
    ++lineno;
    ASSERT_TRUE(client::dump::parse_record(line, &got).is_ok()) << "dump line " << lineno << ": " << line;
    const uint32_t i = key_index(got.key);
    ASSERT_LT(i, keys_) << got.key;
    EXPECT_FALSE(seen[i]) << "key " << i << " dumped twice";
    seen[i] = true;
    const Record want = make(i, expiry_base);
    const bool same = got.key == want.key && got.value == want.value && got.flags == want.flags &&
                      got.exptime == want.exptime;
    if (!same && ++mismatches <= 5) ADD_FAILURE() << "key " << i << " differs: dump line " << lineno << ": " << line;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(lineno - 1, keys_) << "records in the dump";
  EXPECT_EQ(std::count(seen.begin(), seen.end(), false), 0) << "keys missing from the dump";
}

TEST_F(DumpLoad, AMalformedLineIsRefusedWithItsNumber) {
  TempPath in("dump-bad");
  std::ofstream(in.str(), std::ios::binary) << client::dump::kHeader << "\ngood\t7\t0\tv\nbad\tseven\t0\tv\nlater\t0\t0\tv\n";
  EXPECT_EQ(ctl("load " + in.str()), 2);
  EXPECT_THAT(err(), HasSubstr(in.str() + ":3: flags \"seven\" (column 5) is not a decimal number"));
  auto c = server_->client();
  ASSERT_NE(c, nullptr);
  client::Reply r;
  auto good = c->get("good", &r);
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(*good, proto::OpStatus::kOk) << "the lines before the bad one are loaded";
  EXPECT_EQ(r.flags, 7u);
  auto later = c->get("later", &r);
  ASSERT_TRUE(later.is_ok());
  EXPECT_EQ(*later, proto::OpStatus::kNotFound) << "nothing after the bad line";
}

TEST_F(DumpLoad, TheOldFormatAndEmptyInputAreRefused) {
  TempPath old("dump-old"), empty("dump-empty");
  std::ofstream(old.str(), std::ios::binary) << "k1\tv1\nk2\tv2\n";
  EXPECT_EQ(ctl("load " + old.str()), 2);
  EXPECT_THAT(err(), HasSubstr(old.str() + ":1: not a ferrite-dump file"));
  std::ofstream(empty.str(), std::ios::binary) << "";
  EXPECT_EQ(ctl("load " + empty.str()), 2);
  EXPECT_THAT(err(), HasSubstr("empty"));
  EXPECT_EQ(ctl("load /nonexistent/x"), 2);
  EXPECT_THAT(err(), HasSubstr("cannot read /nonexistent/x"));
}

TEST_F(DumpLoad, LoadReadsStandardInput) {
  TempPath in("dump-stdin");
  std::ofstream(in.str(), std::ios::binary) << client::dump::kHeader << "\nk\\x00\\n\t3\t0\tv\\tw\n";
  EXPECT_EQ(ctl("load - <" + in.str()), 0) << err();
  auto c = server_->client();
  ASSERT_NE(c, nullptr);
  client::Reply r;
  auto s = c->get(std::string("k\0\n", 3), &r);
  ASSERT_TRUE(s.is_ok());
  ASSERT_EQ(*s, proto::OpStatus::kOk);
  EXPECT_EQ(r.value, "v\tw");
  EXPECT_EQ(r.flags, 3u);
}

}  // namespace
}  // namespace ferrite::testing
