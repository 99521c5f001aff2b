// The ferrite-dump line format: every byte string survives escaping, the
// escaped text holds no raw tab or newline, and each kind of malformed line
// is refused with the field and column at fault.
#include "client/dump_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferrite::client::dump {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string all_bytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

TEST(DumpFormat, EveryByteRoundTrips) {
  const std::string key = all_bytes(), value = all_bytes() + "\\x41\\t\\\\" + std::string(3, '\0');
  std::string line;
  append_record(&line, key, value, 4294967295u, 1999999999u);
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 3) << "only the three separators";
  for (char c : line) {
    EXPECT_TRUE(c == '\t' || (c >= 0x20 && c <= 0x7e)) << "raw byte " << int(static_cast<unsigned char>(c));
  }
  Record r;
  ASSERT_TRUE(parse_record(line, &r).is_ok()) << parse_record(line, &r).to_string();
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.value, value);
  EXPECT_EQ(r.flags, 4294967295u);
  EXPECT_EQ(r.exptime, 1999999999u);
}

TEST(DumpFormat, EscapesAreTheDocumentedOnes) {
  std::string s;
  append_escaped(&s, std::string("a\tb\nc\rd\\e f\x01\x7f\x80\xff", 15));
  EXPECT_EQ(s, "a\\tb\\nc\\rd\\\\e f\\x01\\x7f\\x80\\xff");
  Record r;
  ASSERT_TRUE(parse_record("\\x4B\\x4b\t0\t0\t", &r).is_ok()) << "either hex case";
  EXPECT_EQ(r.key, "KK");
  EXPECT_EQ(r.value, "") << "an empty value is a value";
}

TEST(DumpFormat, MalformedLinesSayWhatAndWhere) {
  struct Case {
    std::string line, a, b;
  };
  const Case cases[] = {
      {"k", "1 fields where 4 are expected", "KEY<TAB>FLAGS"},
      {"k\t1\t2", "3 fields where 4", ""},
      {"\t0\t0\tv", "the key is empty", ""},
      {"k\tx\t0\tv", "flags \"x\" (column 3)", "not a decimal number"},
      {"k\t0\t-1\tv", "exptime \"-1\" (column 5)", ""},
      {"k\t4294967296\t0\tv", "flags \"4294967296\"", "0..4294967295"},
      {"k\t0\t0\tv\tw", "a raw tab in the value (column 8)", ""},
      {"k\\q\t0\t0\tv", "key: unknown escape \\q (column 2", "allowed"},
      {"k\t0\t0\tab\\", "value: a lone backslash", "column 9"},
      {"k\t0\t0\t\\x4", "value: \\x must be followed by two hex digits", "column 7"},
      {"k\t0\t0\t\\xg0", "two hex digits", ""},
  };
  for (const Case& c : cases) {
    Record r;
    Status s = parse_record(c.line, &r);
    ASSERT_FALSE(s.is_ok()) << "accepted: " << c.line;
    EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(c.a), HasSubstr(c.b))) << c.line;
  }
}

TEST(DumpFormat, HeaderAndTheOldFormat) {
  EXPECT_TRUE(check_header("ferrite-dump\t1").is_ok());
  EXPECT_THAT(std::string(check_header("ferrite-dump\t2").message()), HasSubstr("version \"2\""));
  EXPECT_THAT(std::string(check_header("somekey\tsomevalue").message()),
              AllOf(HasSubstr("not a ferrite-dump file"), HasSubstr("key<TAB>value"), HasSubstr("refused")));
}

}  // namespace
}  // namespace ferrite::client::dump
