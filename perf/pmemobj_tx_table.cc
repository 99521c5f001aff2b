// PmemTxTable (see pmemobj_tx_table.h). Uses libpmemobj's transaction C API
// without the setjmp macros: begin with a NULL jmp_buf, check every return.
#include "perf/pmemobj_tx_table.h"

#include <unistd.h>

#include <cstring>

#include "common/hash.h"

namespace ferrite::perf {

struct PmemTxTable::Node {
  uint64_t next;  // pool offset of the next node, 0 = end
  uint32_t klen;
  uint32_t vlen;
  uint64_t value_off;  // separate object, so an update of a different size reallocates it
  // The key bytes follow the node in the same object.
  char* key() noexcept { return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(this) + sizeof(Node)); }
  const char* key() const noexcept { return reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(this) + sizeof(Node)); }
};

std::unique_ptr<PmemTxTable> PmemTxTable::create(const std::string& path, std::size_t pool_size, std::size_t nbuckets) {
  ::unlink(path.c_str());
  std::unique_ptr<PmemTxTable> t(new PmemTxTable());
  t->pop_ = pmemobj_create(path.c_str(), "ferrite-bench-txtable", pool_size, 0600);
  if (t->pop_ == nullptr) return nullptr;
  t->path_ = path;
  t->nbuckets_ = nbuckets;
  int stats = POBJ_STATS_ENABLED_BOTH;  // before any allocation, so bytes are counted
  (void)pmemobj_ctl_set(t->pop_, "stats.enabled", &stats);
  PMEMoid root = pmemobj_root(t->pop_, nbuckets * sizeof(uint64_t));
  if (OID_IS_NULL(root)) return nullptr;
  t->buckets_ = static_cast<uint64_t*>(pmemobj_direct(root));
  t->locks_ = std::vector<std::mutex>(4096);
  return t;
}

PmemTxTable::~PmemTxTable() {
  if (pop_ != nullptr) pmemobj_close(pop_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

bool PmemTxTable::get(std::string_view key, std::string* out) const {
  const uint64_t h = hash_key(key);
  std::lock_guard<std::mutex> lock(locks_[h % locks_.size()]);
  char* base = reinterpret_cast<char*>(pop_);
  for (uint64_t off = buckets_[h % nbuckets_]; off != 0;) {
    const Node* n = reinterpret_cast<const Node*>(base + off);
    if (n->klen == key.size() && std::memcmp(n->key(), key.data(), key.size()) == 0) {
      out->assign(base + n->value_off, n->vlen);
      return true;
    }
    off = n->next;
  }
  return false;
}

bool PmemTxTable::put(std::string_view key, std::string_view value) {
  const uint64_t h = hash_key(key);
  std::lock_guard<std::mutex> lock(locks_[h % locks_.size()]);
  char* base = reinterpret_cast<char*>(pop_);
  uint64_t* head = &buckets_[h % nbuckets_];
  Node* found = nullptr;
  for (uint64_t off = *head; off != 0;) {
    Node* n = reinterpret_cast<Node*>(base + off);
    if (n->klen == key.size() && std::memcmp(n->key(), key.data(), key.size()) == 0) {
      found = n;
      break;
    }
    off = n->next;
  }
  if (pmemobj_tx_begin(pop_, nullptr, TX_PARAM_NONE) != 0) {
    pmemobj_tx_end();
    return false;
  }
  bool ok = true;
  if (found != nullptr && found->vlen == value.size()) {
    // Update in place: snapshot the value, then overwrite it.
    ok = pmemobj_tx_add_range_direct(base + found->value_off, value.size()) == 0;
    if (ok) std::memcpy(base + found->value_off, value.data(), value.size());
  } else if (found != nullptr) {
    PMEMoid v = pmemobj_tx_alloc(value.size(), 2);
    ok = !OID_IS_NULL(v) && pmemobj_tx_add_range_direct(found, sizeof(Node)) == 0;
    if (ok) {
      std::memcpy(base + v.off, value.data(), value.size());
      PMEMoid old{pmemobj_oid(buckets_).pool_uuid_lo, found->value_off};
      pmemobj_tx_free(old);
      found->value_off = v.off;
      found->vlen = static_cast<uint32_t>(value.size());
    }
  } else {
    PMEMoid n = pmemobj_tx_alloc(sizeof(Node) + key.size(), 1);
    PMEMoid v = pmemobj_tx_alloc(value.size() == 0 ? 1 : value.size(), 2);
    ok = !OID_IS_NULL(n) && !OID_IS_NULL(v) && pmemobj_tx_add_range_direct(head, sizeof(uint64_t)) == 0;
    if (ok) {
      Node* node = reinterpret_cast<Node*>(base + n.off);
      node->next = *head;
      node->klen = static_cast<uint32_t>(key.size());
      node->vlen = static_cast<uint32_t>(value.size());
      node->value_off = v.off;
      std::memcpy(node->key(), key.data(), key.size());
      std::memcpy(base + v.off, value.data(), value.size());
      // Newly allocated objects are not in the undo log: persist them before commit.
      pmemobj_persist(pop_, node, sizeof(Node) + key.size());
      pmemobj_persist(pop_, base + v.off, value.size());
      *head = n.off;
    }
  }
  if (ok && pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_commit();
  else if (pmemobj_tx_stage() == TX_STAGE_WORK) pmemobj_tx_abort(ECANCELED);
  return pmemobj_tx_end() == 0 && ok;
}

std::size_t PmemTxTable::allocated_bytes() const {
  uint64_t v = 0;
  (void)pmemobj_ctl_get(pop_, "stats.heap.curr_allocated", &v);
  return v;
}

}  // namespace ferrite::perf
