// Tx over libpmemobj's transaction API, started with a NULL jmp_buf and the
// *_NO_ABORT flags so every failure comes back as a return code that we turn
// into TxAbort (see tx.h).
#include "pmem/tx.h"

#include <cerrno>
#include <cstring>

#include "pmem/pool.h"

namespace ferrite::pmem {

Tx::~Tx() {
  // A Tx that is still open here was left by an exception transact() could
  // not see (it rethrows after abort_on_exception, which closes it), so this
  // is a safety net: roll back rather than commit half of the work.
  if (open_) abort_on_exception();
}

Status Tx::begin() {
  if (pmemobj_tx_stage() != TX_STAGE_NONE) {
    return Status::internal("nested pmem transactions are not supported");
  }
  if (pmemobj_tx_begin(pop_, nullptr, TX_PARAM_NONE) != 0) {
    int err = errno;
    pmemobj_tx_end();
    return pmem_error("cannot begin a pmem transaction", err);
  }
  open_ = true;
  return Status::ok();
}

void Tx::fail(const char* op) {
  int err = errno != 0 ? errno : EINVAL;
  std::string msg = std::string(op) + ": " + pmemobj_errormsg();
  if (pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_abort(err);
  throw TxAbort(err, std::move(msg));
}

void Tx::add_range(const void* p, std::size_t len) {
  if (pmemobj_tx_xadd_range_direct(p, len, POBJ_XADD_NO_ABORT) != 0) fail("tx add_range");
}

PMEMoid Tx::alloc(std::size_t size, uint64_t type, bool zero, uint64_t extra_flags) {
  uint64_t flags = POBJ_XALLOC_NO_ABORT | (zero ? POBJ_XALLOC_ZERO : 0) | extra_flags;
  errno = 0;
  PMEMoid oid = pmemobj_tx_xalloc(size, type, flags);
  if (OID_IS_NULL(oid)) fail("tx alloc");
  return oid;
}

void Tx::free(PMEMoid oid) {
  if (pmemobj_tx_xfree(oid, POBJ_XFREE_NO_ABORT) != 0) fail("tx free");
}

void Tx::abort(int err, std::string why) {
  if (pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_abort(err);
  throw TxAbort(err, std::move(why));
}

Status Tx::commit() {
  if (pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_commit();
  int err = pmemobj_tx_end();
  open_ = false;
  if (err != 0) return pmem_error("pmem transaction aborted at commit", err);
  return Status::ok();
}

Status Tx::finish_aborted(const TxAbort& e) {
  pmemobj_tx_end();
  open_ = false;
  Status::Code code = e.error() == ENOMEM ? Status::Code::kNoSpace : Status::Code::kIoError;
  if (e.error() == ENOMEM) return Status(code, std::string("pool is full: ") + e.what());
  return Status(code, std::string("pmem transaction rolled back: ") + e.what());
}

void Tx::abort_on_exception() noexcept {
  if (pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_abort(ECANCELED);
  pmemobj_tx_end();
  open_ = false;
}

}  // namespace ferrite::pmem
