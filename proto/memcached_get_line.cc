// Long get lines (issue 17; see GetLine in memcached.h): the head of a line
// with no "\n" in its first kMaxLineLen bytes (parse_long_line, called by
// parse_request), and the pieces of a long get-family line after its head
// (parse_get_part).
//
// memcached 1.6.18 keeps such a line whole in memory (its read buffer grows
// without bound) and answers it once the "\n" arrived; it accepts it only if
// it starts with "get " or "gets " after at most 100 spaces and closes the
// connection without a reply otherwise. Here the line is answered piece by
// piece instead, so the bytes held stay bounded (server/memcached/tcp_io.h);
// gat and gats are accepted too.
//
// Thread safety: stateless functions; a GetLine belongs to one connection.
#include <cstring>

#include "proto/mc_numbers.h"
#include "proto/memcached.h"

namespace ferrite::proto::mc {
namespace {

constexpr std::string_view kError = "ERROR";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument";

// The connection closes without a reply (what memcached does).
ParseResult close_silently(std::size_t consumed) { return ParseResult{Parse::kError, consumed, {}, 0, true, true}; }

}  // namespace

// parse_request's branch for a line with no "\n" in its first kMaxLineLen
// bytes (in holds at least that many).
ParseResult parse_long_line(std::string_view in, Request* req) noexcept {
  *req = Request{};
  const std::string_view w = in.substr(0, kMaxLineLen);
  const std::size_t start = w.find_first_not_of(' ');
  if (start == std::string_view::npos || start > kMaxLongGetIndent) return close_silently(in.size());
  std::size_t end = w.find(' ', start);
  if (end == std::string_view::npos) return close_silently(in.size());
  const std::string_view name = w.substr(start, end - start);
  if (name == "get") req->cmd = Cmd::kGet;
  else if (name == "gets") req->cmd = Cmd::kGets;
  else if (name == "gat") req->cmd = Cmd::kGat;
  else if (name == "gats") req->cmd = Cmd::kGats;
  else return close_silently(in.size());
  std::string_view error;
  if (req->cmd == Cmd::kGat || req->cmd == Cmd::kGats) {
    // The exptime token must be whole within the window.
    const std::size_t t = w.find_first_not_of(' ', end);
    const std::size_t t_end = t == std::string_view::npos ? t : w.find(' ', t);
    if (t_end == std::string_view::npos) return close_silently(in.size());
    if (!read_int32(w.substr(t, t_end - t), &req->exptime)) error = kBadExptime;
    end = t_end;
  }
  ParseResult r;
  r.status = Parse::kLongGet;
  r.consumed = end;
  r.error = error;
  return r;
}

GetPart parse_get_part(std::string_view in, GetLine* line) noexcept {
  GetPart p;
  const std::string_view w = in.substr(0, kMaxLineLen);
  const void* nlp = std::memchr(w.data(), '\n', w.size());
  if (line->failed) {  // discard up to the end of the line
    p.consumed = nlp == nullptr ? w.size() : static_cast<std::size_t>(static_cast<const char*>(nlp) - w.data()) + 1;
    p.end = nlp != nullptr;
    return p;
  }
  std::string_view seg;      // whole keys
  std::string_view partial;  // the key still arriving (no "\n" yet)
  if (nlp != nullptr) {
    const std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(nlp) - w.data());
    seg = w.substr(0, nl);
    if (!seg.empty() && seg.back() == '\r') seg.remove_suffix(1);
    p.consumed = nl + 1;
    p.end = true;
  } else {
    const std::size_t sp = w.rfind(' ');
    seg = sp == std::string_view::npos ? std::string_view{} : w.substr(0, sp + 1);
    partial = w.substr(seg.size());
    p.consumed = seg.size();
  }
  bool has_key = false, bad_key = false;
  KeyIter it(seg);
  std::string_view k;
  while (it.next(&k)) {
    has_key = true;
    bad_key = bad_key || k.size() > kMaxKeyLen;
  }
  if (partial.size() > kMaxKeyLen) has_key = bad_key = true;
  if (has_key) line->keys_seen = true;
  if (bad_key) {
    p.error = kBadFormat;
  } else if (p.end && !line->keys_seen && line->cmd != Cmd::kGat && line->cmd != Cmd::kGats) {
    p.error = kError;  // memcached: a get without a key (a gat without one answers END)
  }
  if (!p.error.empty()) {
    if (!p.end) {
      line->failed = true;
      p.consumed = w.size();
    }
    return p;
  }
  p.keys = seg;
  return p;
}

}  // namespace ferrite::proto::mc
