// The risky first open of a pool, done in a child process (issue 15).
//
// Not everything libpmemobj trusts can be validated from outside
// (pmem/validate.h): run bitmaps and ulog entries can still make
// pmemobj_open fault or pmemobj_first/next loop forever. probe_open() forks;
// the child opens the pool, walks every object (counting against a bound
// derived from the file size), closes it and exits with a code; the parent
// waits at most `timeout` and kills (SIGKILL) and reaps a child that has not
// finished. A crash or a hang becomes a clear Status::corruption instead of
// taking the caller down; the caller opens the pool itself only after an ok.
//
// The child's open runs libpmemobj's lane recovery, as the caller's open
// would (it is idempotent and crash-safe); nothing else is written.
//
// Thread safety: call before the process starts threads that use
// libpmemobj (ferrited and ferrite-check do: it runs inside Pool::open with
// OpenOptions::probe_in_child). fork() copies only the calling thread; a
// libpmemobj lock held by another thread at that moment would hang the child
// and be reported as a hang.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace ferrite::pmem {

// Default wait for the child; FERRITE_OPEN_PROBE_TIMEOUT_MS overrides it.
inline constexpr std::chrono::milliseconds kDefaultProbeTimeout{60000};

// ok: the child opened and walked the pool, or its open failed in the
// ordinary way (the caller's own open then reports the reason). corruption:
// the child died of a signal, hung, or found more objects than the pool can
// hold. io_error: fork failed.
Status probe_open(const std::string& path, std::chrono::milliseconds timeout);

// The timeout probe_open uses when the caller has no opinion.
std::chrono::milliseconds probe_timeout_from_env();

}  // namespace ferrite::pmem
