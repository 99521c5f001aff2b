// memcached's per-prefix statistics (see prefix_stats.h).
//
// Thread safety: as the header says (one mutex while on).
#include "server/memcached/prefix_stats.h"

#include <fmt/format.h>

namespace ferrite::server {

void PrefixStats::record(std::string_view key, Kind k) {
  const std::size_t d = key.find(kDelimiter);
  if (d == std::string_view::npos) return;
  const std::string_view prefix = key.substr(0, d);
  std::lock_guard<std::mutex> g(mu_);
  auto it = index_.find(std::string(prefix));
  if (it == index_.end()) {
    if (entries_.size() >= kMaxPrefixes) return;
    it = index_.emplace(std::string(prefix), entries_.size()).first;
    entries_.emplace_back(std::string(prefix), Counts{});
  }
  Counts& c = entries_[it->second].second;
  switch (k) {
    case Kind::kHit: ++c.hit; [[fallthrough]];
    case Kind::kGet: ++c.get; break;
    case Kind::kSet: ++c.set; break;
    case Kind::kDel: ++c.del; break;
  }
}

std::string PrefixStats::dump() const {
  std::string out;
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& [prefix, c] : entries_) {
    fmt::format_to(std::back_inserter(out), "PREFIX {} get {} hit {} set {} del {}\r\n", prefix, c.get, c.hit, c.set,
                   c.del);
  }
  out.append("END\r\n");
  return out;
}

void PrefixStats::clear() {
  std::lock_guard<std::mutex> g(mu_);
  index_.clear();
  entries_.clear();
}

}  // namespace ferrite::server
