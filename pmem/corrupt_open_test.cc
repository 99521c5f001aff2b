// Opening damaged or unreadable pools (issue 15): permission errors say so;
// libpmemobj metadata damage is refused before libpmemobj sees it
// (validate.h); what validation cannot see is caught by the trial open in a
// child (open_probe.h). Single-threaded; each test owns its pool file.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "pmem/open_probe.h"
#include "pmem/pool.h"
#include "pmem/validate.h"
#include "tests/util/temp_path.h"

namespace ferrite::pmem {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempPath;

void make_pool(const std::string& path) {
  auto p = Pool::create(path, 32ull << 20);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
}

uint64_t read_u64(const std::string& path, off_t off) {
  uint64_t v = 0;
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_EQ(::pread(fd, &v, 8, off), 8);
  ::close(fd);
  return v;
}

void flip(const std::string& path, off_t off, int bit) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, off), 1);
  c ^= static_cast<unsigned char>(1u << bit);
  ASSERT_EQ(::pwrite(fd, &c, 1, off), 1);
  ::close(fd);
}

// The byte holding bits 48..55 of lane `lane`'s external redo log `next`
// offset: flipped, it names an extension far outside the file.
off_t lane_next_byte(const std::string& path, uint64_t lane) {
  const uint64_t lanes_off = read_u64(path, 4096 + 1024);
  return static_cast<off_t>(lanes_off + lane * 3072 + 256 + 8 + 6);
}

TEST(CorruptOpen, FreshPoolPassesValidation) {
  TempPath path("fresh");
  make_pool(path.str());
  EXPECT_TRUE(validate_pool_file(path.str()).is_ok()) << validate_pool_file(path.str()).to_string();
  EXPECT_TRUE(probe_open(path.str(), std::chrono::seconds(30)).is_ok());
  auto p = Pool::open(path.str(), {.probe_in_child = true});
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
}

TEST(CorruptOpen, PoolHeaderFlipFailsItsChecksum) {
  TempPath path("hdr");
  make_pool(path.str());
  flip(path.str(), 40, 3);  // inside the file's UUID
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(p.status().to_string(), HasSubstr("pool header fails its checksum"));
}

// Without the validation libpmemobj 1.12 follows the wild offset during
// pmemobj_open and this process dies of SIGSEGV (see the next test).
TEST(CorruptOpen, LaneLogOffsetFlipIsRefusedBeforeLibpmemobj) {
  TempPath path("lane");
  make_pool(path.str());
  flip(path.str(), lane_next_byte(path.str(), 697), 0);
  auto p = Pool::open(path.str());
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(p.status().to_string(), HasSubstr("lane 697 external redo log"));
  EXPECT_THAT(p.status().to_string(), HasSubstr("restore"));
}

TEST(CorruptOpen, TrialOpenInAChildTurnsALibpmemobjCrashIntoAnError) {
  TempPath path("probe");
  make_pool(path.str());
  flip(path.str(), lane_next_byte(path.str(), 697), 0);
  // probe_open alone (no validation first): the child dies, this process
  // gets a corruption Status.
  const Status s = probe_open(path.str(), std::chrono::seconds(30));
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.to_string();
  EXPECT_THAT(s.to_string(), HasSubstr("libpmemobj crashed opening it"));
  EXPECT_THAT(s.to_string(), HasSubstr(path.str()));
}

TEST(CorruptOpen, PermissionDeniedIsReportedAsSuchNotAsCorruption) {
  TempPath path("perm");
  make_pool(path.str());
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  // As root the mode does not stop us: open as an unprivileged user in a
  // child and send the message back through a pipe.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    auto p = Pool::open(path.str(), {.probe_in_child = true});
    const std::string m = p.is_ok() ? "opened" : p.status().to_string();
    (void)!::write(fds[1], m.data(), m.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[1024];
  std::string msg;
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << "child could not drop privileges";
  EXPECT_THAT(msg, HasSubstr("permission denied"));
  EXPECT_THAT(msg, HasSubstr(path.str()));
  EXPECT_THAT(msg, Not(HasSubstr("corrupt")));
  ::chmod(path.c_str(), 0600);
}

}  // namespace
}  // namespace ferrite::pmem
