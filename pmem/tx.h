// Tx: a libpmemobj transaction scope without setjmp. Created only by
// Pool::transact(); its calls throw TxAbort on failure, and transact() turns
// that into a Status, so the exception never leaves pmem/.
//
// Rules inside a transaction (libpmemobj's): add_range() a persistent range
// before the first store to it; objects from alloc() need no add_range() but
// their contents must be persisted before commit (the caller does it with the
// Persister, or allocates with zero=true and only writes add_range'd fields).
//
// Thread safety: a Tx belongs to the thread that began it.
#pragma once

#include <libpmemobj.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "common/status.h"

namespace ferrite::pmem {

class TxAbort : public std::exception {
 public:
  TxAbort(int err, std::string what) : err_(err), what_(std::move(what)) {}
  int error() const noexcept { return err_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  int err_;
  std::string what_;
};

class Tx {
 public:
  explicit Tx(PMEMobjpool* pop) noexcept : pop_(pop) {}
  ~Tx();
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  // Snapshots [p, p+len) so a rollback restores it.
  void add_range(const void* p, std::size_t len);
  template <typename T>
  void set(T* field, const T& value) {
    add_range(field, sizeof(T));
    *field = value;
  }
  // Allocates an object of size bytes with libpmemobj type number type.
  // Throws TxAbort with ENOMEM when the pool is full.
  // extra_flags: e.g. POBJ_CLASS_ID(id) for a registered allocation class.
  PMEMoid alloc(std::size_t size, uint64_t type, bool zero, uint64_t extra_flags = 0);
  void free(PMEMoid oid);
  // Rolls back the transaction with err; transact() returns a Status for it.
  [[noreturn]] void abort(int err, std::string why);

  // Used by Pool::transact().
  Status begin();
  Status commit();
  Status finish_aborted(const TxAbort& e);
  void abort_on_exception() noexcept;

 private:
  [[noreturn]] void fail(const char* op);

  PMEMobjpool* pop_;
  bool open_ = false;
};

}  // namespace ferrite::pmem
