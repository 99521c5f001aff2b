// Census (see census.h).
#include "index/census.h"

#include <algorithm>

#include "common/cacheline.h"

namespace ferrite::index {

Census::Census(const SizeClasses& classes, unsigned slots) : def_(classes) {
  FERRITE_CHECK(def_.bounds.size() <= kMaxSizeClasses);
  FERRITE_CHECK(std::is_sorted(def_.bounds.begin(), def_.bounds.end()));
  n_ = static_cast<unsigned>(def_.bounds.size());
  nslots_ = slots;
  if (n_ != 0) slots_ = std::make_unique<Counts[]>(slots);
}

unsigned Census::class_of(const RecordHeader* r, uint64_t* size) const noexcept {
  const uint64_t s = uint64_t{def_.overhead} + r->key_len() + r->value_len() + (r->client_flags != 0 ? def_.flags_bytes : 0);
  *size = s;
  const auto it = std::lower_bound(def_.bounds.begin(), def_.bounds.end(), s);
  return it == def_.bounds.end() ? n_ - 1 : static_cast<unsigned>(it - def_.bounds.begin());
}

void Census::add_repaired(const Tally& t) noexcept {
  for (unsigned c = 0; c < n_; ++c) {
    if (t.items[c] != 0) repaired_.items[c].fetch_add(t.items[c], std::memory_order_relaxed);
    if (t.bytes[c] != 0) repaired_.bytes[c].fetch_add(t.bytes[c], std::memory_order_relaxed);
  }
}

std::vector<ClassCount> Census::totals() const {
  std::vector<ClassCount> out(n_);
  for (unsigned c = 0; c < n_; ++c) {
    int64_t items = base_items_[c] + repaired_.items[c].load(std::memory_order_relaxed);
    int64_t bytes = base_bytes_[c] + repaired_.bytes[c].load(std::memory_order_relaxed);
    for (unsigned s = 0; s < nslots_; ++s) {
      items += slots_[s].items[c].load(std::memory_order_relaxed);
      bytes += slots_[s].bytes[c].load(std::memory_order_relaxed);
    }
    // Racy reads of concurrent changes may dip below 0 for a moment.
    out[c] = {static_cast<uint64_t>(std::max<int64_t>(0, items)), static_cast<uint64_t>(std::max<int64_t>(0, bytes))};
  }
  return out;
}

void Census::save(pmem::SizeCensus* dst, uint64_t open_count) const noexcept {
  if (n_ == 0) {
    dst->stamp = 0;
    return;
  }
  const std::vector<ClassCount> t = totals();
  for (unsigned c = 0; c < n_; ++c) {
    dst->items[c] = t[c].items;
    dst->bytes[c] = t[c].bytes;
  }
  dst->classes = n_;
  dst->tag = def_.tag;
  dst->stamp = open_count;
}

bool Census::load(const pmem::SizeCensus& src, uint64_t open_count, uint64_t keys) noexcept {
  if (n_ == 0) return true;
  // Written by the session that closed last: the pool was not opened since
  // (an Index opened again on the same Pool) or once, by this open.
  const bool stamp_ok = src.stamp != 0 && (src.stamp == open_count || src.stamp + 1 == open_count);
  if (!stamp_ok || src.tag != def_.tag || src.classes != n_) return false;
  uint64_t items = 0;
  for (unsigned c = 0; c < n_; ++c) items += src.items[c];
  if (items != keys) return false;
  for (unsigned c = 0; c < n_; ++c) {
    base_items_[c] = static_cast<int64_t>(src.items[c]);
    base_bytes_[c] = static_cast<int64_t>(src.bytes[c]);
  }
  return true;
}

}  // namespace ferrite::index
