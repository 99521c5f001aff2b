// PartialTable (see reassembly.h): fair sharing of reassembly slots.
#include "server/reassembly.h"

#include <algorithm>

namespace ferrite::server {

PartialTable::PartialTable(std::size_t max_partial)
    : max_partial_(std::max<std::size_t>(max_partial, 1)),
      per_source_(std::min(max_partial_, std::max<std::size_t>(2, max_partial_ / 8))) {}

std::size_t PartialTable::held_by(uint64_t source) const noexcept {
  auto it = per_source_count_.find(source);
  return it == per_source_count_.end() ? 0 : it->second;
}

void PartialTable::remove(Age::iterator it) {
  auto c = per_source_count_.find(it->key.source);
  if (c != per_source_count_.end() && --c->second == 0) per_source_count_.erase(c);
  by_key_.erase(it->key);
  age_.erase(it);
}

proto::Reassembly& PartialTable::find_or_open_st(const PartialKey& key, Clock::time_point now, PartialEvictions* ev) {
  if (auto f = by_key_.find(key); f != by_key_.end()) return f->second->r;
  if (held_by(key.source) >= per_source_) {
    // E1: the source pays with its own oldest message, nobody else's.
    auto victim = std::find_if(age_.begin(), age_.end(), [&](const Node& n) { return n.key.source == key.source; });
    remove(victim);  // held_by() > 0, so it exists
    ++ev->source_budget;
  } else if (by_key_.size() >= max_partial_) {
    // E2: all slots taken by sources within their budget: the oldest goes.
    remove(age_.begin());
    ++ev->oldest;
  }
  age_.push_back(Node{key, now, proto::Reassembly{}});
  auto it = std::prev(age_.end());
  by_key_.emplace(key, it);
  ++per_source_count_[key.source];
  return it->r;
}

void PartialTable::erase_st(const PartialKey& key) {
  if (auto f = by_key_.find(key); f != by_key_.end()) remove(f->second);
}

std::size_t PartialTable::expire_st(Clock::time_point now, Clock::duration max_age, PartialEvictions* ev) {
  // The age list is in opening order: the expired ones are a prefix.
  std::size_t n = 0;
  while (!age_.empty() && now - age_.front().started > max_age) {
    remove(age_.begin());
    ++n;
  }
  ev->expired += n;
  return n;
}

}  // namespace ferrite::server
