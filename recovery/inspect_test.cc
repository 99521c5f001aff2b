// inspect_pool: reports what is in a pool and leaves its clean flag alone.
#include "recovery/inspect.h"

#include <gtest/gtest.h>

#include "index/index.h"
#include "tests/util/temp_path.h"

namespace ferrite::recovery {
namespace {

TEST(Inspect, ReportsAPoolWithAnIndexAndKeepsItClean) {
  testing::TempPath path("inspect");
  {
    auto pool = pmem::Pool::create(path.str(), 64u << 20);
    ASSERT_TRUE(pool.is_ok());
    auto idx = index::Index::open(**pool, {.workers = 1});
    ASSERT_TRUE(idx.is_ok());
    index::Op op = index::Op::set("k", "v");
    ASSERT_EQ((*idx)->worker(0).execute_one(op), Result::kOk);
    idx.value().reset();
    (*pool)->mark_clean_on_close();
  }
  auto r = inspect_pool(path.str());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->format_major, pmem::kFormatMajor);
  EXPECT_EQ(r->pool_size, 64u << 20);
  EXPECT_TRUE(r->clean_shutdown);
  EXPECT_EQ(r->open_count, 1u);
  EXPECT_TRUE(r->has_index);
  EXPECT_EQ(r->log_segments, 1u);
  EXPECT_GT(r->allocated_bytes, 0u);
  auto again = inspect_pool(path.str());
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->clean_shutdown) << "inspecting must not make a clean pool look crashed";
  EXPECT_EQ(again->open_count, 2u);
}

TEST(Inspect, DirtyPoolIsReportedDirty) {
  testing::TempPath path("inspect-dirty");
  { ASSERT_TRUE(pmem::Pool::create(path.str(), 32u << 20).is_ok()); }  // closed without mark_clean
  auto r = inspect_pool(path.str());
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->clean_shutdown);
  EXPECT_FALSE(r->has_index);
}

TEST(Inspect, PassesOpenErrorsThrough) {
  auto r = inspect_pool("/dev/shm/ferrite-no-such-pool-for-inspect");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace ferrite::recovery
