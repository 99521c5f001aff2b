// The log chain (see log_chain.h).
#include "index/log_chain.h"

#include <fmt/format.h>

namespace ferrite::index {

bool read_log_chain(const pmem::Pool& pool, const IndexRoot* root, std::size_t max_entries,
                    std::vector<uint64_t>* segs, std::string* why) {
  segs->clear();
  why->clear();
  const uint64_t head = root->log_chain;
  if ((head & 1) == 0) return false;  // no chain: not an error
  for (uint64_t off = head & ~uint64_t{1}; off != 0;) {
    if (segs->size() >= max_entries) {
      *why = fmt::format("more than {} entries (a loop?)", max_entries);
      return false;
    }
    if (off % kCacheLine != 0 || off + sizeof(pmem::SegmentHeader) > pool.size()) {
      *why = fmt::format("names {:#x}, outside the pool or misaligned", off);
      return false;
    }
    const auto* h = pool.ptr(pmem::POff<pmem::SegmentHeader>(off));
    if (h->magic != pmem::kSegmentMagic || h->kind != static_cast<uint32_t>(pmem::SegmentKind::kLog) ||
        round_up(h->obj_off, kCacheLine) != off) {
      *why = fmt::format("names {:#x}, which is not a log segment", off);
      return false;
    }
    segs->push_back(off);
    off = h->user[2];
  }
  return true;
}

void link_log_segment_in_tx(const pmem::Pool& pool, pmem::Tx& tx, IndexRoot* root, pmem::SegmentHeader* h) {
  // h is allocated in this transaction: its bytes need no undo, only to be
  // durable before the commit.
  h->user[2] = root->log_chain & ~uint64_t{1};
  pool.persister().persist(&h->user[2], sizeof(uint64_t));
  tx.set(&root->log_chain, pool.off(h).raw() | 1);
}

bool unlink_log_segment_in_tx(const pmem::Pool& pool, pmem::Tx& tx, IndexRoot* root, uint64_t off,
                              std::size_t max_entries) {
  if ((root->log_chain & 1) == 0) return false;
  const uint64_t next = pool.ptr(pmem::POff<pmem::SegmentHeader>(off))->user[2];
  if ((root->log_chain & ~uint64_t{1}) == off) {
    tx.set(&root->log_chain, next | 1);
    return true;
  }
  uint64_t cur = root->log_chain & ~uint64_t{1};
  for (std::size_t n = 0; cur != 0 && n < max_entries; ++n) {
    if (cur + sizeof(pmem::SegmentHeader) > pool.size()) return false;
    auto* h = pool.ptr(pmem::POff<pmem::SegmentHeader>(cur));
    if (h->user[2] == off) {
      tx.set(&h->user[2], next);
      return true;
    }
    cur = h->user[2];
  }
  return false;
}

void rebuild_log_chain(const pmem::Pool& pool, IndexRoot* root, const std::vector<uint64_t>& segs) {
  const pmem::Persister& ps = pool.persister();
  // Absent first: a crash below leaves "no chain", never a partial one.
  root->log_chain = 0;
  ps.persist(&root->log_chain, sizeof(uint64_t));
  for (std::size_t i = 0; i < segs.size(); ++i) {
    auto* h = pool.ptr(pmem::POff<pmem::SegmentHeader>(segs[i]));
    h->user[2] = i + 1 < segs.size() ? segs[i + 1] : 0;
    ps.flush_nodrain(&h->user[2], sizeof(uint64_t));
  }
  ps.fence();  // every link durable before the chain is declared present
  root->log_chain = (segs.empty() ? 0 : segs[0]) | 1;
  ps.persist(&root->log_chain, sizeof(uint64_t));
}

}  // namespace ferrite::index
