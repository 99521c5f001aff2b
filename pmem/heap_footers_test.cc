// The libpmemobj footer work-around (pmem/heap_footers.h): a pool whose free
// block carries a stale footer, as a power failure can leave it, must not let
// a later free merge across a used block.
#include "pmem/heap_footers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "pmem/pool.h"
#include "tests/util/temp_path.h"

namespace ferrite::pmem {
namespace {

using testing::TempPath;

// libpmemobj 1.x heap layout, only what the test needs to plant a footer.
constexpr std::size_t kHeapOffsetField = 4096 + 1024 + 16;
constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kZoneMeta = 64 + 65528 * 8;
constexpr std::size_t kBlock = 4u << 20;  // 16 chunks of payload: a huge allocation

struct Heap {
  std::size_t headers = 0;  // file offset of zone 0's chunk header array
  std::size_t chunks = 0;   // file offset of zone 0's first chunk
  uint32_t chunk_of(uint64_t obj_off) const { return static_cast<uint32_t>((obj_off - chunks) / kChunk); }
};

Heap heap_of(const Pool& pool) {
  uint64_t heap_off = 0;
  std::memcpy(&heap_off, pool.base() + kHeapOffsetField, 8);
  return Heap{heap_off + 1024 + 64, heap_off + 1024 + kZoneMeta};
}

uint64_t header(const Pool& pool, const Heap& h, uint32_t chunk) {
  uint64_t v = 0;
  std::memcpy(&v, pool.base() + h.headers + chunk * 8ull, 8);
  return v;
}

PMEMoid alloc(Pool& pool) {
  PMEMoid oid = OID_NULL;
  EXPECT_EQ(pmemobj_alloc(pool.handle(), &oid, kBlock, 0, nullptr, nullptr), 0);
  return oid;
}

TEST(HeapFooters, CleanPoolNeedsNoRewrite) {
  TempPath path("footers-clean");
  {
    auto pool = Pool::create(path.str(), 64ull << 20);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    PMEMoid a = alloc(**pool);
    alloc(**pool);
    pmemobj_free(&a);
  }
  auto pool = Pool::open(path.str());
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  // The rebuild reads the heap as libpmemobj wrote it: after a clean close
  // every footer it computes is already there.
  EXPECT_EQ((*pool)->footers_rewritten_at_open(), 0u);
  const FooterRebuild r = rebuild_heap_footers((*pool)->handle(), (*pool)->size());
  EXPECT_TRUE(r.layout_known) << r.why;
  EXPECT_EQ(r.zones, 1u);
  EXPECT_GE(r.blocks, 3u);  // a free block, a used block, the free rest of the zone
  EXPECT_EQ(r.rewritten, 0u);
}

TEST(HeapFooters, StaleFooterDoesNotMergeAcrossAUsedBlock) {
  TempPath path("footers-stale");
  uint64_t a_off = 0;
  uint64_t b_off = 0;
  std::size_t footer_file_off = 0;
  uint64_t stale = 0;
  {
    auto pool = Pool::create(path.str(), 64ull << 20);
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    Pool& p = **pool;
    // X | A | F | B | G, then free X and F: two free blocks with A between.
    PMEMoid x = alloc(p);
    PMEMoid a = alloc(p);
    PMEMoid f = alloc(p);
    PMEMoid b = alloc(p);
    alloc(p);
    a_off = a.off;
    b_off = b.off;
    const Heap h = heap_of(p);
    const uint32_t cx = h.chunk_of(x.off);
    const uint32_t cf = h.chunk_of(f.off);
    const uint32_t cb = h.chunk_of(b.off);
    ASSERT_LT(cx, h.chunk_of(a.off));
    ASSERT_LT(h.chunk_of(a.off), cf);
    ASSERT_LT(cf, cb);
    pmemobj_free(&x);
    pmemobj_free(&f);
    ASSERT_EQ(header(p, h, cf) & 0xffff, 2u) << "F is a free block";
    ASSERT_EQ(header(p, h, cx) & 0xffff, 2u) << "X is a free block";
    // The footer just left of B as an earlier heap state could have left it:
    // a free block reaching back to X's first chunk.
    const uint32_t last_of_f = cb - 1;
    footer_file_off = h.headers + last_of_f * 8ull;
    stale = 1u | (uint64_t{last_of_f - cx + 1} << 32);
    ASSERT_NE(header(p, h, last_of_f), stale);
  }
  {
    const int fd = ::open(path.str().c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, &stale, 8, static_cast<off_t>(footer_file_off)), 8);
    ::close(fd);
  }
  {
    auto pool = Pool::open(path.str());
    ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
    Pool& p = **pool;
    EXPECT_GE(p.footers_rewritten_at_open(), 1u);
    // Free B: its left neighbour is F alone. Then allocate everything there is
    // and check that nothing handed out overlaps A, which is still in use.
    PMEMoid b = pmemobj_oid(p.base() + b_off);
    pmemobj_free(&b);
    std::vector<PMEMoid> got;
    for (int i = 0; i < 64; ++i) {
      PMEMoid o = OID_NULL;
      if (pmemobj_alloc(p.handle(), &o, kBlock, 0, nullptr, nullptr) != 0) break;
      got.push_back(o);
    }
    ASSERT_GE(got.size(), 3u);
    for (const PMEMoid& o : got) {
      const bool overlaps = o.off < a_off + kBlock && a_off < o.off + kBlock;
      EXPECT_FALSE(overlaps) << "block at " << o.off << " overlaps the live block at " << a_off;
    }
  }
  // And the heap still opens.
  auto again = Pool::open(path.str());
  EXPECT_TRUE(again.is_ok()) << again.status().to_string();
}

TEST(HeapFooters, UnknownLayoutIsLeftAlone) {
  std::vector<unsigned char> fake(1u << 20, 0);
  const FooterRebuild r = rebuild_heap_footers(reinterpret_cast<PMEMobjpool*>(fake.data()), fake.size());
  EXPECT_FALSE(r.layout_known);
  EXPECT_FALSE(r.why.empty());
  EXPECT_EQ(r.rewritten, 0u);
}

}  // namespace
}  // namespace ferrite::pmem
