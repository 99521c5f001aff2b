// check_pool and ferrite-check: a consistent pool passes; a corrupted record
// is named; the command's exit codes follow the outcome.
#include "recovery/check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "index/index.h"
#include "pmem/segment.h"
#include "tests/util/temp_path.h"

namespace ferrite::recovery {
namespace {

using ::testing::HasSubstr;

void fill(const std::string& path, int n) {
  auto pool = pmem::Pool::create(path, 64u << 20);
  ASSERT_TRUE(pool.is_ok());
  auto idx = index::Index::open(**pool, {.workers = 1});
  ASSERT_TRUE(idx.is_ok());
  auto& w = (*idx)->worker(0);
  for (int i = 0; i < n; ++i) {
    const std::string key = "k" + std::to_string(i), value = "value-" + std::to_string(i);  // ops hold views
    index::Op op = index::Op::set(key, value);
    ASSERT_EQ(w.execute_one(op), Result::kOk);
  }
  for (int i = 1; i < n; i += 10) {
    const std::string key = "k" + std::to_string(i);
    index::Op op = index::Op::del(key);
    ASSERT_EQ(w.execute_one(op), Result::kOk);
  }
  idx.value().reset();
  (*pool)->mark_clean_on_close();
}

int run_cli(const std::string& pool) {
  const char* bin = std::getenv("FERRITE_CHECK");
  if (bin == nullptr) return -1;
  const std::string cmd = std::string(bin) + " " + pool + " > /dev/null 2>&1";
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(Check, ConsistentPoolPasses) {
  testing::TempPath path("check-ok");
  fill(path.str(), 5000);
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->ok()) << to_string(*r);
  EXPECT_EQ(r->keys, 4500u);
  EXPECT_EQ(r->tombstones, 500u);
  EXPECT_GT(r->referenced_bytes, 0u);
  EXPECT_GE(r->log_bytes, r->referenced_bytes);
  EXPECT_TRUE(r->pool.clean_shutdown);
  auto again = check_pool(path.str());
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->pool.clean_shutdown) << "checking leaves a clean pool clean";
  EXPECT_EQ(run_cli(path.str()), 0);
}

TEST(Check, CorruptRecordIsNamed) {
  testing::TempPath path("check-bad");
  fill(path.str(), 100);
  {
    // Flip a byte of the first record of the log: the value of "k0".
    auto pool = pmem::Pool::open(path.str());
    ASSERT_TRUE(pool.is_ok());
    pmem::SegmentAllocator alloc(**pool);
    bool done = false;
    alloc.for_each_segment([&](pmem::POff<pmem::SegmentHeader>, pmem::SegmentHeader* h) {
      if (done || h->kind != static_cast<uint32_t>(pmem::SegmentKind::kLog)) return;
      char* first_value_byte = h->data() + 24 + 2;  // header, key "k0"
      *first_value_byte ^= 0x40;
      (*pool)->persister().persist(first_value_byte, 1);
      done = true;
    });
    ASSERT_TRUE(done);
    (*pool)->mark_clean_on_close();
  }
  auto r = check_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->ok());
  ASSERT_EQ(r->problems.size(), 1u) << to_string(*r);
  EXPECT_THAT(r->problems[0], HasSubstr("fails its checksum"));
  EXPECT_EQ(run_cli(path.str()), 1);
}

TEST(Check, UnopenablePoolExits2) {
  EXPECT_EQ(run_cli("/dev/shm/ferrite-no-such-pool-for-check"), 2);
  auto r = check_pool("/dev/shm/ferrite-no-such-pool-for-check");
  EXPECT_FALSE(r.is_ok());
}

}  // namespace
}  // namespace ferrite::recovery
