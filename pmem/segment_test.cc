// Segment allocation: zeroed, headed, enumerable, freed, survives reopen,
// atomic with the caller's own updates, and kNoSpace when the pool is full.
#include "pmem/segment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "tests/util/pool_fixture.h"

namespace ferrite::pmem {
namespace {

constexpr std::size_t kSeg = 1u << 20;

class SegmentTest : public testing::PoolTest {
 protected:
  SegmentTest() : PoolTest("seg") {}
  void SetUp() override { create_pool(32u << 20, kSeg); }
};

TEST_F(SegmentTest, AllocateGivesZeroedSegmentWithHeader) {
  SegmentAllocator alloc(*pool_);
  auto seg = alloc.allocate(SegmentKind::kLog, 3);
  ASSERT_TRUE(seg.is_ok()) << seg.status().to_string();
  SegmentHeader* h = pool_->ptr(*seg);
  EXPECT_EQ(h->magic, kSegmentMagic);
  EXPECT_EQ(h->kind, static_cast<uint32_t>(SegmentKind::kLog));
  EXPECT_EQ(h->owner, 3u);
  EXPECT_EQ(h->size, kSeg - 64) << "the object fills whole chunks; the segment starts 64 bytes in";
  EXPECT_EQ(h->seq, 1u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(h) % 64, 0u) << "segments are cache-line aligned";
  const char* d = h->data();
  for (std::size_t i = 0; i < h->data_size(); i += 4096) ASSERT_EQ(d[i], 0) << i;
  EXPECT_TRUE(pool_->contains(h, kSeg));
}

TEST_F(SegmentTest, EnumerateReleaseAndReopen) {
  SegmentAllocator alloc(*pool_);
  std::set<uint64_t> offs;
  for (uint32_t i = 0; i < 5; ++i) {
    auto s = alloc.allocate(SegmentKind::kLog, i);
    ASSERT_TRUE(s.is_ok());
    offs.insert(s->raw());
    SegmentHeader* h = pool_->ptr(*s);
    ASSERT_NE(h, nullptr);
    std::memset(h->data(), 'a' + static_cast<int>(i), 100);
    pool_->persister().persist(h->data(), 100);
  }
  EXPECT_EQ(alloc.count(), 5u);
  ASSERT_TRUE(alloc.release(POff<SegmentHeader>(*offs.begin())).is_ok());
  offs.erase(offs.begin());
  EXPECT_EQ(alloc.count(), 4u);

  pool_.reset();
  auto p = Pool::open(path_.str());
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  SegmentAllocator again(**p);
  std::set<uint64_t> seen;
  std::set<uint64_t> seqs;
  again.for_each_segment([&](POff<SegmentHeader> off, SegmentHeader* h) {
    seen.insert(off.raw());
    seqs.insert(h->seq);
    EXPECT_EQ(h->data()[0], static_cast<char>('a' + h->owner)) << "data survives reopen";
  });
  EXPECT_EQ(seen, offs);
  EXPECT_EQ(seqs.size(), 4u) << "sequence numbers are unique";
  EXPECT_EQ((*p)->root()->segment_seq, 5u);
}

TEST_F(SegmentTest, ReleaseOfNonSegmentIsRejected) {
  SegmentAllocator alloc(*pool_);
  Status s = alloc.release(POff<SegmentHeader>(pool_->off(pool_->root()).raw()));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST_F(SegmentTest, FullPoolGivesNoSpaceThenRecoversAfterRelease) {
  SegmentAllocator alloc(*pool_);
  std::vector<POff<SegmentHeader>> segs;
  for (int i = 0; i < 100; ++i) {
    auto s = alloc.allocate(SegmentKind::kLog, 0);
    if (!s.is_ok()) {
      EXPECT_EQ(s.status().code(), Status::Code::kNoSpace) << s.status().to_string();
      EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("no room"));
      break;
    }
    segs.push_back(*s);
  }
  ASSERT_GT(segs.size(), 10u) << "a 32 MiB pool fits a good number of 1 MiB segments";
  ASSERT_LT(segs.size(), 32u) << "and cannot fit more than its size";
  const uint64_t seq_after_fail = pool_->root()->segment_seq;
  EXPECT_EQ(seq_after_fail, segs.size()) << "a failed allocation rolled back its sequence bump";
  ASSERT_TRUE(alloc.release(segs.back()).is_ok());
  EXPECT_TRUE(alloc.allocate(SegmentKind::kLog, 0).is_ok());
}

TEST_F(SegmentTest, CallerUpdateIsAtomicWithAllocation) {
  SegmentAllocator alloc(*pool_);
  auto* link = reinterpret_cast<uint64_t*>(pool_->root()->reserved);
  auto ok = alloc.allocate(SegmentKind::kIndex, 0, [&](Tx& tx, SegmentHeader* h) {
    tx.set(link, pool_->off(h).raw());
  });
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*link, ok->raw());
  auto bad = alloc.allocate(SegmentKind::kIndex, 0, [&](Tx& tx, SegmentHeader*) {
    tx.set(link, uint64_t{0});
    tx.abort(ECANCELED, "caller refused");
  });
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(*link, ok->raw()) << "the caller's update rolled back";
  EXPECT_EQ(alloc.count(), 1u) << "and so did the allocation";
}

}  // namespace
}  // namespace ferrite::pmem
