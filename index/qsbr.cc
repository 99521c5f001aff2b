// Qsbr (see qsbr.h).
#include "index/qsbr.h"

#include <algorithm>

namespace ferrite::index {

Qsbr::Qsbr(unsigned threads) : slots_(threads) {}

void Qsbr::retire(std::function<void()> fn) {
  // The retired object became unreachable before this call; any thread that
  // quiesces with an epoch > e has dropped every reference it held to it.
  // seq_cst: pairs with F1 in online() (qsbr.h).
  const uint64_t e = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.emplace_back(e, std::move(fn));
}

std::size_t Qsbr::reclaim() {
  uint64_t min_seen = kOffline;
  for (const Slot& s : slots_) {
    // A1: pairs with R1 in quiesce() and F1 in online() (seq_cst for F1).
    min_seen = std::min(min_seen, s.seen.load(std::memory_order_seq_cst));
  }
  // Q1: an online slot's epoch was read from epoch_, which only grows.
  FERRITE_DCHECK(min_seen == kOffline || min_seen <= epoch_.load(std::memory_order_relaxed));
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::stable_partition(pending_.begin(), pending_.end(),
                                    [&](const auto& p) { return p.first > min_seen; });
    for (auto r = it; r != pending_.end(); ++r) ready.push_back(std::move(r->second));
    pending_.erase(it, pending_.end());
  }
  for (auto& fn : ready) fn();
  return ready.size();
}

void Qsbr::drain_all() {
  // Q4 without a grace period: only sound when no slot is online.
  for (const Slot& s : slots_) FERRITE_DCHECK(s.seen.load(std::memory_order_relaxed) == kOffline);
  std::vector<std::pair<uint64_t, std::function<void()>>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(pending_);
  }
  for (auto& p : all) p.second();
}

std::size_t Qsbr::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

}  // namespace ferrite::index
