// Index open/create/close, count, scan and stats, and the public Index /
// Worker wrappers. The lock-free lookup (find, find_for_write, verify-on-read)
// is in lookup.cc; the burst engine in worker.cc.
//
// Thread safety: open/close from one controlling thread; count, scan and
// stats from any thread (relaxed counters; scan follows the lookup protocol
// of lookup.cc).
#include "index/index_impl.h"
#include "index/cleaner.h"
#include "index/log_chain.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "common/crash_point.h"
#include "common/hash.h"
#include "common/log.h"

namespace ferrite::index {

IndexImpl::IndexImpl(pmem::Pool& pool, const IndexOptions& opts)
    : pool_(pool),
      base_(pool.base()),
      opts_(opts),
      alloc_(pool),
      segs_(pool.size(), pool.root()->segment_size),
      qsbr_(opts.workers + 2 + kMaxRepairThreads),
      control_slot_(opts.workers),
      repair_qsbr_slot_(opts.workers + 2),
      counters_(opts.workers + 1) {  // + 1: the cleaner's and expiry sweep's own counter
  space_ = std::make_unique<Space>(*this, opts.space);
  census_ = std::make_unique<Census>(opts.size_classes, opts.workers + 1);
}

IndexImpl::~IndexImpl() {
  space_->stop();  // before anything the cleaner uses goes
  stop_repair();  // abandoned or failed open: the pass stops between two chunks
  for (auto& w : workers_) delete w->state_;
}

uint64_t IndexImpl::now() const noexcept {
  if (opts_.clock != nullptr) return opts_.clock();
  return unix_now_s();
}

void IndexImpl::register_table_class() {
  // Table segments come from an allocation class of their own, sized to
  // them: the default classes round a 16.5 KB object up to ~21.8 KB, which is
  // ~4.6 bytes a key at 10M keys. Classes are volatile in libpmemobj, so this
  // runs at every open; objects keep their class on media. If registering
  // fails, the default classes are used (only space is lost).
  pobj_alloc_class_desc d{};
  d.unit_size = round_up(sizeof(TableSegment) + kCacheLine + 16, kCacheLine);  // + compact header
  d.alignment = 0;
  d.units_per_block = 32;
  d.header_type = POBJ_HEADER_COMPACT;
  if (pmemobj_ctl_set(pool_.handle(), "heap.alloc_class.new.desc", &d) == 0) {
    table_alloc_flags_ = POBJ_CLASS_ID(d.class_id);
  } else {
    log_warn("index: no allocation class for table segments ({}); using the default ones", pmemobj_errormsg());
  }
}

StatusOr<TableSegment*> IndexImpl::alloc_table_segment(pmem::Tx& tx, unsigned local_depth, uint64_t prefix) {
  PMEMoid oid = tx.alloc(sizeof(TableSegment) + kCacheLine, kTypeTableSegment, /*zero=*/true, table_alloc_flags_);
  table_segments_.fetch_add(1, std::memory_order_relaxed);
  auto* s = pool_.ptr(pmem::POff<TableSegment>(round_up(oid.off, kCacheLine)));
  s->local_depth = local_depth;
  s->state.store(kSegNormal, std::memory_order_relaxed);
  s->prefix = prefix;
  s->obj_off = oid.off;
  s->magic = kSegMagic;
  // Built from repaired entries (or empty): counts as repaired (repair.cc).
  s->repaired.store(repair_epoch_, std::memory_order_relaxed);
  pool_.persister().persist(s, kCacheLine);
  return s;
}

Status IndexImpl::create_empty() {
  // One transaction: index root, a depth-0 directory and its one segment.
  // A crash before commit leaves RootHeader::index_root == 0 (retry on open).
  return pool_.transact([&](pmem::Tx& tx) {
    PMEMoid r = tx.alloc(sizeof(IndexRoot), kTypeIndexRoot, true);
    auto* root = pool_.ptr<IndexRoot>(r);
    PMEMoid d = tx.alloc(Directory::bytes_for(0), kTypeDirectory, true);
    auto* dir = pool_.ptr<Directory>(d);
    auto seg = alloc_table_segment(tx, 0, 0);
    dir->magic = kDirMagic;
    dir->depth = 0;
    dir->obj_off = d.off;
    dir->seg[0].store(pool_.off(*seg).raw(), std::memory_order_relaxed);
    pool_.persister().persist(dir, Directory::bytes_for(0));
    root->magic = kIndexMagic;
    root->version = kIndexVersion;
    root->dir.store(d.off, std::memory_order_relaxed);
    root->clean = 1;
    root->log_chain = 1;  // a chain, empty (log_chain.h)
    pool_.persister().persist(root, sizeof(IndexRoot));
    tx.set(&pool_.root()->index_root, r.off);
  });
}

// Invariant (feature before record): the pool root's kIncompatStaleRecords
// bit is durable before the first kStale record is appended, so no crash can
// leave a kStale record in a pool that builds without the kind would open
// (they refuse unknown incompat bits, pmem/layout.h, instead of dropping the
// record as foreign in crash repair). The bit is never cleared.
void IndexImpl::ensure_stale_feature() noexcept {
  if (stale_feature_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> g(feature_mu_);
  if (stale_feature_.load(std::memory_order_relaxed)) return;
  pmem::RootHeader* root = pool_.root();
  root->incompat_features |= pmem::kIncompatStaleRecords;  // only writer; an aligned 8-byte store
  pool_.persister().persist(&root->incompat_features, sizeof(root->incompat_features));
  stale_feature_.store(true, std::memory_order_release);
}

Status IndexImpl::open_or_create() {
  open_start_ = std::chrono::steady_clock::now();
  if (opts_.workers == 0 || opts_.workers > kMaxWorkers - 1) {  // the last log slot is the cleaner's
    return Status::invalid_argument(fmt::format("index workers = {} is out of range (allowed 1..{})", opts_.workers,
                                                kMaxWorkers - 1));
  }
  // The largest record (1 MiB value, 250-byte key, header) must fit in one
  // log segment's data area.
  if (pool_.root()->segment_size < (2u << 20)) {
    return Status::invalid_argument(fmt::format(
        "pool segment size {} is too small for the index: records of up to 1 MiB values need segments of at least 2 MiB",
        pool_.root()->segment_size));
  }
  if (pool_.size() > slot::kMaxPoolBytes) {
    return Status::invalid_argument("pool larger than the 256 TiB an index slot can address");
  }
  FERRITE_RETURN_IF_ERROR(space_->validate());
  register_table_class();
  const bool fresh = pool_.root()->index_root == 0;
  if (fresh) FERRITE_RETURN_IF_ERROR(create_empty());
  root_ = pool_.ptr(pmem::POff<IndexRoot>(pool_.root()->index_root));
  if (root_->magic != kIndexMagic) return Status::corruption("index root has a bad magic number");
  if (root_->version > kIndexVersion) {
    return Status::incompatible(fmt::format("index format {} is newer than this build's {}", root_->version,
                                            kIndexVersion));
  }
  bool clean = root_->clean == 1;
  // The item census (census.h) is exact after a clean close only if that
  // close saved it; otherwise this open counts items as after a crash: every
  // table segment's repair counts its records (the crash path, once).
  if (clean && !fresh && !census_->load(pool_.root()->census, pool_.root()->open_count, root_->key_count)) {
    log_info("index: no usable item census saved by the last close for these size classes (a pool last closed by "
             "another build or opened by a tool since, closed without a census, or a damaged one); items are counted "
             "by a repair pass");
    clean = false;
  }
  {
    // Unique to this open, also when an Index is opened again on the same
    // Pool (same open_count): see the epoch protocol in repair.cc.
    static std::atomic<uint64_t> opens{0};
    repair_epoch_ = ((pool_.root()->open_count << 24) | (opens.fetch_add(1, std::memory_order_relaxed) & 0xffffff)) &
                    ~kRepairingBit;
  }
  repair_after_open(clean);
  {
    // Table segments the directory names (space accounting; entries that
    // share a segment are adjacent).
    Directory* d = dir();
    int64_t n = 0;
    for (uint64_t j = 0, prev = 0; j < (1ull << d->depth); ++j) {
      const uint64_t off = d->seg[j].load(std::memory_order_relaxed);
      if (off != prev) ++n;
      prev = off;
    }
    table_segments_.store(n, std::memory_order_relaxed);
    dir_depth_.store(static_cast<unsigned>(d->depth), std::memory_order_relaxed);
  }
  session_ = (pool_.root()->open_count & 0xffff) << 48;
  stale_feature_.store((pool_.root()->incompat_features & pmem::kIncompatStaleRecords) != 0,
                       std::memory_order_relaxed);
  for (unsigned w = 0; w < opts_.workers; ++w) {
    auto worker = std::unique_ptr<Worker>(new Worker());
    worker->state_ = new Worker::State(*this, w);
    worker->state_->log_.attach(clean);
    workers_.push_back(std::move(worker));
  }
  // P-open: from here until close_clean() the key count and the live bytes
  // and tails on media are stale. (The log chain stays exact.)
  root_->clean = 0;
  pool_.persister().persist(&root_->clean, sizeof(uint64_t));
  return Status::ok();
}

void IndexImpl::repair_after_open(bool clean) {
  // Open does O(log segments) work in every case and never walks the table
  // segments or the libpmemobj objects: on this VM the first touch of a page
  // of a freshly mapped pool costs ~11 us, and the 8780 objects of a 10M-key
  // pool took 177 ms to enumerate, the 8600 table segment headers ~110 ms.
  //  - Log segments: from the chain (log_chain.h), exact after a crash too.
  //    Only a pool without a usable chain (last opened by an older build, or
  //    a chain failing a check) enumerates the objects, and rebuilds it.
  //  - After a clean close nothing else is needed: every referenced table
  //    segment is normal and there are no orphans (retired objects are freed
  //    by drain_all() before it, a split frees unpublished successors at once).
  //  - After a crash, segment states (volatile in meaning: a split the crash
  //    interrupted left its segment splitting or retired) are reset by each
  //    segment's repair, before any slot or state of it is used (repair.cc),
  //    and orphaned tables and directories are freed by the background pass
  //    once the slot repair is done (free_orphans).
  if (!register_log_chain(clean)) {
    std::vector<uint64_t> logs;
    ++open_enumerations_;
    alloc_.for_each_segment([&](pmem::POff<pmem::SegmentHeader> off, pmem::SegmentHeader* h) {
      if (h->kind != static_cast<uint32_t>(pmem::SegmentKind::kLog)) return;
      logs.push_back(off.raw());
      // After a clean close the headers hold exact live bytes (user[0]) and
      // tails (user[1]); after a crash tails are unknown (the cleaner walks
      // until the first invalid record) and live bytes are recounted by the
      // repair.
      const bool exact = clean && h->user[1] <= h->data_size();
      segs_.add(off.raw(), h->owner, kSegSealed, exact ? h->user[1] : ~0ull,
                clean && h->user[0] <= h->data_size() ? static_cast<int64_t>(h->user[0]) : 0, h->seq);
    });
    rebuild_log_chain(pool_, root_, logs);  // kept exact from here on
  }
  if (clean) {
    base_count_ = root_->key_count;
    return;
  }
  // Dirty shutdown: live keys and live bytes per log segment are recounted,
  // and the slots and states repaired, one table segment at a time, on first
  // touch or by the background pass (repair.cc). The directory alone (a few
  // pages) says how many segments there are.
  Directory* d = dir();
  const uint64_t n = 1ull << d->depth;
  uint64_t segments = 0;
  for (uint64_t j = 0, prev = 0; j < n; ++j) {
    const uint64_t off = d->seg[j].load(std::memory_order_relaxed);
    if (off != prev) ++segments;
    prev = off;
  }
  base_count_ = 0;
  repair_left_.store(segments, std::memory_order_relaxed);
  orphan_scan_pending_.store(true, std::memory_order_relaxed);
  repair_pending_.store(true, std::memory_order_relaxed);  // published to workers by their creation
}

void IndexImpl::save_segment_stats_nodrain() {
  // Exact live bytes and tails for the next clean open; the chain links
  // (user[2]) are kept current by every allocation and release.
  for (std::size_t i = 0; i < segs_.capacity(); ++i) {
    LogSegInfo& e = segs_.at(i);
    const uint64_t off = e.off.load(std::memory_order_relaxed);
    if (off == 0) continue;
    auto* h = pool_.ptr(pmem::POff<pmem::SegmentHeader>(off));
    const int64_t live = e.live.load(std::memory_order_relaxed);
    h->user[0] = live < 0 ? 0 : static_cast<uint64_t>(live);
    h->user[1] = e.tail.load(std::memory_order_relaxed);
    pool_.persister().flush_nodrain(&h->user[0], 2 * sizeof(uint64_t));
  }
}

bool IndexImpl::register_log_chain(bool clean) {
  // The whole chain is read and checked before anything is registered: a
  // chain that fails a check (it should not) leaves the table empty for the
  // enumeration.
  std::vector<uint64_t> chain;
  std::string why;
  if (!read_log_chain(pool_, root_, segs_.capacity(), &chain, &why)) {
    if (why.empty()) {
      log_info("index open: no log segment chain (pool last opened by an older build); enumerating objects");
    } else {
      log_warn("index open: the log segment chain is not usable ({}); enumerating objects and rebuilding it", why);
    }
    return false;
  }
  for (uint64_t off : chain) {
    const auto* h = pool_.ptr(pmem::POff<pmem::SegmentHeader>(off));
    // A clean close saved exact live bytes (user[0]) for every segment,
    // also one whose tail it did not know (registered at a dirty open:
    // the crash repair recounted its live bytes before the close).
    const bool exact = clean && h->user[1] <= h->data_size();
    segs_.add(off, h->owner, kSegSealed, exact ? h->user[1] : ~0ull,
              clean && h->user[0] <= h->data_size() ? static_cast<int64_t>(h->user[0]) : 0, h->seq);
  }
  return true;
}

StatusOr<pmem::POff<pmem::SegmentHeader>> IndexImpl::allocate_log_segment(unsigned owner, bool as_head) {
  std::shared_lock<std::shared_mutex> objects(objects_mu_);
  std::lock_guard<std::mutex> chain(chain_mu_);
  return alloc_.allocate(
      pmem::SegmentKind::kLog, owner,
      [&](pmem::Tx& tx, pmem::SegmentHeader* h) {
        link_log_segment_in_tx(pool_, tx, root_, h);  // L1 (log_chain.h)
        if (as_head) tx.set(&root_->log_heads[owner], pool_.off(h).raw());
      },
      /*zero=*/false);
}

Status IndexImpl::release_log_segment(uint64_t off) {
  std::shared_lock<std::shared_mutex> objects(objects_mu_);
  std::lock_guard<std::mutex> chain(chain_mu_);
  return alloc_.release(pmem::POff<pmem::SegmentHeader>(off), [&](pmem::Tx& tx) {
    // A log head that names the segment (a worker's or the cleaner's head
    // from before a crash: after a dirty open no log resumes its old head, so
    // it could be sealed and cleaned) is cleared in the same transaction, so
    // no root field ever names freed space.
    for (uint64_t& head : root_->log_heads) {
      if (head == off) tx.set(&head, uint64_t{0});
    }
    if (!unlink_log_segment_in_tx(pool_, tx, root_, off, segs_.capacity())) {
      // Not on the chain (L1 broken; should not happen): freeing it leaves
      // the chain as it is, which names it nowhere.
      log_warn("index: log segment {:#x} is not on the log chain", off);
    }
  });
}

void IndexImpl::close_clean() {
  if (root_ == nullptr) return;
  space_->stop();  // no cleaning pass runs from here on
  wait_repaired();  // counts and live bytes are exact only once every segment is repaired
  qsbr_.drain_all();
  for (auto& w : workers_) w->state_->log_.save_tail_nodrain();
  save_segment_stats_nodrain();
  root_->key_count = count();
  pool_.persister().flush_nodrain(&root_->key_count, sizeof(root_->key_count));
  census_->save(&pool_.root()->census, pool_.root()->open_count);
  pool_.persister().flush_nodrain(&pool_.root()->census, sizeof(pmem::SizeCensus));
  // P-close: counters and tails durable before the clean flag says so.
  pool_.persister().fence();
  FERRITE_CRASH_POINT(crash::kCloseBeforeCleanFlag);
  root_->clean = 1;
  pool_.persister().persist(&root_->clean, sizeof(root_->clean));
}

uint64_t IndexImpl::count() const noexcept {
  int64_t n = static_cast<int64_t>(base_count_) + repaired_keys_.load(std::memory_order_relaxed);
  for (const auto& c : counters_) n += c.keys.load(std::memory_order_relaxed);
  return n < 0 ? 0 : static_cast<uint64_t>(n);
}

Status IndexImpl::scan(
    const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn) {
  std::lock_guard<std::mutex> lock(scan_mu_);
  qsbr_.online(control_slot_);
  const uint64_t t = now();
  // Walk one directory snapshot in order. Each segment is visited for the
  // entries [j, end) not yet covered, and emits only keys whose directory
  // index falls there: a key is emitted at most once even if splits or a
  // doubling happen during the scan (retired segments stay readable until we
  // go offline, and hold a past state of their keys).
  Directory* d = dir();
  const unsigned g = static_cast<unsigned>(d->depth);
  const uint64_t n = 1ull << g;
  for (uint64_t j = 0; j < n;) {
    TableSegment* s = seg(d->seg[j].load(std::memory_order_acquire));
    ensure_repaired(s);
    const unsigned ld = std::min<unsigned>(s->local_depth, g);
    const uint64_t end = ((j >> (g - ld)) + 1) << (g - ld);
    for (auto& b : s->buckets) {
      for (auto& w : b.slots) {
        const uint64_t v = w.load(std::memory_order_acquire);
        if (slot::is_empty(v) || slot::is_tombstone(v)) continue;
        const RecordHeader* rec = record(v);
        const uint64_t di = dir_index(hash_key(rec->key()), g);
        if (di < j || di >= end) continue;
        if (rec->expiry != 0 && rec->expiry <= t) continue;
        fn(rec->key(), rec->value(), rec->client_flags, rec->expiry, rec->version);
      }
    }
    j = end;
  }
  qsbr_.offline(control_slot_);
  return Status::ok();
}

std::optional<uint64_t> IndexImpl::scan_page(
    uint64_t cursor, std::size_t max_bytes,
    const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn) {
  std::lock_guard<std::mutex> lock(scan_mu_);
  qsbr_.online(control_slot_);
  const uint64_t t = now();
  std::size_t bytes = 0;
  uint64_t next = cursor;
  bool done = false;
  struct Item {
    uint64_t h;
    const RecordHeader* rec;
  };
  std::vector<Item> items;
  while (!done && bytes < max_bytes) {
    const uint64_t c = next;
    Directory* d = dir();
    const unsigned g = static_cast<unsigned>(d->depth);
    TableSegment* s = seg(d->seg[dir_index(c, g)].load(std::memory_order_acquire));
    ensure_repaired(s);
    // The hash range this segment serves: [lo, hi), hi == 0 meaning 2^64.
    const unsigned ld = std::min<unsigned>(s->local_depth, g);
    const uint64_t hi = ld == 0 ? 0 : ((dir_index(c, ld) + 1) << (64 - ld));
    items.clear();
    for (auto& b : s->buckets) {
      for (auto& w : b.slots) {
        const uint64_t v = w.load(std::memory_order_acquire);
        if (slot::is_empty(v) || slot::is_tombstone(v)) continue;
        const RecordHeader* rec = record(v);
        const uint64_t h = hash_key(rec->key());
        if (h < c || (hi != 0 && h >= hi)) continue;
        if (rec->expiry != 0 && rec->expiry <= t) continue;
        items.push_back({h, rec});
      }
    }
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.h < b.h; });
    std::size_t i = 0;
    for (; i < items.size(); ++i) {
      if (bytes > 0 && bytes + items[i].rec->payload_size() > max_bytes) break;
      const RecordHeader* r = items[i].rec;
      fn(r->key(), r->value(), r->client_flags, r->expiry, r->version);
      bytes += r->payload_size();
    }
    if (i < items.size()) {
      next = items[i].h;  // resume inside this segment's range
      break;
    }
    next = hi;
    done = hi == 0;  // the last range ends at 2^64
  }
  qsbr_.offline(control_slot_);
  if (done) return std::nullopt;
  return next;
}

IndexStats IndexImpl::stats() const {
  IndexStats st;
  st.keys = count();
  Directory* d = dir();
  st.global_depth = d->depth;
  uint64_t prev = 0;
  for (uint64_t j = 0; j < (1ull << d->depth); ++j) {
    uint64_t off = d->seg[j].load(std::memory_order_relaxed);
    if (off != prev) ++st.table_segments;
    prev = off;
  }
  st.splits = splits_.load(std::memory_order_relaxed);
  st.dir_doublings = doublings_.load(std::memory_order_relaxed);
  st.open_ms = open_ms_;
  st.repair_ms = static_cast<double>(repair_us_.load(std::memory_order_relaxed)) / 1000.0;
  st.repair_done = !repair_pending() && !orphan_scan_pending_.load(std::memory_order_acquire);
  st.recovery_pending_segments = st.repair_done ? 0 : repair_left_.load(std::memory_order_relaxed);
  st.recovery_segments_lazy = repaired_lazy_.load(std::memory_order_relaxed);
  st.recovery_segments_background = repaired_bg_.load(std::memory_order_relaxed);
  st.recovery_bad_records = bad_records_.load(std::memory_order_relaxed);
  st.read_bad_records = bad_reads_.load(std::memory_order_relaxed);
  st.recovery_orphans_freed = orphans_freed_.load(std::memory_order_relaxed);
  // Log space from the segment table: live = bytes slots point at; dead =
  // the rest of what was appended (known tails only).
  auto& segs = const_cast<LogSegTable&>(segs_);
  for (std::size_t i = 0; i < segs.capacity(); ++i) {
    const LogSegInfo& e = segs.at(i);
    if (e.off.load(std::memory_order_relaxed) == 0) continue;
    ++st.log_segments;
    const int64_t live = std::max<int64_t>(0, e.live.load(std::memory_order_relaxed));
    const uint64_t tail = e.tail.load(std::memory_order_relaxed);
    st.log_bytes_live += static_cast<uint64_t>(live);
    if (tail != ~0ull && tail > static_cast<uint64_t>(live)) st.log_bytes_dead += tail - static_cast<uint64_t>(live);
  }
  space_->fill_stats(&st);
  return st;
}

// ---- Index / Worker public wrappers ----

Index::Index(std::unique_ptr<IndexImpl> impl) : impl_(std::move(impl)) {}

Index::~Index() {
  if (impl_ && !impl_->abandoned_) impl_->close_clean();
}

void Index::TEST_abandon() { impl_->abandoned_ = true; }
void Index::TEST_stop_cleaner() { impl_->space_->stop(); }
void Index::start_cleaner() { impl_->space_->start(); }
uint64_t Index::TEST_open_enumerations() const { return impl_->open_enumerations_; }

StatusOr<std::unique_ptr<Index>> Index::open(pmem::Pool& pool, const IndexOptions& opts) {
  auto impl = std::make_unique<IndexImpl>(pool, opts);
  Status s = impl->open_or_create();
  if (!s.is_ok()) return s;
  impl->start_background_repair();  // after a dirty shutdown; serving starts at once
  if (opts.space.start_at_open) impl->space_->start();  // the background cleaner (SpaceOptions)
  impl->open_ms_ = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::steady_clock::now() - impl->open_start_)
                                           .count()) /
                   1000.0;
  return std::unique_ptr<Index>(new Index(std::move(impl)));
}

void Index::wait_repaired() { impl_->wait_repaired(); }
uint64_t Index::TEST_eager_recount() const { return impl_->eager_recount(); }

Worker& Index::worker(unsigned id) { return *impl_->workers_.at(id); }
unsigned Index::workers() const { return static_cast<unsigned>(impl_->workers_.size()); }
uint64_t Index::count() const { return impl_->count(); }
Status Index::scan(const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn)
    const {
  return impl_->scan(fn);
}
IndexStats Index::stats() const { return impl_->stats(); }
std::vector<ClassCount> Index::item_census() const { return impl_->census_->totals(); }
const SpaceOptions& Index::space_options() const { return impl_->space_->options(); }
std::optional<uint64_t> Index::scan_page(
    uint64_t cursor, std::size_t max_bytes,
    const std::function<void(std::string_view, std::string_view, uint32_t, uint32_t, uint64_t)>& fn) const {
  return impl_->scan_page(cursor, max_bytes, fn);
}

void Worker::execute(std::span<Op> ops) { state_->execute(ops); }
void Worker::quiesce() { state_->idx_.qsbr_.offline(state_->id_); }
unsigned Worker::id() const { return state_->id_; }

}  // namespace ferrite::index
