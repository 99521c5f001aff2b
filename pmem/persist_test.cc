// Persist primitives, PersistBatch accounting, the observer hook, msync mode
// (run in a child process without PMEM_IS_PMEM_FORCE) and transactions.
#include "pmem/persist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "pmem/pool.h"
#include "tests/util/pool_fixture.h"

extern char** environ;

namespace ferrite::pmem {
namespace {

using ::testing::HasSubstr;
using testing::TempPath;

struct RecordingObserver : PersistObserver {
  std::vector<std::pair<const void*, std::size_t>> flushes;
  int fences = 0;
  void on_flush(const void* a, std::size_t n) noexcept override { flushes.emplace_back(a, n); }
  void on_fence() noexcept override { ++fences; }
};

TEST(Persister, FlushCountsEveryOverlappedLine) {
  alignas(64) static char buf[64 * 8];
  Persister p(Persister::Mode::kFlush, cpu_flush_insn());
  EXPECT_EQ(p.flush_nodrain(buf, 0), 0u);
  EXPECT_EQ(p.flush_nodrain(buf, 1), 1u);
  EXPECT_EQ(p.flush_nodrain(buf, 64), 1u);
  EXPECT_EQ(p.flush_nodrain(buf, 65), 2u);
  EXPECT_EQ(p.flush_nodrain(buf + 63, 2), 2u) << "a range crossing a line boundary touches two lines";
  EXPECT_EQ(p.flush_nodrain(buf + 8, 64 * 4), 5u);
  p.fence();
}

TEST(Persister, DetectsTheBestInstruction) {
  // Every x86-64 has clflush; this machine has clwb. The call must be stable.
  EXPECT_EQ(cpu_flush_insn(), cpu_flush_insn());
}

TEST(PersistBatch, FencesOncePerCommitAndOnlyWhenNeeded) {
  alignas(64) static char buf[64 * 32];
  Persister p(Persister::Mode::kFlush, cpu_flush_insn());
  RecordingObserver obs;
  set_persist_observer(&obs);
  PersistBatch batch(p);
  EXPECT_EQ(batch.commit(), 0u) << "nothing added: no fence";
  EXPECT_EQ(obs.fences, 0);
  for (int i = 0; i < 16; ++i) batch.add(buf + 64 * i, 8);
  EXPECT_TRUE(batch.pending());
  EXPECT_EQ(obs.flushes.size(), 16u) << "lines are written back as they are added";
  EXPECT_EQ(obs.fences, 0) << "no fence before commit";
  EXPECT_EQ(batch.commit(), 16u);
  EXPECT_EQ(obs.fences, 1);
  EXPECT_FALSE(batch.pending());
  batch.add(buf, 200);
  EXPECT_EQ(batch.commit(), 4u);
  EXPECT_EQ(obs.fences, 2);
  EXPECT_EQ(batch.total_lines(), 20u);
  EXPECT_EQ(batch.total_fences(), 2u);
  set_persist_observer(nullptr);
}

// Runs in a child process whose environment lacks PMEM_IS_PMEM_FORCE (libpmem
// reads it once per process, so the parent cannot switch modes).
TEST(PersisterMsync, ChildWithoutForceFlag) {
  if (std::getenv("FERRITE_MSYNC_CHILD") == nullptr) GTEST_SKIP() << "runs only as the child of MsyncModeWithoutForceFlag";
  ASSERT_EQ(std::getenv("PMEM_IS_PMEM_FORCE"), nullptr);
  TempPath path("msync");
  auto pool = Pool::create(path.str(), 16u << 20);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  EXPECT_FALSE((*pool)->is_pmem());
  EXPECT_EQ((*pool)->persister().mode(), Persister::Mode::kMsync);
  auto* scratch = reinterpret_cast<uint64_t*>((*pool)->root()->reserved);
  *scratch = 42;
  EXPECT_EQ((*pool)->persister().flush_nodrain(scratch, 8), 0u) << "msync mode writes pages, not lines";
  PersistBatch batch((*pool)->persister());
  batch.add(scratch, 8);
  batch.commit();
  pool = Status::internal("closed");
  auto again = Pool::open(path.str());
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(*reinterpret_cast<uint64_t*>((*again)->root()->reserved), 42u);
}

TEST(PersisterMsync, MsyncModeWithoutForceFlag) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "PMEM_IS_PMEM_FORCE=", 19) != 0) env_strings.emplace_back(*e);
  }
  env_strings.emplace_back("FERRITE_MSYNC_CHILD=1");
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  std::string filter = "--gtest_filter=PersisterMsync.ChildWithoutForceFlag";
  char* argv[] = {self.data(), filter.data(), nullptr};
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, self.c_str(), &fa, nullptr, argv, envp.data()), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) err.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << err;
  EXPECT_THAT(err, HasSubstr("not on persistent memory")) << "the slow path must be announced";
  EXPECT_THAT(err, HasSubstr("PMEM_IS_PMEM_FORCE=1"));
}

class TxTest : public testing::PoolTest {
 protected:
  TxTest() : PoolTest("tx") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(create_pool(32u << 20, kDefaultSegmentSize));
    word_ = reinterpret_cast<uint64_t*>(pool_->root()->reserved);
    *word_ = 1;
    pool_->persister().persist(word_, 8);
  }
  uint64_t* word_ = nullptr;
};

TEST_F(TxTest, CommitKeepsChanges) {
  Status s = pool_->transact([&](Tx& tx) { tx.set(word_, uint64_t{7}); });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(*word_, 7u);
}

TEST_F(TxTest, ExplicitAbortRollsBackAndReportsWhy) {
  Status s = pool_->transact([&](Tx& tx) {
    tx.set(word_, uint64_t{9});
    tx.abort(ECANCELED, "changed my mind");
  });
  ASSERT_FALSE(s.is_ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("changed my mind"));
  EXPECT_EQ(*word_, 1u) << "rolled back";
}

TEST_F(TxTest, ForeignExceptionRollsBackAndPropagates) {
  EXPECT_THROW((void)pool_->transact([&](Tx& tx) {
    tx.set(word_, uint64_t{11});
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_EQ(*word_, 1u);
  // The thread is usable for a new transaction afterwards.
  EXPECT_TRUE(pool_->transact([&](Tx& tx) { tx.set(word_, uint64_t{12}); }).is_ok());
  EXPECT_EQ(*word_, 12u);
}

TEST_F(TxTest, NestedTransactionIsRefused) {
  Status inner;
  Status outer = pool_->transact([&](Tx&) { inner = pool_->transact([](Tx&) {}); });
  EXPECT_TRUE(outer.is_ok());
  EXPECT_EQ(inner.code(), Status::Code::kInternal);
}

TEST_F(TxTest, AllocationFailureIsNoSpaceAndRollsBack) {
  Status s = pool_->transact([&](Tx& tx) {
    tx.set(word_, uint64_t{5});
    (void)tx.alloc(1ull << 40, 1, false);
  });
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(*word_, 1u);
}

TEST_F(TxTest, AllocatedObjectSurvivesReopenOnlyIfCommitted) {
  uint64_t kept = 0;
  ASSERT_TRUE(pool_->transact([&](Tx& tx) {
    PMEMoid oid = tx.alloc(128, 77, true);
    tx.set(word_, oid.off);
    kept = oid.off;
  }).is_ok());
  (void)pool_->transact([&](Tx& tx) {
    (void)tx.alloc(128, 78, true);
    tx.abort(ECANCELED, "drop it");
  });
  pool_.reset();
  auto p = Pool::open(path_.str());
  ASSERT_TRUE(p.is_ok());
  int type77 = 0, type78 = 0;
  for (PMEMoid o = pmemobj_first((*p)->handle()); !OID_IS_NULL(o); o = pmemobj_next(o)) {
    if (pmemobj_type_num(o) == 77) ++type77;
    if (pmemobj_type_num(o) == 78) ++type78;
  }
  EXPECT_EQ(type77, 1);
  EXPECT_EQ(type78, 0) << "an aborted allocation leaves nothing behind";
  EXPECT_EQ(*reinterpret_cast<uint64_t*>((*p)->root()->reserved), kept);
}

}  // namespace
}  // namespace ferrite::pmem
