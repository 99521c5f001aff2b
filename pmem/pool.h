// Pool: RAII ownership of one libpmemobj pool file holding Ferrite's data.
//
//   auto pool = Pool::create("/dev/shm/ferrite.pool", 1 << 30);   // or Pool::open(path)
//   if (!pool) { report(pool.status()); }
//   RootHeader* root = (*pool)->root();
//   (*pool)->persister().persist(p, len);
//   Status s = (*pool)->transact([&](Tx& tx) { tx.add_range(p, 8); *p = 1; });
//
// Open checks, each giving a clear Status: directory missing, file missing,
// file exists on create, size below kMinPoolSize, not enough space on the
// device, held by another process, wrong layout, truncated or corrupt file,
// uninitialized root, newer format version or unknown incompat features,
// no permission to read and write the file ("permission denied", never
// "corrupt"). Before libpmemobj sees the file, validate_pool_file checks its
// headers and lanes (pmem/validate.h); with OpenOptions::probe_in_child the
// first pmemobj_open runs in a child process first (pmem/open_probe.h), so a
// pool that would crash or hang libpmemobj is refused with a clear message.
//
// Lifetime: the pool is closed (and marked clean if mark_clean() was called)
// when the Pool is destroyed. A Pool is never moved: pointers into the mapping
// and the Persister reference stay valid for its whole life.
//
// Thread safety: the accessors are safe from any thread. transact() may run
// concurrently from several threads (libpmemobj transactions are per-thread),
// but callers must not modify the same ranges concurrently.
#pragma once

#include <libpmemobj.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "pmem/layout.h"
#include "pmem/offset.h"
#include "pmem/persist.h"
#include "pmem/tx.h"

namespace ferrite::pmem {

struct OpenOptions {
  // Open (and walk) the pool in a child process first; ferrited and
  // ferrite-check set it. Call only before the process has other threads
  // using libpmemobj (pmem/open_probe.h).
  bool probe_in_child = false;
};

class Pool {
 public:
  static StatusOr<std::unique_ptr<Pool>> create(const std::string& path, std::size_t size,
                                                 std::size_t segment_size = kDefaultSegmentSize);
  static StatusOr<std::unique_ptr<Pool>> open(const std::string& path, const OpenOptions& opts = {});
  // Opens the pool at path, or creates it with size (and segment_size) if
  // the file does not exist. An existing pool keeps its own sizes.
  static StatusOr<std::unique_ptr<Pool>> open_or_create(const std::string& path, std::size_t size,
                                                        std::size_t segment_size = kDefaultSegmentSize,
                                                        const OpenOptions& opts = {});

  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  PMEMobjpool* handle() const noexcept { return pop_; }
  char* base() const noexcept { return reinterpret_cast<char*>(pop_); }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }
  RootHeader* root() const noexcept { return root_; }
  const Persister& persister() const noexcept { return persister_; }
  bool is_pmem() const noexcept { return persister_.mode() == Persister::Mode::kFlush; }

  // True if the previous session closed this pool cleanly (read at open).
  bool opened_after_clean_shutdown() const noexcept { return clean_at_open_; }
  // libpmemobj block footers that open found stale and rebuilt (pmem/heap_footers.h).
  std::size_t footers_rewritten_at_open() const noexcept { return footers_rewritten_; }
  // Record that the pool should be marked clean when closed (graceful shutdown,
  // after every worker has drained). Without it, the close leaves it dirty.
  void mark_clean_on_close() noexcept { clean_on_close_ = true; }

  template <typename T>
  T* ptr(POff<T> off) const noexcept { return off.get(base()); }
  template <typename T>
  POff<T> off(const T* p) const noexcept { return POff<T>::from(base(), p); }
  template <typename T>
  T* ptr(PMEMoid oid) const noexcept { return oid.off == 0 ? nullptr : reinterpret_cast<T*>(base() + oid.off); }
  bool contains(const void* p, std::size_t len) const noexcept {
    auto a = reinterpret_cast<const char*>(p);
    return a >= base() && a + len <= base() + size_;
  }

  // Runs fn(Tx&) inside one libpmemobj transaction: committed if fn returns,
  // rolled back if fn or a Tx call fails. Control path only (~1 us a tx).
  template <typename Fn>
  Status transact(Fn&& fn) {
    Tx tx(pop_);
    FERRITE_RETURN_IF_ERROR(tx.begin());
    try {
      fn(tx);
    } catch (const TxAbort& e) {
      return tx.finish_aborted(e);
    } catch (...) {
      tx.abort_on_exception();
      throw;
    }
    return tx.commit();
  }

  // Bytes allocated from the pool's heap (libpmemobj statistics).
  std::size_t allocated_bytes() const noexcept;

 private:
  Pool(PMEMobjpool* pop, std::string path, std::size_t size);
  static Status check_root(PMEMobjpool* pop, const std::string& path, std::size_t file_size);
  void attach();

  PMEMobjpool* pop_;
  std::string path_;
  std::size_t size_;
  RootHeader* root_ = nullptr;
  Persister persister_;
  bool clean_at_open_ = false;
  std::size_t footers_rewritten_ = 0;
  bool clean_on_close_ = false;
};

// Converts errno plus pmemobj_errormsg() into a Status (the one place where
// libpmemobj errors become ours).
Status pmem_error(std::string_view what, int err);

}  // namespace ferrite::pmem
