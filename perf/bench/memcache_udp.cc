// memcached UDP framing and reply parsing (see memcache_udp.h).
#include "perf/bench/memcache_udp.h"

#include <charconv>

namespace ferrite::bench::mc {

namespace {
void append_text(std::vector<uint8_t>* out, std::string_view s) { out->insert(out->end(), s.begin(), s.end()); }

void append_frame(std::vector<uint8_t>* out, uint16_t id) {
  const std::size_t at = out->size();
  out->resize(at + proto::mc::kUdpHeaderSize);
  proto::mc::encode_udp_header(proto::mc::UdpHeader{id, 0, 1, 0}, out->data() + at);
}

void append_uint(std::vector<uint8_t>* out, uint64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof(b), v);
  out->insert(out->end(), b, r.ptr);
}

// Reads a decimal unsigned token ending at a space or at end; advances *s.
template <typename U>
bool take_uint(std::string_view* s, U* v) {
  const char* b = s->data();
  auto r = std::from_chars(b, b + s->size(), *v);
  if (r.ec != std::errc() || r.ptr == b) return false;
  s->remove_prefix(static_cast<std::size_t>(r.ptr - b));
  return true;
}
bool take_u32(std::string_view* s, uint32_t* v) { return take_uint(s, v); }
bool take_u64(std::string_view* s, uint64_t* v) { return take_uint(s, v); }
bool take_space(std::string_view* s) {
  if (s->empty() || s->front() != ' ') return false;
  s->remove_prefix(1);
  return true;
}

// True if a is a prefix of b or b of a (a reply still arriving).
bool prefix_either(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  return a.substr(0, n) == b.substr(0, n);
}
}  // namespace

void append_get(std::vector<uint8_t>* out, uint16_t id, std::string_view key) {
  append_frame(out, id);
  append_text(out, "get ");
  append_text(out, key);
  append_text(out, "\r\n");
}

void append_set(std::vector<uint8_t>* out, uint16_t id, std::string_view key, std::string_view value, uint32_t flags,
                uint32_t exptime) {
  append_frame(out, id);
  append_text(out, "set ");
  append_text(out, key);
  out->push_back(' ');
  append_uint(out, flags);
  out->push_back(' ');
  append_uint(out, exptime);
  out->push_back(' ');
  append_uint(out, value.size());
  append_text(out, "\r\n");
  append_text(out, value);
  append_text(out, "\r\n");
}

ReplyKind parse_reply(std::string_view t, Reply* out) noexcept {
  *out = Reply{};
  auto set = [&](ReplyKind k) { return out->kind = k; };
  const std::size_t eol = t.find("\r\n");
  if (eol == std::string_view::npos) {
    // No full first line yet: incomplete only if it can still become one.
    for (std::string_view w : {"VALUE ", "END", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "ERROR",
                               "CLIENT_ERROR", "SERVER_ERROR"}) {
      if (prefix_either(t, w)) return set(ReplyKind::kIncomplete);
    }
    return set(ReplyKind::kMalformed);
  }
  const std::string_view line = t.substr(0, eol);
  const std::string_view rest = t.substr(eol + 2);
  if (line == "END") return set(rest.empty() ? ReplyKind::kMiss : ReplyKind::kMalformed);
  if (line == "STORED") return set(rest.empty() ? ReplyKind::kStored : ReplyKind::kMalformed);
  if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND") {
    return set(rest.empty() ? ReplyKind::kNotStored : ReplyKind::kMalformed);
  }
  if (line == "ERROR" || line.starts_with("CLIENT_ERROR ") || line.starts_with("SERVER_ERROR ")) {
    return set(rest.empty() ? ReplyKind::kError : ReplyKind::kMalformed);
  }
  if (!line.starts_with("VALUE ")) return set(ReplyKind::kMalformed);
  std::string_view s = line.substr(6);
  const std::size_t sp = s.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return set(ReplyKind::kMalformed);
  out->key = s.substr(0, sp);
  s.remove_prefix(sp);
  uint32_t bytes = 0;
  if (!take_space(&s) || !take_u32(&s, &out->flags) || !take_space(&s) || !take_u32(&s, &bytes)) {
    return set(ReplyKind::kMalformed);
  }
  if (!s.empty()) {
    uint64_t cas = 0;
    if (!take_space(&s) || !take_u64(&s, &cas) || !s.empty()) return set(ReplyKind::kMalformed);
  }
  static constexpr std::string_view kTail = "\r\nEND\r\n";
  if (rest.size() < bytes) return set(ReplyKind::kIncomplete);
  const std::string_view after = rest.substr(bytes);
  if (after.size() < kTail.size()) {
    return set(prefix_either(after, kTail) ? ReplyKind::kIncomplete : ReplyKind::kMalformed);
  }
  if (after != kTail) return set(ReplyKind::kMalformed);
  out->value = rest.substr(0, bytes);
  return set(ReplyKind::kHit);
}

bool ReplyAssembler::add(const proto::mc::UdpHeader& f, std::span<const uint8_t> payload) {
  if (f.count > kMaxReplyDatagrams) {
    ++rejected_;
    return false;
  }
  if (count_ == 0) {
    count_ = f.count;
    parts_.assign(count_, {});
    have_.assign(count_, 0);
  }
  if (f.count != count_ || f.seq >= count_ || have_[f.seq] != 0) {
    ++rejected_;
    return false;
  }
  have_[f.seq] = 1;
  parts_[f.seq].assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (++have_n_ != count_) return false;
  text_.clear();
  for (const auto& p : parts_) text_ += p;
  return true;
}

void ReplyAssembler::reset() {
  count_ = have_n_ = 0;
  parts_.clear();
  have_.clear();
  text_.clear();
}

}  // namespace ferrite::bench::mc
