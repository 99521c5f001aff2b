// Verify-on-read (issue 15): a record whose bytes changed on media after a
// clean shutdown (no crash repair runs then) is never served nor copied into
// a new record; the read is counted and the key answered as a miss.
// Single-threaded test; one pool file per test under /dev/shm. Also the
// death test of write_record's debug-build check (record.h).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "index/index.h"
#include "index/record.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::index {
namespace {

// Flips one bit of the first occurrence of `needle` in the file; false if
// the bytes are not found.
bool flip_in_file(const std::string& path, std::string_view needle) {
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) return false;
  struct stat st {};
  ::fstat(fd, &st);
  void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return false;
  std::string_view all(static_cast<const char*>(m), static_cast<std::size_t>(st.st_size));
  const auto at = all.find(needle);
  if (at != std::string_view::npos) static_cast<char*>(m)[at + needle.size() / 2] ^= 0x10;
  ::munmap(m, static_cast<std::size_t>(st.st_size));
  return at != std::string_view::npos;
}

class VerifyReadTest : public testing::PoolIndexTest {
 protected:
  VerifyReadTest() : PoolIndexTest("verify") {}
  void open_all(bool create) {
    if (create) {
      ASSERT_NO_FATAL_FAILURE(create_pool());
    } else {
      ASSERT_NO_FATAL_FAILURE(open_pool());
    }
    open_index({.workers = 1});
  }
  void close_clean() { close_all(); }
  Result run(Op op) { return idx_->worker(0).execute_one(op); }
  std::string get(std::string_view k, Result* r) {
    std::string out;
    *r = run(Op::get(k, &out));
    return out;
  }
};

TEST_F(VerifyReadTest, FlippedValueAfterCleanCloseIsAMissNotWrongBytes) {
  open_all(true);
  ASSERT_EQ(run(Op::set("good", "value-of-good-key-0123456789")), Result::kOk);
  ASSERT_EQ(run(Op::set("bad", "value-of-bad-key-ABCDEFGHIJKL")), Result::kOk);
  ASSERT_EQ(run(Op::set("num", "1234567890123456")), Result::kOk);
  ASSERT_EQ(run(Op::set("app", "appendable-value-zyxwvutsrq")), Result::kOk);
  close_clean();
  ASSERT_TRUE(flip_in_file(path_.str(), "value-of-bad-key-ABCDEFGHIJKL"));
  ASSERT_TRUE(flip_in_file(path_.str(), "1234567890123456"));
  ASSERT_TRUE(flip_in_file(path_.str(), "appendable-value-zyxwvutsrq"));
  open_all(false);
  EXPECT_EQ(idx_->stats().recovery_bad_records, 0u) << "clean open: no crash repair looked at the records";

  Result r{};
  EXPECT_EQ(get("good", &r), "value-of-good-key-0123456789");
  EXPECT_EQ(r, Result::kOk);
  const std::string v = get("bad", &r);
  EXPECT_EQ(r, Result::kNotFound) << "served: " << v;
  EXPECT_EQ(idx_->stats().read_bad_records, 1u);

  // Ops that copy the value into a new record must not launder the damage
  // into a record with a fresh checksum.
  Op inc;
  inc.code = OpCode::kIncr;
  inc.key = "num";
  inc.delta = 1;
  EXPECT_EQ(run(inc), Result::kNotFound);
  Op app;
  app.code = OpCode::kAppend;
  app.key = "app";
  app.value = "-tail";
  EXPECT_EQ(run(app), Result::kNotStored);
  get("app", &r);
  EXPECT_EQ(r, Result::kNotFound);
  EXPECT_EQ(idx_->stats().read_bad_records, 4u);

  // A new value replaces the damaged one and is served.
  ASSERT_EQ(run(Op::set("bad", "fresh")), Result::kOk);
  EXPECT_EQ(get("bad", &r), "fresh");
  EXPECT_EQ(r, Result::kOk);
  EXPECT_EQ(idx_->stats().read_bad_records, 4u);
}

// write_record's debug-build check: the key and value lengths fit their
// meta fields (record.h); compiled out under NDEBUG, so skipped there.
TEST(RecordChecksDeathTest, AKeyLongerThanItsFieldAborts) {
#ifdef NDEBUG
  GTEST_SKIP() << "FERRITE_DCHECK is compiled out (NDEBUG)";
#endif
  alignas(8) static char buf[512];
  const std::string too_long(256, 'k');
  EXPECT_DEATH(write_record(buf, RecordKind::kValue, too_long, "v", {}, 0, 0, 1),
               "check failed: .*key\\.size\\(\\) <= 0xffu");
  const std::string longest(255, 'k');
  const RecordHeader* r = write_record(buf, RecordKind::kValue, longest, "v", {}, 0, 0, 1);
  EXPECT_EQ(r->key(), longest);
  EXPECT_EQ(r->value(), "v");
  EXPECT_TRUE(record_valid(r, sizeof(buf)));
}

}  // namespace
}  // namespace ferrite::index
