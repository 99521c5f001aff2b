// Campaign workload, journal and verifier (see journal.h).
#include "recovery/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace ferrite::recovery {
namespace {

uint64_t mix(uint64_t x) noexcept {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::size_t value_len(uint64_t seq, std::size_t min_len, std::size_t max_len) noexcept {
  if (max_len <= min_len) return min_len;
  return min_len + mix(seq) % (max_len - min_len + 1);
}

}  // namespace

std::string campaign_key(uint32_t id) { return fmt::format("ck-{:08}", id); }

std::string campaign_value(uint32_t id, uint64_t seq, std::size_t min_len, std::size_t max_len) {
  std::string v = fmt::format("{}:{}:", id, seq);
  const std::size_t len = std::max(value_len(seq, min_len, max_len), v.size());
  uint64_t x = mix(seq ^ (static_cast<uint64_t>(id) << 40));
  while (v.size() < len) {
    x = mix(x);
    v.push_back(static_cast<char>('a' + x % 26));
  }
  return v;
}

std::size_t campaign_value_size(uint32_t id, uint64_t seq, std::size_t min_len, std::size_t max_len) {
  return std::max(value_len(seq, min_len, max_len), fmt::formatted_size("{}:{}:", id, seq));
}

bool parse_campaign_value(std::string_view v, std::size_t min_len, std::size_t max_len, uint32_t* id,
                          uint64_t* seq) {
  const auto c1 = v.find(':');
  if (c1 == std::string_view::npos) return false;
  const auto c2 = v.find(':', c1 + 1);
  if (c2 == std::string_view::npos) return false;
  auto r1 = std::from_chars(v.data(), v.data() + c1, *id);
  auto r2 = std::from_chars(v.data() + c1 + 1, v.data() + c2, *seq);
  if (r1.ec != std::errc() || r1.ptr != v.data() + c1 || r2.ec != std::errc() || r2.ptr != v.data() + c2) return false;
  return v == campaign_value(*id, *seq, min_len, max_len);
}

// ---- Journal ----

StatusOr<Journal> Journal::create_file(const std::string& path) {
  Journal j;
  j.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (j.fd_ < 0) return Status::io_error(fmt::format("journal {}: {}", path, std::strerror(errno)));
  return j;
}

Journal::Journal(Journal&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)), all_(std::move(o.all_)) { o.fd_ = -1; }

Journal& Journal::operator=(Journal&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    buf_ = std::move(o.buf_);
    all_ = std::move(o.all_);
  }
  return *this;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Status Journal::flush() {
  if (buf_.empty()) return Status::ok();
  if (fd_ < 0) {
    all_.insert(all_.end(), buf_.begin(), buf_.end());
    buf_.clear();
    return Status::ok();
  }
  const char* p = reinterpret_cast<const char*>(buf_.data());
  std::size_t left = buf_.size() * sizeof(JRecord);
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::io_error(fmt::format("journal write: {}", std::strerror(errno)));
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  buf_.clear();
  return Status::ok();
}

StatusOr<std::vector<JRecord>> Journal::read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Status::io_error(fmt::format("journal {}: {}", path, std::strerror(errno)));
  std::vector<JRecord> out;
  JRecord buf[4096];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    // A writer killed mid-write(2) can leave a partial record at the end
    // (never in practice for one write of whole records, but be exact).
    out.insert(out.end(), buf, buf + static_cast<std::size_t>(r) / sizeof(JRecord));
  }
  ::close(fd);
  return out;
}

// ---- Model ----

void Model::apply(const JRecord& r) {
  if (r.seq > max_seq_) max_seq_ = r.seq;
  KeyState& k = state_[r.key];
  if (r.type == JType::kIssue) {
    k.ops.push_back({r.op, r.seq, false});
    return;
  }
  for (auto it = k.ops.rbegin(); it != k.ops.rend(); ++it) {
    if (it->seq == r.seq) {
      it->acked = true;
      return;
    }
  }
}

VerifyReport Model::verify(const std::function<std::optional<std::string>(const std::string&)>& get,
                           const std::function<void(const std::function<void(std::string_view)>&)>& scan) {
  VerifyReport rep;
  auto note = [&](std::string s) {
    if (rep.examples.size() < 10) rep.examples.push_back(std::move(s));
  };
  std::unordered_map<uint32_t, uint64_t> observed;  // key -> seq found (0 = absent)
  for (uint32_t id = 0; id < keys_; ++id) {
    const std::string key = campaign_key(id);
    std::optional<std::string> v = get(key);
    ++rep.keys_checked;
    auto it = state_.find(id);
    const KeyState empty;
    const KeyState& k = it == state_.end() ? empty : it->second;
    // The allowed states: after op j for j >= the last acknowledged op (or
    // the baseline too, if nothing was acknowledged this cycle).
    std::size_t first = 0;
    bool baseline_ok = true;
    for (std::size_t j = 0; j < k.ops.size(); ++j) {
      if (k.ops[j].acked) {
        first = j;
        baseline_ok = false;
      }
    }
    for (const PendingOp& op : k.ops) rep.acked += op.acked ? 1 : 0;
    uint64_t found = 0;
    if (v.has_value()) {
      uint32_t vid = 0;
      uint64_t vseq = 0;
      if (!parse_campaign_value(*v, min_len_, max_len_, &vid, &vseq) || vid != id) {
        ++rep.torn;
        note(fmt::format("{}: torn or corrupt value ({} bytes: {:.40})", key, v->size(), *v));
        continue;
      }
      found = vseq;
    }
    auto allowed = [&](uint64_t seq) {
      if (baseline_ok && seq == k.base_seq) return true;
      for (std::size_t j = first; j < k.ops.size(); ++j) {
        const uint64_t s = k.ops[j].op == JOp::kSet ? k.ops[j].seq : 0;
        if (s == seq) return true;
      }
      return false;
    };
    if (found == 0 && evictable_ && !allowed(0)) {
      // Evict mode: the cleaner may have evicted the key (durably: no older
      // value can come back, which the checks of present values enforce).
      ++rep.absent_evictable;
      observed[id] = 0;
      continue;
    }
    if (!allowed(found)) {
      // A value no write of this key ever produced is "unexpected"; an older
      // state (or absence) instead of an acknowledged one is "lost".
      bool known = found == 0 || found == k.base_seq;
      for (const PendingOp& op : k.ops) known |= op.op == JOp::kSet && op.seq == found;
      if (known) {
        ++rep.lost;
        note(fmt::format("{}: lost: found {} but an acknowledged later state exists", key,
                         found == 0 ? std::string("nothing") : fmt::format("seq {}", found)));
      } else {
        ++rep.unexpected;
        note(fmt::format("{}: seq {} was never written to this key", key, found));
      }
      continue;
    }
    observed[id] = found;
  }
  if (scan) {
    std::unordered_map<std::string, int> seen;
    scan([&](std::string_view key) {
      if (++seen[std::string(key)] == 2) {
        ++rep.duplicates;
        note(fmt::format("{}: visited twice by a scan (duplicate key)", key));
      }
    });
    // Keys outside the campaign's key space must not exist either.
    for (const auto& [key, n] : seen) {
      uint32_t id = 0;
      if (key.size() != 11 || key.rfind("ck-", 0) != 0 ||
          std::from_chars(key.data() + 3, key.data() + key.size(), id).ec != std::errc() || id >= keys_) {
        ++rep.unexpected;
        note(fmt::format("{}: a key the campaign never wrote", key));
      }
    }
  }
  if (rep.ok()) {
    for (const auto& [id, seq] : observed) {
      KeyState& k = state_[id];
      k.base_seq = seq;
      k.ops.clear();
    }
  }
  return rep;
}

}  // namespace ferrite::recovery
