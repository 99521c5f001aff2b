// Test helper: the bases of fixtures that work on a pool file under a
// TempPath ($FERRITE_TEST_DIR, default /dev/shm): PoolTest, and PoolIndexTest
// with an index over it. Members keep the names the tests use (path_, pool_,
// idx_); the helpers report errors as gtest failures, so call them from SetUp
// (a failure there skips the test body) or under ASSERT_NO_FATAL_FAILURE. The
// index is closed before the pool, in TearDown and whenever either is reopened.
//
// Thread safety: the fixture belongs to the test thread; threads a test
// starts may use pool_ and idx_ as their own contracts allow.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "index/index.h"
#include "pmem/pool.h"
#include "tests/util/temp_path.h"

namespace ferrite::testing {

// A pool file at path_: pool_.
class PoolTest : public ::testing::Test {
 protected:
  explicit PoolTest(const std::string& tag = "pool") : path_(tag) {}
  void TearDown() override { close_all(); }

  // A fresh pool at path_ (a file left there is removed first).
  void create_pool(std::size_t size = 64u << 20, std::size_t segment = 2u << 20) {
    close_all();
    ::unlink(path_.c_str());
    auto p = pmem::Pool::create(path_.str(), size, segment);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    pool_ = std::move(p).value();
  }
  // Reopens the pool file at path_.
  void open_pool(const pmem::OpenOptions& o = {}) {
    close_all();
    auto p = pmem::Pool::open(path_.str(), o);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    pool_ = std::move(p).value();
  }
  // Closes what is open (the index first, in PoolIndexTest).
  virtual void close_all() { pool_.reset(); }

  TempPath path_;
  std::unique_ptr<pmem::Pool> pool_;
};

// A pool and an index over it: idx_.
class PoolIndexTest : public PoolTest {
 protected:
  using PoolTest::PoolTest;

  // An index over pool_ (closing the one open before).
  void open_index(const index::IndexOptions& o = {}) {
    ASSERT_NE(pool_, nullptr) << "open_index() before create_pool()/open_pool()";
    idx_.reset();
    auto i = index::Index::open(*pool_, o);
    ASSERT_TRUE(i.is_ok()) << i.status().to_string();
    idx_ = std::move(i).value();
  }
  void close_all() override {
    idx_.reset();
    PoolTest::close_all();
  }

  std::unique_ptr<index::Index> idx_;
};

}  // namespace ferrite::testing
