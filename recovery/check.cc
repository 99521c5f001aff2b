// check_pool (see check.h).
#include "recovery/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "common/hash.h"
#include "index/record.h"
#include "index/slot.h"
#include "index/table.h"
#include "pmem/pool.h"
#include "pmem/segment.h"

namespace ferrite::recovery {
namespace {

constexpr std::size_t kMaxProblems = 100;  // the report names the first ones, counts the rest

void problem(CheckReport* r, std::string p) {
  if (r->problems.size() < kMaxProblems) r->problems.push_back(std::move(p));
}

}  // namespace

StatusOr<CheckReport> check_pool(const std::string& path) {
  auto inspected = inspect_pool(path);  // also validates layout and version
  if (!inspected) return inspected.status();
  auto pool = pmem::Pool::open(path);
  if (!pool) return pool.status();
  pmem::Pool& p = **pool;
  CheckReport r;
  r.pool = *inspected;
  if (r.pool.clean_shutdown) p.mark_clean_on_close();

  // Log segments as [data start, data end) ranges.
  struct Range {
    uint64_t lo, hi;
  };
  std::vector<Range> logs;
  pmem::SegmentAllocator alloc(p);
  alloc.for_each_segment([&](pmem::POff<pmem::SegmentHeader> off, pmem::SegmentHeader* h) {
    if (h->kind != static_cast<uint32_t>(pmem::SegmentKind::kLog)) return;
    const uint64_t lo = off.raw() + sizeof(pmem::SegmentHeader);
    logs.push_back({lo, lo + h->data_size()});
    const uint64_t tail = h->user[1];
    r.log_bytes += r.pool.clean_shutdown && tail <= h->data_size() ? tail : h->data_size();
  });
  std::sort(logs.begin(), logs.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
  auto containing = [&](uint64_t off) -> const Range* {
    auto it = std::upper_bound(logs.begin(), logs.end(), off, [](uint64_t v, const Range& x) { return v < x.lo; });
    if (it == logs.begin()) return nullptr;
    --it;
    return off < it->hi ? &*it : nullptr;
  };

  if (p.root()->index_root == 0) return r;
  const auto* root = p.ptr(pmem::POff<index::IndexRoot>(p.root()->index_root));
  if (root->magic != index::kIndexMagic) {
    problem(&r, "index root has a bad magic number");
    return r;
  }
  const auto* dir = p.ptr(pmem::POff<index::Directory>(root->dir.load()));
  if (dir == nullptr || dir->magic != index::kDirMagic) {
    problem(&r, "directory has a bad magic number");
    return r;
  }
  const unsigned g = static_cast<unsigned>(dir->depth);
  std::unordered_set<std::string> seen;
  uint64_t prev = 0;
  for (uint64_t j = 0; j < (1ull << g); ++j) {
    const uint64_t soff = dir->seg[j].load();
    if (soff == prev) continue;
    prev = soff;
    ++r.table_segments;
    const auto* s = p.ptr(pmem::POff<index::TableSegment>(soff));
    if (s == nullptr || !p.contains(s, sizeof(*s)) || s->magic != index::kSegMagic) {
      problem(&r, fmt::format("directory entry {} points at {:#x}, not a table segment", j, soff));
      continue;
    }
    const unsigned ld = std::min<unsigned>(s->local_depth, g);
    for (unsigned b = 0; b < index::kBucketsPerSegment; ++b) {
      for (unsigned k = 0; k < index::kSlotsPerBucket; ++k) {
        const uint64_t w = s->buckets[b].slots[k].load();
        if (index::slot::is_empty(w)) continue;
        if (index::slot::is_dead(w)) {
          ++r.tombstones;
          continue;
        }
        const uint64_t roff = index::slot::rec_off(w);
        const Range* lr = containing(roff);
        if (lr == nullptr) {
          problem(&r, fmt::format("slot {}/{} of segment {:#x} points at {:#x}, outside every log segment", b, k, soff, roff));
          continue;
        }
        const auto* rec = reinterpret_cast<const index::RecordHeader*>(p.base() + roff);
        if (!index::record_valid(rec, lr->hi - roff)) {
          problem(&r, fmt::format("record at {:#x} (slot {}/{} of segment {:#x}) fails its checksum: torn or corrupt", roff,
                                  b, k, soff));
          continue;
        }
        const uint64_t h = hash_key(rec->key());
        if (ld > 0 && (h >> (64 - ld)) != s->prefix) {
          problem(&r, fmt::format("key of record {:#x} hashes outside the segment {:#x} that holds it", roff, soff));
        }
        if (!seen.emplace(rec->key()).second) {
          problem(&r, fmt::format("key of record {:#x} appears in two slots", roff));
        }
        if (index::slot::is_tombstone(w)) {
          ++r.tombstones;
        } else {
          ++r.keys;
          r.referenced_bytes += rec->size();
        }
      }
    }
  }
  return r;
}

std::string to_string(const CheckReport& r) {
  std::string s = to_string(r.pool);
  s += fmt::format("table_segments {}\nkeys {}\ntombstones {}\nlog_bytes {}\nreferenced_bytes {}\nunreferenced_bytes {}\n",
                   r.table_segments, r.keys, r.tombstones, r.log_bytes, r.referenced_bytes,
                   r.log_bytes > r.referenced_bytes ? r.log_bytes - r.referenced_bytes : 0);
  s += fmt::format("problems {}\n", r.problems.size());
  for (const auto& p : r.problems) s += "problem: " + p + "\n";
  return s;
}

}  // namespace ferrite::recovery
