// Named crash points: places in the persistence path where a test build can
// stop the world as a crash would (issue 5, "crash there, reopen, check
// invariant 5").
//
//   FERRITE_CRASH_POINT(crash::kWorkerAfterRecordFlush);
//
// In production builds the macro expands to nothing. Test builds compile the
// libraries a second time with -DFERRITE_CRASH_POINTS=1 (the *_crash library
// variants in meson), and there every point calls the hook installed with
// crash::set_hook(). The hook decides what a crash means: _exit() for a
// process crash, freezing the power-failure simulator's shadow image for a
// power failure (recovery/pfsim.h), or nothing.
//
// Every point's name is listed in kAllPoints, so a test can iterate over all
// of them and prove that each one is reached by its workload.
//
// Thread safety: set_hook() before the threads that may hit points start;
// hit() may be called from any thread; the hook must be thread-safe.
#pragma once

#include <cstddef>

namespace ferrite::crash {

// Burst engine (index/worker.cc).
inline constexpr const char* kWorkerAfterRecordFlush = "worker.after_record_flush";  // W1 done, before P1
inline constexpr const char* kWorkerAfterSlotCas = "worker.after_slot_cas";          // W2 done, before P2
inline constexpr const char* kWorkerAfterSlotFence = "worker.after_slot_fence";      // P2 done, before W3
// Record log (index/log.cc).
inline constexpr const char* kLogAfterNewSegment = "log.after_new_segment";  // segment linked, no record yet
// Segment allocation (pmem/segment.cc).
inline constexpr const char* kSegAllocInTx = "segment.alloc.in_tx";              // header durable, tx open
inline constexpr const char* kSegAllocAfterCommit = "segment.alloc.after_commit";
inline constexpr const char* kSegReleaseInTx = "segment.release.in_tx";          // free staged, tx open
// Growth (index/split.cc).
inline constexpr const char* kSplitAfterFreeze = "split.after_freeze";                // S2
inline constexpr const char* kSplitAfterSuccessorsDurable = "split.after_successors";  // P3
inline constexpr const char* kSplitDirDoubleInTx = "split.dir_double.in_tx";          // new dir durable, tx open
inline constexpr const char* kSplitAfterDirDouble = "split.after_dir_double";
inline constexpr const char* kSplitAfterRetire = "split.after_retire";                // S retired, entries not switched
inline constexpr const char* kSplitPublishInTx = "split.publish.in_tx";               // entries switched, tx open
inline constexpr const char* kSplitAfterPublish = "split.after_publish";              // S4 committed, before S5
// Cleaner (index/cleaner.cc).
inline constexpr const char* kCleanerAfterCopyFlush = "cleaner.after_copy_flush";  // C2 done, before P1
inline constexpr const char* kCleanerAfterSlotCas = "cleaner.after_slot_cas";      // C3 done, before P2
inline constexpr const char* kCleanerBeforeFree = "cleaner.before_free";           // after P2, before C4's free
// Close (index/index.cc).
inline constexpr const char* kCloseBeforeCleanFlag = "close.before_clean_flag";  // counters durable, flag not yet

inline constexpr const char* kAllPoints[] = {
    kWorkerAfterRecordFlush, kWorkerAfterSlotCas,     kWorkerAfterSlotFence,
    kLogAfterNewSegment,     kSegAllocInTx,           kSegAllocAfterCommit,
    kSegReleaseInTx,         kSplitAfterFreeze,       kSplitAfterSuccessorsDurable,
    kSplitDirDoubleInTx,     kSplitAfterDirDouble,    kSplitAfterRetire,
    kSplitPublishInTx,       kSplitAfterPublish,      kCleanerAfterCopyFlush,
    kCleanerAfterSlotCas,    kCleanerBeforeFree,      kCloseBeforeCleanFlag,
};
inline constexpr std::size_t kNumPoints = sizeof(kAllPoints) / sizeof(kAllPoints[0]);

using Hook = void (*)(const char* name);
// Installs the hook (nullptr: none). Only test builds ever call it.
void set_hook(Hook hook) noexcept;
// Called by FERRITE_CRASH_POINT in test builds.
void hit(const char* name) noexcept;

}  // namespace ferrite::crash

#if defined(FERRITE_CRASH_POINTS) && FERRITE_CRASH_POINTS
#define FERRITE_CRASH_POINT(name) ::ferrite::crash::hit(name)
#else
#define FERRITE_CRASH_POINT(name) \
  do {                            \
  } while (0)
#endif
