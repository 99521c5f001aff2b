// Pool layer: create/open/close, reopen keeps data, clean-shutdown flag, and
// every open/create error the pool promises a clear Status for.
#include "pmem/pool.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "tests/util/temp_path.h"

namespace ferrite::pmem {
namespace {

using ::testing::HasSubstr;
using testing::TempPath;

constexpr std::size_t kSize = 32ull << 20;

std::unique_ptr<Pool> must_create(const std::string& path, std::size_t size = kSize) {
  auto p = Pool::create(path, size);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? std::move(p).value() : nullptr;
}

std::unique_ptr<Pool> must_open(const std::string& path) {
  auto p = Pool::open(path);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? std::move(p).value() : nullptr;
}

TEST(Pool, CreateInitializesRootHeader) {
  TempPath path("root");
  auto pool = must_create(path.str());
  ASSERT_NE(pool, nullptr);
  const RootHeader* r = pool->root();
  EXPECT_EQ(r->magic, kRootMagic);
  EXPECT_EQ(r->format_major, kFormatMajor);
  EXPECT_EQ(r->format_minor, kFormatMinor);
  EXPECT_EQ(r->pool_size, kSize);
  EXPECT_EQ(r->segment_size, kDefaultSegmentSize);
  EXPECT_EQ(r->open_count, 1u);
  EXPECT_EQ(r->clean_shutdown, 0u) << "an open pool is dirty until closed cleanly";
  EXPECT_EQ(pool->size(), kSize);
  EXPECT_TRUE(pool->is_pmem()) << "tests run with PMEM_IS_PMEM_FORCE=1";
  EXPECT_TRUE(pool->contains(r, sizeof(*r)));
  EXPECT_FALSE(pool->contains(pool->base() + kSize - 4, 8));
}

TEST(Pool, ReopenAfterClosePreservesData) {
  TempPath path("reopen");
  POff<uint64_t> where;
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    // Use the reserved tail of the root as scratch space for the test.
    auto* scratch = reinterpret_cast<uint64_t*>(pool->root()->reserved);
    for (int i = 0; i < 64; ++i) scratch[i] = 0xfe00 + i;
    pool->persister().persist(scratch, 64 * sizeof(uint64_t));
    where = pool->off(scratch);
  }
  auto pool = must_open(path.str());
  ASSERT_NE(pool, nullptr);
  uint64_t* scratch = pool->ptr(where);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(scratch[i], 0xfe00u + i) << i;
  EXPECT_EQ(pool->root()->open_count, 2u);
}

TEST(Pool, CleanShutdownFlagTracksHowThePoolWasClosed) {
  TempPath path("clean");
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    EXPECT_TRUE(pool->opened_after_clean_shutdown()) << "a fresh pool starts clean";
    // closed without mark_clean_on_close(): like a crash
  }
  {
    auto pool = must_open(path.str());
    ASSERT_NE(pool, nullptr);
    EXPECT_FALSE(pool->opened_after_clean_shutdown());
    pool->mark_clean_on_close();
  }
  auto pool = must_open(path.str());
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->opened_after_clean_shutdown());
}

TEST(Pool, OpenOrCreateCreatesThenOpens) {
  TempPath path("ooc");
  {
    auto p = Pool::open_or_create(path.str(), kSize);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    EXPECT_EQ((*p)->root()->open_count, 1u);
  }
  auto p = Pool::open_or_create(path.str(), kSize);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)->root()->open_count, 2u);
}

TEST(PoolErrors, CreateInMissingDirectory) {
  auto p = Pool::create("/dev/shm/ferrite-no-such-dir-xyz/pool", kSize);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("directory /dev/shm/ferrite-no-such-dir-xyz does not exist"));
}

TEST(PoolErrors, OpenInMissingDirectory) {
  auto p = Pool::open("/dev/shm/ferrite-no-such-dir-xyz/pool");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("does not exist"));
}

TEST(PoolErrors, OpenMissingFile) {
  TempPath path("missing");
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("no such file"));
}

TEST(PoolErrors, CreateOverExistingFileIsRefusedAndLeavesItIntact) {
  TempPath path("exists");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "precious", 8), 8);
  ::close(fd);
  auto p = Pool::create(path.str(), kSize);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("file exists"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 8) << "the existing file must not be touched";
}

TEST(PoolErrors, PoolTooSmall) {
  TempPath path("small");
  auto p = Pool::create(path.str(), kMinPoolSize - 1);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("below the minimum"));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "no file left behind";
  EXPECT_TRUE(Pool::create(path.str(), kMinPoolSize).is_ok()) << "the minimum itself is accepted";
}

TEST(PoolErrors, BadSegmentSize) {
  TempPath path("segsize");
  auto p = Pool::create(path.str(), kSize, 3u << 20);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("power of two"));
}

TEST(PoolErrors, NoSpaceOnDevice) {
  TempPath path("nospace");
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs("/dev/shm", &vfs), 0);
  const std::size_t avail = static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize;
  auto p = Pool::create(path.str(), avail + (1ull << 30));
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kNoSpace);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("free"));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "no partial file left behind";
}

TEST(PoolErrors, WrongLayout) {
  TempPath path("layout");
  PMEMobjpool* pop = pmemobj_create(path.c_str(), "someone-else", kSize, 0600);
  ASSERT_NE(pop, nullptr) << pmemobj_errormsg();
  pmemobj_close(pop);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kIncompatible);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("wrong layout"));
}

TEST(PoolErrors, NeverInitializedRoot) {
  TempPath path("noroot");
  PMEMobjpool* pop = pmemobj_create(path.c_str(), kLayoutName, kSize, 0600);
  ASSERT_NE(pop, nullptr) << pmemobj_errormsg();
  pmemobj_close(pop);  // like a crash between C1 and C2 in pool.cc
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("never initialized"));
}

TEST(PoolErrors, NewerOnMediaVersion) {
  TempPath path("newer");
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    pool->root()->format_major = kFormatMajor + 1;
    pool->persister().persist(&pool->root()->format_major, 4);
  }
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kIncompatible);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("newer than this build"));
}

TEST(PoolErrors, UnknownIncompatFeature) {
  TempPath path("feature");
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    pool->root()->incompat_features = 1ull << 40;
    pool->persister().persist(&pool->root()->incompat_features, 8);
  }
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kIncompatible);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("features this build does not know"));
}

TEST(PoolErrors, UnknownCompatFeatureIsAccepted) {
  TempPath path("compat");
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    pool->root()->compat_features = 1ull << 5;
    pool->persister().persist(&pool->root()->compat_features, 8);
  }
  auto pool = must_open(path.str());
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->root()->compat_features, 1ull << 5) << "unknown compat bits are preserved";
}

TEST(PoolErrors, TruncatedFile) {
  TempPath path("trunc");
  { ASSERT_NE(must_create(path.str()), nullptr); }
  ASSERT_EQ(::truncate(path.c_str(), kSize - (8u << 20)), 0);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("truncated"));
}

TEST(PoolErrors, TruncatedBelowAnyPool) {
  TempPath path("trunc2");
  { ASSERT_NE(must_create(path.str()), nullptr); }
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("truncated or not a pool"));
}

TEST(PoolErrors, CorruptPoolHeader) {
  TempPath path("corrupt");
  { ASSERT_NE(must_create(path.str()), nullptr); }
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  char junk[256];
  std::memset(junk, 0xA5, sizeof(junk));
  ASSERT_EQ(::pwrite(fd, junk, sizeof(junk), 16), static_cast<ssize_t>(sizeof(junk)));
  ::close(fd);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("is corrupt: the pool header fails its checksum"));
}

TEST(PoolErrors, CorruptRootMagic) {
  TempPath path("magic");
  {
    auto pool = must_create(path.str());
    ASSERT_NE(pool, nullptr);
    pool->root()->magic ^= 0xff;
    pool->persister().persist(&pool->root()->magic, 8);
  }
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("bad magic"));
}

TEST(PoolErrors, NotAPoolAtAll) {
  TempPath path("garbage");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  std::string block(1 << 20, 'x');
  for (int i = 0; i < 32; ++i) ASSERT_EQ(::write(fd, block.data(), block.size()), static_cast<ssize_t>(block.size()));
  ::close(fd);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
}

TEST(PoolErrors, SecondOpenerInSameProcessIsRefused) {
  TempPath path("twice");
  auto pool = must_create(path.str());
  ASSERT_NE(pool, nullptr);
  auto again = Pool::open(path.str());
  ASSERT_FALSE(again.is_ok());
  EXPECT_EQ(again.status().code(), Status::Code::kBusy);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("in use by another process"));
}

TEST(PoolErrors, SecondOpenerInAnotherProcessIsRefused) {
  TempPath path("otherproc");
  auto pool = must_create(path.str());
  ASSERT_NE(pool, nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto p = Pool::open(path.str());
    ::_exit(!p.is_ok() && p.status().code() == Status::Code::kBusy ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "the child could open a pool the parent holds";
  pool.reset();
  EXPECT_NE(must_open(path.str()), nullptr) << "after close the pool can be opened again";
}

}  // namespace
}  // namespace ferrite::pmem
