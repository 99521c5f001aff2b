// Cleaner: relocates live records out of mostly-dead log segments (see
// cleaner.cc for the protocol). Private to index/.
//
// Thread safety: one cleaning pass at a time (IndexImpl::clean_mu_); runs
// concurrently with every worker.
#pragma once

#include <vector>

#include "index/index_impl.h"

namespace ferrite::index {

inline constexpr unsigned kCleanerLog = kMaxWorkers - 1;  // log_heads slot of the cleaner

class Cleaner {
 public:
  explicit Cleaner(IndexImpl& idx)
      : idx_(idx),
        log_(idx, kCleanerLog),
        batch_(idx.pool_.persister()),
        qsbr_slot_(idx.opts_.workers + 1) {}

  // Cleans one sealed segment; evict: an eviction pass over it (CleanOptions).
  bool clean_segment(LogSegInfo& v, CleanStats* st, bool evict);
  // The cleaner's standby and room (log.h).
  bool ensure_standby() noexcept { return log_.ensure_standby(); }
  uint64_t room() const noexcept { return log_.room(); }

 private:
  // What a move does to its slot once published (C3).
  enum class MoveKind : uint8_t {
    kCopy,     // to the copy `to`
    kDrop,     // a deleted key's tombstone becomes a dead tombstone (already not counted)
    kExpire,   // an expired key becomes a dead tombstone (one key fewer)
    kEvict,    // a live key is evicted: a dead tombstone (one key fewer)
  };
  struct Move {
    std::atomic<uint64_t>* slot;
    uint64_t expected;
    uint64_t word;
    const RecordHeader* from;
    const RecordHeader* to;
    uint64_t h;
    MoveKind kind;
  };
  void flush_moves(std::vector<Move>& moves, CleanStats* st);

  IndexImpl& idx_;
  RecordLog log_;
  pmem::PersistBatch batch_;
  unsigned qsbr_slot_;
  std::vector<Move> moves_;
};

}  // namespace ferrite::index
