// inspect_pool (see inspect.h).
#include "recovery/inspect.h"

#include <fmt/format.h>

#include "pmem/pool.h"
#include "pmem/segment.h"

namespace ferrite::recovery {

PoolReport pool_summary(const pmem::Pool& p) {
  PoolReport r;
  const pmem::RootHeader* root = p.root();
  r.format_major = root->format_major;
  r.format_minor = root->format_minor;
  r.pool_size = root->pool_size;
  r.segment_size = root->segment_size;
  r.clean_shutdown = p.opened_after_clean_shutdown();
  r.open_count = root->open_count - 1;  // the caller's own open does not count
  r.has_index = root->index_root != 0;
  r.allocated_bytes = p.allocated_bytes();
  return r;
}

StatusOr<PoolReport> inspect_pool(const std::string& path) {
  auto pool = pmem::Pool::open(path);
  if (!pool) return pool.status();
  pmem::Pool& p = **pool;
  PoolReport r = pool_summary(p);
  pmem::SegmentAllocator alloc(p);
  alloc.for_each_segment([&](pmem::POff<pmem::SegmentHeader>, pmem::SegmentHeader* h) {
    (h->kind == static_cast<uint32_t>(pmem::SegmentKind::kLog) ? r.log_segments : r.other_segments)++;
  });
  // Leave the clean flag as it was found: inspecting is not a crash.
  if (r.clean_shutdown) p.mark_clean_on_close();
  return r;
}

std::string to_string(const PoolReport& r) {
  return fmt::format(
      "format {}.{}\npool_size {}\nsegment_size {}\nclean_shutdown {}\nopen_count {}\nlog_segments {}\n"
      "other_segments {}\nindex {}\nallocated_bytes {}\n",
      r.format_major, r.format_minor, r.pool_size, r.segment_size, r.clean_shutdown ? "yes" : "no", r.open_count,
      r.log_segments, r.other_segments, r.has_index ? "yes" : "no", r.allocated_bytes);
}

}  // namespace ferrite::recovery
