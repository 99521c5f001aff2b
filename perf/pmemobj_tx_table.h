// The "transaction-per-op" peer for index_bench: a chained hash table in a
// libpmemobj pool where every insert or update is one libpmemobj transaction
// (the way a straightforward PMDK program persists each write), and a get
// walks the chain directly. Striped mutexes make it safe for several threads.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <libpmemobj.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ferrite::perf {

class PmemTxTable {
 public:
  // Creates the pool at path (removed on destruction) with nbuckets buckets.
  static std::unique_ptr<PmemTxTable> create(const std::string& path, std::size_t pool_size, std::size_t nbuckets);
  ~PmemTxTable();

  bool get(std::string_view key, std::string* out) const;
  // Insert or update, one transaction.
  bool put(std::string_view key, std::string_view value);
  std::size_t allocated_bytes() const;

 private:
  struct Node;
  PmemTxTable() = default;
  PMEMobjpool* pop_ = nullptr;
  std::string path_;
  uint64_t* buckets_ = nullptr;  // offsets of chain heads, in the pool
  std::size_t nbuckets_ = 0;
  mutable std::vector<std::mutex> locks_;
};

}  // namespace ferrite::perf
