// RecordLog (see log.h).
#include "index/log.h"

#include "common/crash_point.h"
#include "index/index_impl.h"

#include <sys/mman.h>

#include <chrono>

#include "common/log.h"

namespace ferrite::index {

RecordLog::RecordLog(IndexImpl& idx, unsigned worker) noexcept
    : idx_(idx), pool_(idx.pool_), alloc_(idx.alloc_), segs_(idx.segs_), root_(idx.root_), worker_(worker) {}

void RecordLog::attach(bool clean) noexcept {
  pmem::POff<pmem::SegmentHeader> head(root_->log_heads[worker_]);
  cur_ = nullptr;
  tail_ = 0;
  if (clean && head) {
    auto* h = pool_.ptr(head);
    if (h->magic == pmem::kSegmentMagic && root_->log_tails[worker_] <= h->data_size()) {
      cur_ = h;
      tail_ = root_->log_tails[worker_];
      wb_ = tail_;
      info_ = segs_.find(head.raw());
      if (info_ != nullptr) info_->use.store(kSegHead, std::memory_order_relaxed);
    }
  }
}

bool RecordLog::next_segment() noexcept {
  Space& space = *idx_.space_;
  const bool is_worker = worker_ < idx_.opts_.workers;  // else the cleaner's log
  // With a background cleaner the last free segments are its own: a worker
  // that would take them reports no room, and its burst waits for the
  // cleaner (Worker::State::execute). The check reads libpmemobj's counter.
  if (is_worker && !space.worker_may_allocate()) {
    space.poke();
    return false;
  }
  // Without one, a full pool stays full for a while: after a failed
  // allocation, answer "no space" at once for 1 ms instead of paying a
  // failing transaction per write (clean() or deletes free segments
  // meanwhile).
  const auto now = std::chrono::steady_clock::now();
  StatusOr<pmem::POff<pmem::SegmentHeader>> seg = Status::no_space("no segment");
  if (standby_ != 0) {
    // The cleaner's standby becomes its head: one 8-byte store names it
    // (log_heads matter only for the tail a clean close saves).
    seg = pmem::POff<pmem::SegmentHeader>(standby_);
    standby_ = 0;
    // Workers stop taking segments until the cleaner holds a standby again
    // (it takes one as soon as this victim is freed: IndexImpl::clean).
    space.set_cleaner_ready(false);
    root_->log_heads[worker_] = seg->raw();
    pool_.persister().persist(&root_->log_heads[worker_], sizeof(uint64_t));
  } else {
    if (!space.managed() && now - last_failure_ < std::chrono::milliseconds(1)) return false;
    seg = idx_.allocate_log_segment(worker_);
    if (!seg.is_ok()) {
      if (seg.status().code() != Status::Code::kNoSpace) log_error("worker {}: {}", worker_, seg.status().to_string());
      last_failure_ = now;
      space.note_allocation_failed();
      space.poke();
      return false;
    }
  }
  if (is_worker) space.poke();  // free space went down: the cleaner looks at the watermarks
  if (cur_ != nullptr && pending_batch_ != nullptr) writeback_tail_nodrain(*pending_batch_);
  if (info_ != nullptr) {
    // The old head's tail is final. It stays kSegHead (the cleaner skips
    // it) until seal_retired_st(): this burst's records in it are not
    // published yet.
    info_->tail.store(tail_, std::memory_order_relaxed);
    if (nretired_ < kMaxRetired) {
      retired_[nretired_++] = info_;
    } else {
      // A burst whose records span more than kMaxRetired segments (possible:
      // 32 reassembled 2 MiB messages against 4 MiB segments). Sealed at
      // once, so a cleaner may walk it before this burst publishes: the case
      // seal_retired_st() exists for (log.h). Not yet handled otherwise.
      info_->use.store(kSegSealed, std::memory_order_release);
    }
  }
  cur_ = pool_.ptr(*seg);
  tail_ = 0;
  wb_ = 0;
  // Map the whole segment writable now, in one call, instead of taking a
  // page fault every 4 KiB of records (MADV_POPULATE_WRITE, Linux 5.14;
  // older kernels refuse it and the faults happen as before).
  {
    constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE
    const auto page = static_cast<uintptr_t>(4096);
    const auto a = reinterpret_cast<uintptr_t>(cur_) & ~(page - 1);
    (void)::madvise(reinterpret_cast<void*>(a), cur_->size + (reinterpret_cast<uintptr_t>(cur_) - a), kPopulateWrite);
  }
  // Registered before any record in it can be published (see segtab.h).
  info_ = &segs_.at(segs_.add(seg->raw(), worker_, kSegHead, 0, 0, cur_->seq));
  ++segments_;
  FERRITE_CRASH_POINT(crash::kLogAfterNewSegment);
  return true;
}


bool RecordLog::ensure_standby() noexcept {
  if (standby_ != 0) return true;
  auto seg = idx_.allocate_log_segment(worker_, /*as_head=*/false);
  if (!seg.is_ok()) return false;
  standby_ = seg->raw();
  return true;
}

uint64_t RecordLog::room() const noexcept {
  const uint64_t data = alloc_.segment_size() - 2 * sizeof(pmem::SegmentHeader);  // a segment's data area, at least
  const uint64_t rest = cur_ != nullptr ? cur_->data_size() - tail_ : 0;
  return rest + (standby_ != 0 ? data : 0);
}

void RecordLog::seal_retired_st() noexcept {
  for (unsigned i = 0; i < nretired_; ++i) {
    // head -> sealed (segtab.h): nothing else changes a head's state.
    FERRITE_DCHECK(retired_[i]->use.load(std::memory_order_relaxed) == kSegHead);
    retired_[i]->use.store(kSegSealed, std::memory_order_release);
  }
  nretired_ = 0;
}

char* RecordLog::reserve_st(std::size_t size) noexcept {
  if (cur_ == nullptr || tail_ + size > cur_->data_size()) {
    if (size > alloc_.segment_size() - sizeof(pmem::SegmentHeader)) return nullptr;
    if (!next_segment()) return nullptr;
  }
  char* p = cur_->data() + tail_;
  tail_ += size;
  info_->tail.store(tail_, std::memory_order_relaxed);
  appended_.store(appended_.load(std::memory_order_relaxed) + size, std::memory_order_relaxed);
  return p;
}

void RecordLog::writeback_full_lines_nodrain(pmem::PersistBatch& batch) noexcept {
  pending_batch_ = &batch;
  if (cur_ == nullptr) return;
  // data() is 64-byte aligned (segment header is one line), so offsets and
  // addresses agree on line boundaries.
  const uint64_t full = tail_ & ~uint64_t{kCacheLine - 1};
  if (full > wb_) {
    batch.add(cur_->data() + wb_, full - wb_);
    wb_ = full;
  }
}

void RecordLog::writeback_tail_nodrain(pmem::PersistBatch& batch) noexcept {
  if (cur_ == nullptr || tail_ == wb_) return;
  batch.add(cur_->data() + wb_, tail_ - wb_);
  // The partial line may get more records; it is written back again then.
  wb_ = tail_ & ~uint64_t{kCacheLine - 1};
}

void RecordLog::save_tail_nodrain() noexcept {
  // ~0 = nothing to resume (this session never wrote): the next session
  // starts a fresh segment.
  root_->log_tails[worker_] = cur_ != nullptr ? tail_ : ~0ull;
  pool_.persister().flush_nodrain(&root_->log_tails[worker_], sizeof(uint64_t));
}

}  // namespace ferrite::index
