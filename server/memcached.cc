// memcached compatibility (see memcached.h).
#include "server/memcached.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "common/log.h"
#include "server/mc_tcp_io.h"

namespace ferrite::server {
namespace {

using proto::mc::Cmd;
using proto::mc::MetaMode;
using proto::mc::Parse;
using proto::mc::Request;

uint64_t unix_now() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void inc(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

void crlf(std::string* out, std::string_view s) {
  out->append(s);
  out->append("\r\n");
}

void append_num(std::string* out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

void append_signed(std::string* out, int64_t v) {
  if (v < 0) {
    out->push_back('-');
    append_num(out, static_cast<uint64_t>(-v));
  } else {
    append_num(out, static_cast<uint64_t>(v));
  }
}

int64_t ttl_of(uint32_t exptime, uint64_t now) {
  if (exptime == 0) return -1;
  return exptime > now ? static_cast<int64_t>(exptime - now) : 0;
}

// memcached's text, then why (clients match the prefix: libmemcached maps it
// to MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE).
constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory storing object";
constexpr bool is_oom(Result r) noexcept { return r == Result::kNoSpace || r == Result::kLiveFull; }
std::string_view oom_text(Result r) noexcept {
  if (r == Result::kLiveFull) {
    return "SERVER_ERROR out of memory storing object: live data fills the pool (pool.when_full = \"error\")";
  }
  if (r == Result::kNoSpace) return "SERVER_ERROR out of memory storing object: the cleaner freed no room in time";
  return kOutOfMemory;
}
constexpr std::string_view kNonNumeric = "CLIENT_ERROR cannot increment or decrement non-numeric value";
// Keys of classic gets staged from one burst of datagrams (stage_gets): their
// values are copied out of the index together, so at most this many.
constexpr std::size_t kMaxStagedKeys = 32;

// The echo flags every meta reply carries when asked: k (key), O (opaque),
// b (the key is base64, when k is returned).
void meta_echo(const Request& r, std::string* out) {
  for (uint8_t i = 0; i < r.nflags; ++i) {
    const proto::mc::MetaFlag& f = r.flags[i];
    if (f.flag == 'k') {
      out->append(" k");
      out->append(r.raw_key);
      if (r.base64) out->append(" b");
    } else if (f.flag == 'O') {
      out->append(" O");
      out->append(f.token);
    }
  }
}

}  // namespace

McEngine::McEngine(index::Index& idx, McOptions opts) : idx_(idx), opts_(std::move(opts)), start_unix_(unix_now()) {
  if (opts_.udp_max_payload == 0 || opts_.udp_max_payload > proto::mc::kUdpMaxPayload) {
    opts_.udp_max_payload = proto::mc::kUdpMaxPayload;
  }
  if (opts_.udp_max_reply == 0) opts_.udp_max_reply = proto::mc::kUdpMaxReply;
}

McEngine::~McEngine() = default;

McContext& McEngine::add_context(unsigned index_worker) {
  auto cx = std::make_unique<McContext>();
  cx->worker_ = &idx_.worker(index_worker);
  contexts_.push_back(std::move(cx));
  return *contexts_.back();
}

bool McEngine::allowed(const sockaddr_in& peer) const noexcept {
  const uint32_t ip = ntohl(peer.sin_addr.s_addr);
  for (const Cidr& c : opts_.allow) {
    if (c.contains(ip)) return true;
  }
  return false;
}

uint64_t McEngine::sum(std::atomic<uint64_t> McStats::*f) const {
  uint64_t t = 0;
  for (const auto& c : contexts_) t += (c->stats_.*f).load(std::memory_order_relaxed);
  return t;
}

std::size_t McEngine::process(McContext& cx, std::string_view in, std::string* out, std::size_t* swallow,
                              bool* close, McStream* stream) {
  std::size_t done = 0;
  *swallow = 0;
  *close = false;
  maybe_delayed_flush(cx);
  cx.stream = stream;
  if (stream != nullptr && stream->paused) {
    // The rest of a get paused at the bound comes before anything behind it.
    const std::string keys = std::move(stream->keys);
    stream->paused = false;
    get_keys(cx, stream->cmd, stream->exptime, keys, out);
    if (stream->paused) {
      cx.stream = nullptr;
      return 0;
    }
  }
  while (done < in.size()) {
    if (stream != nullptr && out->size() >= stream->out_limit) {
      // Bound reached: no further request is parsed now (TCP resumes once
      // the output drained; UDP cannot, so the datagram is refused).
      if (!stream->resumable) stream->too_large = true;
      break;
    }
    const proto::mc::ParseResult pr = proto::mc::parse_request(in.substr(done), &cx.req);
    if (pr.status == Parse::kNeedMore) break;
    done += pr.consumed;
    if (pr.status == Parse::kError) {
      inc(pr.error.starts_with("CLIENT_ERROR") ? cx.stats_.client_errors : cx.stats_.errors);
      if (!pr.quiet) crlf(out, pr.error);
      if (pr.close) {
        *close = true;
        break;
      }
      if (pr.swallow != 0) {
        const std::size_t here = std::min(pr.swallow, in.size() - done);
        done += here;
        *swallow = pr.swallow - here;
        if (*swallow != 0) break;
      }
      continue;
    }
    execute(cx, cx.req, out, close);
    if (*close) break;
    if (stream != nullptr && (stream->paused || stream->too_large)) break;
  }
  cx.stream = nullptr;
  inc(cx.stats_.bytes_read, done);
  return done;
}

void McEngine::on_idle(McContext& cx) {
  cx.worker_->quiesce();
  maybe_delayed_flush(cx);
}

void McEngine::maybe_delayed_flush(McContext& cx) {
  uint64_t at = flush_at_.load(std::memory_order_relaxed);
  if (at == 0 || unix_now() < at) return;
  if (flush_at_.compare_exchange_strong(at, 0, std::memory_order_relaxed)) flush(cx);
}

void McEngine::flush(McContext& cx) {
  // Every key present now is deleted, a page of keys per index burst.
  std::vector<std::string> keys;
  std::optional<uint64_t> cursor = 0;
  while (cursor.has_value()) {
    keys.clear();
    cursor = idx_.scan_page(*cursor, 64u << 10,
                            [&](std::string_view k, std::string_view, uint32_t, uint32_t, uint64_t) { keys.emplace_back(k); });
    cx.ops.clear();
    for (const std::string& k : keys) cx.ops.push_back(index::Op::del(k));
    if (!cx.ops.empty()) cx.worker_->execute(cx.ops);
  }
}

std::size_t memcached_item_size(std::size_t klen, std::size_t vlen, uint32_t flags) {
  // memcached's ITEM_ntotal on 64-bit with CAS: the 48-byte item header, the
  // 8-byte CAS, the key and its NUL, the value and its "\r\n", and 4 bytes
  // of client flags when they are not 0.
  return 48 + 8 + klen + 1 + vlen + 2 + (flags != 0 ? 4 : 0);
}

unsigned memcached_slab_class(std::size_t item_size) {
  // memcached's default slab classes (-n 48, -f 1.25, 1 MiB pages): 96 bytes,
  // then x1.25 rounded up to 8, while below 512 KiB / 1.25; the last class is
  // 512 KiB and also holds (the headers of) larger, chunked items.
  std::size_t size = 96;
  unsigned cls = 1;
  constexpr std::size_t kChunkMax = 512u << 10;
  for (;;) {
    if (size % 8 != 0) size += 8 - size % 8;
    if (item_size <= size) return cls;
    ++cls;
    size = static_cast<std::size_t>(static_cast<double>(size) * 1.25);
    if (size >= static_cast<std::size_t>(kChunkMax / 1.25)) return cls;  // the 512 KiB class
  }
}

bool McEngine::current_version(McContext& cx, std::string_view key, uint64_t* version) {
  index::Op g = index::Op::get(key, nullptr);
  if (cx.worker_->execute_one(g) != Result::kOk) return false;
  *version = g.out_version;
  return true;
}

void McEngine::execute(McContext& cx, const Request& r, std::string* out, bool* close) {
  const uint64_t now = unix_now();
  switch (r.cmd) {
    case Cmd::kGet: case Cmd::kGets: case Cmd::kGat: case Cmd::kGats:
      exec_get(cx, r, out);
      return;
    case Cmd::kSet: case Cmd::kAdd: case Cmd::kReplace: case Cmd::kAppend: case Cmd::kPrepend: case Cmd::kCas:
      exec_storage(cx, r, out);
      return;
    case Cmd::kDelete: {
      index::Op op = index::Op::del(r.key);
      const Result res = cx.worker_->execute_one(op);
      inc(res == Result::kOk ? cx.stats_.delete_hits : cx.stats_.delete_misses);
      if (!r.noreply) crlf(out, res == Result::kOk ? "DELETED" : "NOT_FOUND");
      return;
    }
    case Cmd::kIncr: case Cmd::kDecr: {
      const bool incr = r.cmd == Cmd::kIncr;
      index::Op op;
      op.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
      op.key = r.key;
      op.delta = r.delta;
      const Result res = cx.worker_->execute_one(op);
      carry_token(op);
      inc(res == Result::kNotFound ? (incr ? cx.stats_.incr_misses : cx.stats_.decr_misses)
                                   : (incr ? cx.stats_.incr_hits : cx.stats_.decr_hits));
      if (res == Result::kNotNumeric) inc(cx.stats_.client_errors);
      if (is_oom(res)) inc(cx.stats_.out_of_memory);
      if (r.noreply) return;  // memcached sends no error either
      if (res == Result::kNotNumeric) {
        crlf(out, kNonNumeric);
        return;
      }
      if (is_oom(res)) {
        crlf(out, oom_text(res));
        return;
      }
      if (res == Result::kOk) {
        append_num(out, op.out_number);
        out->append("\r\n");
      } else {
        crlf(out, "NOT_FOUND");
      }
      return;
    }
    case Cmd::kTouch: {
      index::Op op = index::Op::touch(r.key, proto::mc::absolute_exptime(r.exptime, now));
      const Result res = cx.worker_->execute_one(op);
      carry_token(op);
      inc(cx.stats_.cmd_touch);
      inc(res == Result::kOk ? cx.stats_.touch_hits : cx.stats_.touch_misses);
      if (r.noreply) return;
      if (is_oom(res)) {
        crlf(out, oom_text(res));
        return;
      }
      crlf(out, res == Result::kOk ? "TOUCHED" : "NOT_FOUND");
      return;
    }
    case Cmd::kFlushAll:
      inc(cx.stats_.cmd_flush);
      if (r.number > 0) {
        flush_at_.store(proto::mc::absolute_exptime(r.number, now), std::memory_order_relaxed);
      } else {
        flush_at_.store(0, std::memory_order_relaxed);
        flush(cx);
      }
      if (!r.noreply) crlf(out, "OK");
      return;
    case Cmd::kVersion:
      out->append("VERSION ");
      crlf(out, kMcVersion);
      return;
    case Cmd::kVerbosity:
      if (!r.noreply) crlf(out, "OK");
      return;
    case Cmd::kStats:
      exec_stats(cx, r, out);
      return;
    case Cmd::kQuit:
      *close = true;
      return;
    case Cmd::kMetaGet: exec_meta_get(cx, r, out); return;
    case Cmd::kMetaSet: exec_meta_set(cx, r, out); return;
    case Cmd::kMetaDelete: exec_meta_delete(cx, r, out); return;
    case Cmd::kMetaArith: exec_meta_arith(cx, r, out); return;
    case Cmd::kMetaDebug: exec_meta_debug(cx, r, out); return;
    case Cmd::kMetaNoop:
      inc(cx.stats_.cmd_meta);
      crlf(out, "MN");
      return;
  }
}

void McEngine::exec_get(McContext& cx, const Request& r, std::string* out) {
  const bool touch = r.cmd == Cmd::kGat || r.cmd == Cmd::kGats;
  const uint32_t exptime = touch ? proto::mc::absolute_exptime(r.exptime, unix_now()) : 0;
  get_keys(cx, r.cmd, exptime, r.keys, out);
}

void McEngine::get_keys(McContext& cx, Cmd cmd, uint32_t exptime, std::string_view keys, std::string* out) {
  // kGetChunkKeys keys per index burst, the bound checked between bursts
  // (mc_stream.h): the values in memory at once and the output past the
  // bound are at most a chunk's.
  const bool touch = cmd == Cmd::kGat || cmd == Cmd::kGats;
  const bool with_cas = cmd == Cmd::kGets || cmd == Cmd::kGats;
  McStream* s = cx.stream;
  proto::mc::KeyIter it(keys);
  while (!it.done()) {
    if (s != nullptr && out->size() >= s->out_limit) {
      if (!s->resumable) {
        s->too_large = true;
        return;
      }
      s->paused = true;
      s->cmd = cmd;
      s->exptime = exptime;
      s->keys.assign(it.rest());  // keys is never s->keys (process moved it out)
      inc(cx.stats_.get_chunks_paused);
      return;
    }
    cx.ops.clear();
    std::string_view k;
    for (std::size_t n = 0; n < kGetChunkKeys && it.next(&k); ++n) {
      if (touch) cx.ops.push_back(index::Op::touch(k, exptime));
      cx.ops.push_back(index::Op::get(k, nullptr));
    }
    if (cx.values.size() < cx.ops.size()) cx.values.resize(cx.ops.size());
    for (std::size_t i = 0; i < cx.ops.size(); ++i) {
      if (cx.ops[i].code == index::OpCode::kGet) cx.ops[i].out_value = &cx.values[i];
    }
    cx.worker_->execute(cx.ops);
    reply_items(cx, 0, cx.ops.size(), with_cas, out);
    release_values(cx);
  }
  out->append("END\r\n");
}

void McEngine::release_values(McContext& cx) {
  for (std::string& v : cx.values) {
    if (v.capacity() > kKeptValueCapacity) std::string().swap(v);
  }
}

void McEngine::reply_get(McContext& cx, std::size_t first, std::size_t n, bool with_cas, std::string* out) {
  reply_items(cx, first, n, with_cas, out);
  out->append("END\r\n");
}

void McEngine::reply_items(McContext& cx, std::size_t first, std::size_t n, bool with_cas, std::string* out) {
  for (std::size_t i = first; i < first + n; ++i) {
    const index::Op& op = cx.ops[i];
    if (op.code != index::OpCode::kGet) {
      carry_token(op);
      inc(cx.stats_.cmd_touch);
      inc(op.result == Result::kOk ? cx.stats_.touch_hits : cx.stats_.touch_misses);
      continue;
    }
    inc(cx.stats_.cmd_get);
    if (op.result != Result::kOk) {
      inc(cx.stats_.get_misses);
      continue;
    }
    inc(cx.stats_.get_hits);
    out->append("VALUE ");
    out->append(op.key);
    out->push_back(' ');
    append_num(out, op.out_flags);
    out->push_back(' ');
    append_num(out, op.out_value->size());
    if (with_cas) {
      out->push_back(' ');
      append_num(out, op.out_version);
    }
    out->append("\r\n");
    out->append(*op.out_value);
    out->append("\r\n");
  }
}

bool McEngine::stage_gets(McContext& cx, std::string_view in, std::size_t tag) {
  // Anything but get/gets is not staged: a look at the first bytes spares
  // those datagrams a second parse (process() parses them).
  if (!in.starts_with("get")) return false;
  maybe_delayed_flush(cx);
  if (cx.staged_gets.empty()) cx.ops.clear();  // cx.ops holds only staged ops from here to finish_gets
  const std::size_t ops0 = cx.ops.size(), staged0 = cx.staged_gets.size();
  auto undo = [&] {
    cx.ops.resize(ops0);
    cx.staged_gets.resize(staged0);
    return false;
  };
  std::size_t done = 0;
  while (done < in.size()) {
    const proto::mc::ParseResult pr = proto::mc::parse_request(in.substr(done), &cx.req);
    if (pr.status != Parse::kOk || (cx.req.cmd != Cmd::kGet && cx.req.cmd != Cmd::kGets)) return undo();
    done += pr.consumed;
    McContext::StagedGet g{tag, cx.ops.size(), 0, cx.req.cmd == Cmd::kGets, false};
    proto::mc::KeyIter it(cx.req.keys);
    std::string_view k;
    while (it.next(&k)) cx.ops.push_back(index::Op::get(k, nullptr));  // views into in
    // The staged values are all in memory at once: beyond kMaxStagedKeys
    // keys, the datagram goes through process(), which answers in chunks.
    if (cx.ops.size() > kMaxStagedKeys) return undo();
    g.n = cx.ops.size() - g.first;
    cx.staged_gets.push_back(g);
  }
  if (cx.staged_gets.size() == staged0) return false;  // empty datagram: process() answers it
  cx.staged_gets.back().last_of_tag = true;
  inc(cx.stats_.bytes_read, done);
  return true;
}

void McEngine::execute_staged_gets(McContext& cx) {
  // One index burst for all of them: one clock read, one QSBR pass, and the
  // lookups of the whole burst prefetched together.
  if (cx.values.size() < cx.ops.size()) cx.values.resize(cx.ops.size());
  for (std::size_t i = 0; i < cx.ops.size(); ++i) cx.ops[i].out_value = &cx.values[i];
  cx.worker_->execute(cx.ops);
}

void McEngine::exec_storage(McContext& cx, const Request& r, std::string* out) {
  index::Op op;
  switch (r.cmd) {
    case Cmd::kSet: op.code = index::OpCode::kSet; break;
    case Cmd::kAdd: op.code = index::OpCode::kAdd; break;
    case Cmd::kReplace: op.code = index::OpCode::kReplace; break;
    case Cmd::kAppend: op.code = index::OpCode::kAppend; break;
    case Cmd::kPrepend: op.code = index::OpCode::kPrepend; break;
    default: op.code = index::OpCode::kCas; break;
  }
  op.key = r.key;
  op.value = r.data;
  op.flags = r.client_flags;
  op.exptime = proto::mc::absolute_exptime(r.exptime, unix_now());
  op.cas = r.cas;
  const Result res = cx.worker_->execute_one(op);
  inc(cx.stats_.cmd_set);
  std::string_view reply;
  switch (res) {
    case Result::kOk: reply = "STORED"; break;
    case Result::kExists: case Result::kNotStored: reply = "NOT_STORED"; break;
    case Result::kNotFound: reply = "NOT_FOUND"; break;
    case Result::kCasMismatch: reply = "EXISTS"; break;
    default:
      inc(cx.stats_.out_of_memory);
      if (!r.noreply) crlf(out, oom_text(res));  // noreply: memcached sends no error either
      return;
  }
  if (r.cmd == Cmd::kCas) {
    inc(res == Result::kOk ? cx.stats_.cas_hits : res == Result::kCasMismatch ? cx.stats_.cas_badval : cx.stats_.cas_misses);
  }
  if (!r.noreply) crlf(out, reply);
}

void McEngine::exec_meta_get(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  const uint64_t now = unix_now();
  cx.ops.clear();
  if (r.has_exptime) {
    index::Op t = index::Op::touch(r.key, proto::mc::absolute_exptime(r.exptime, now));
    cx.ops.push_back(t);
    inc(cx.stats_.cmd_touch);
  }
  if (cx.values.empty()) cx.values.resize(1);
  cx.ops.push_back(index::Op::get(r.key, &cx.values[0]));
  cx.worker_->execute(cx.ops);
  if (r.has_exptime) carry_token(cx.ops.front());
  index::Op& g = cx.ops.back();
  inc(cx.stats_.cmd_get);
  // N (vivify): a miss creates an empty item (flags 0, TTL N) and its creator
  // gets the win token, as memcached does. The token is reserved before the
  // add (WinTokens::reserve), so readers of the new item, and vivifiers that
  // lose the race, see Z; the reserving client gets W for whatever item its
  // add leaves (its own, or one created meanwhile).
  bool created = false;
  bool vivified = false;  // win and token_sent decided here
  bool win = false;
  bool token_sent = false;
  if (g.result != Result::kOk && r.has_vivify) {
    vivified = true;
    const bool holder = tokens_.reserve(r.key);
    index::Op add;
    add.code = index::OpCode::kAdd;
    add.key = r.key;
    add.exptime = proto::mc::absolute_exptime(r.vivify_ttl, now);
    const Result res = cx.worker_->execute_one(add);
    if (res == Result::kOk) {
      created = true;
      cx.values[0].clear();
      g.result = Result::kOk;
      g.out_flags = 0;
      g.out_exptime = add.exptime;
      g.out_version = add.out_version;
      g.out_stale = false;
    } else if (res == Result::kExists) {
      g.result = cx.worker_->execute_one(g);
    }
    if (holder) {
      if (g.result == Result::kOk) {
        win = tokens_.resolve(r.key, g.out_version);
      } else {
        tokens_.cancel(r.key);
      }
    }
    token_sent = !win;
    if (is_oom(res)) {
      inc(cx.stats_.get_misses);
      inc(cx.stats_.out_of_memory);
      crlf(out, oom_text(res));
      return;
    }
  }
  if (g.result != Result::kOk) {
    inc(cx.stats_.get_misses);
    if (r.has('q')) return;
    out->append("EN");
    meta_echo(r, out);
    out->append("\r\n");
    return;
  }
  inc(created ? cx.stats_.get_misses : cx.stats_.get_hits);
  // Win token (W), token already sent (Z), stale (X), decided as memcached
  // 1.6.18 does: a created item, a stale one, or (R) one whose TTL left is
  // below R wins if its version's token is still unsent (WinTokens).
  if (!vivified) {
    const bool wants_token =
        g.out_stale || (r.has_recache && g.out_exptime != 0 && ttl_of(g.out_exptime, now) < r.recache_ttl);
    if (wants_token) win = tokens_.try_win(r.key, g.out_version);
    if (!win) token_sent = tokens_.sent(r.key, g.out_version);
  }
  const std::string& value = cx.values[0];
  const bool with_value = r.has('v');
  if (with_value) {
    out->append("VA ");
    append_num(out, value.size());
  } else {
    out->append("HD");
  }
  for (uint8_t i = 0; i < r.nflags; ++i) {
    const proto::mc::MetaFlag& f = r.flags[i];
    switch (f.flag) {
      case 'c': out->append(" c"); append_num(out, g.out_version); break;
      case 'f': out->append(" f"); append_num(out, g.out_flags); break;
      case 's': out->append(" s"); append_num(out, value.size()); break;
      case 't': out->append(" t"); append_signed(out, ttl_of(g.out_exptime, now)); break;
      case 'k':
        out->append(" k");
        out->append(r.raw_key);
        if (r.base64) out->append(" b");
        break;
      case 'O': out->append(" O"); out->append(f.token); break;
      default: break;
    }
  }
  if (token_sent) out->append(" Z");
  if (g.out_stale) out->append(" X");
  if (win) out->append(" W");
  out->append("\r\n");
  if (with_value) {
    out->append(value);
    out->append("\r\n");
  }
}

void McEngine::exec_meta_set(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  inc(cx.stats_.cmd_set);
  index::Op op;
  // C is compared by the index in the same step that publishes the write
  // (index.h, Op::cas), as memcached 1.6.18 does it per mode: S and R compare
  // (C0 too: EX if present, NF if absent); A and P compare unless C0 (absent:
  // NS); E ignores C (it stores only when there is nothing to compare).
  const bool append_mode = r.mode == MetaMode::kAppend || r.mode == MetaMode::kPrepend;
  switch (r.mode) {
    case MetaMode::kAdd: op.code = index::OpCode::kAdd; break;
    case MetaMode::kAppend: op.code = index::OpCode::kAppend; break;
    case MetaMode::kPrepend: op.code = index::OpCode::kPrepend; break;
    case MetaMode::kReplace: op.code = r.has_cas ? index::OpCode::kCas : index::OpCode::kReplace; break;
    default: op.code = r.has_cas ? index::OpCode::kCas : index::OpCode::kSet; break;
  }
  op.key = r.key;
  op.value = r.data;
  op.flags = r.client_flags;
  op.exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, unix_now()) : 0;
  op.cas = r.mode == MetaMode::kAdd ? 0 : r.cas;
  // I (invalidate): a C older than the item's version stores the value
  // anyway, marked stale, keeping the item's TTL and win token (memcached
  // 1.6.18, modes S and R); index.h, Op::stale_if_older.
  op.stale_if_older = op.code == index::OpCode::kCas && r.has('I');
  const Result res = cx.worker_->execute_one(op);
  if (op.out_stale) carry_token(op);
  std::string_view code;
  switch (res) {
    case Result::kOk: code = "HD"; break;
    case Result::kExists: case Result::kNotStored: code = "NS"; break;
    case Result::kNotFound: code = append_mode ? "NS" : "NF"; break;
    case Result::kCasMismatch: code = "EX"; break;
    default:
      inc(cx.stats_.out_of_memory);
      crlf(out, oom_text(res));
      return;
  }
  // memcached 1.6.18 counts cas_* for C with modes S and R only.
  if (r.has_cas && (r.mode == MetaMode::kSet || r.mode == MetaMode::kReplace)) {
    inc(res == Result::kOk ? cx.stats_.cas_hits : res == Result::kCasMismatch ? cx.stats_.cas_badval : cx.stats_.cas_misses);
  }
  if (res == Result::kOk && r.has('q')) return;
  out->append(code);
  for (uint8_t i = 0; i < r.nflags; ++i) {
    if (r.flags[i].flag == 'c') {  // memcached 1.6.18 answers c0 when nothing was stored
      out->append(" c");
      append_num(out, res == Result::kOk ? op.out_version : 0);
    }
  }
  meta_echo(r, out);
  out->append("\r\n");
}

void McEngine::exec_meta_delete(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  std::string_view code;
  uint64_t version = 0;
  if (r.has_cas && r.cas == 0) {
    // memcached compares C0 too; no version is 0 (index.h), so a present key
    // is a mismatch: decided by one lookup, nothing is written.
    code = current_version(cx, r.key, &version) ? "EX" : "NF";
    inc(cx.stats_.delete_misses);  // as memcached counts a mismatch
  } else {
    index::Op op = index::Op::del(r.key);
    op.cas = r.cas;  // compared atomically with the delete (index.h, Op::cas)
    if (r.has('I')) {
      // I: mark stale instead of deleting (a new version, so a new win
      // token); T sets the TTL then, as in memcached.
      op.code = index::OpCode::kInvalidate;
      op.set_exptime = r.has_exptime;
      op.exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, unix_now()) : 0;
    }
    const Result res = cx.worker_->execute_one(op);
    inc(res == Result::kOk ? cx.stats_.delete_hits : cx.stats_.delete_misses);  // a mismatch is a miss
    if (is_oom(res)) {
      inc(cx.stats_.out_of_memory);
      crlf(out, oom_text(res));
      return;
    }
    code = res == Result::kOk ? "HD" : res == Result::kCasMismatch ? "EX" : "NF";
  }
  if (code == "HD" && r.has('q')) return;
  out->append(code);
  meta_echo(r, out);
  out->append("\r\n");
}

void McEngine::exec_meta_arith(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  const uint64_t now = unix_now();
  const bool incr = r.mode != MetaMode::kDecr;
  index::Op op;
  op.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
  op.key = r.key;
  op.delta = r.delta;
  // C: compared atomically with the write (index.h, Op::cas), before the
  // value is parsed as a number, as memcached does. C0 compares nothing
  // (memcached 1.6.18 too). An absent key is NF, or created by N (which
  // ignores C, as in memcached).
  op.cas = r.cas;
  Result res = cx.worker_->execute_one(op);
  carry_token(op);
  uint64_t number = op.out_number;
  if (res == Result::kNotFound && r.has_vivify) {
    // Auto-create with the initial value (J, default 0) and TTL N.
    cx.num.clear();
    append_num(&cx.num, r.initial);
    index::Op add;
    add.code = index::OpCode::kAdd;
    add.key = r.key;
    add.value = cx.num;
    add.exptime = proto::mc::absolute_exptime(r.vivify_ttl, now);
    res = cx.worker_->execute_one(add);
    number = r.initial;
    if (res == Result::kExists) {  // created meanwhile by another client: apply the delta
      res = cx.worker_->execute_one(op);
      carry_token(op);
      number = op.out_number;
    }
  }
  if (res == Result::kCasMismatch) {
    out->append("EX");
    meta_echo(r, out);
    out->append("\r\n");
    return;
  }
  inc(res == Result::kNotFound ? (incr ? cx.stats_.incr_misses : cx.stats_.decr_misses)
                               : (incr ? cx.stats_.incr_hits : cx.stats_.decr_hits));
  if (res == Result::kNotNumeric) {
    inc(cx.stats_.client_errors);
    crlf(out, kNonNumeric);
    return;
  }
  if (res == Result::kNotFound) {
    out->append("NF");
    meta_echo(r, out);
    out->append("\r\n");
    return;
  }
  if (res != Result::kOk) {
    inc(cx.stats_.out_of_memory);
    crlf(out, oom_text(res));
    return;
  }
  // TTL update, then the item's version and expiry for c/t.
  cx.ops.clear();
  if (r.has_exptime) {
    index::Op t = index::Op::touch(r.key, proto::mc::absolute_exptime(r.exptime, now));
    cx.ops.push_back(t);
  }
  cx.ops.push_back(index::Op::get(r.key, nullptr));
  cx.worker_->execute(cx.ops);
  if (r.has_exptime) carry_token(cx.ops.front());
  const index::Op& g = cx.ops.back();
  const bool with_value = r.has('v');
  if (!with_value && r.has('q')) return;
  cx.num.clear();
  append_num(&cx.num, number);
  if (with_value) {
    out->append("VA ");
    append_num(out, cx.num.size());
  } else {
    out->append("HD");
  }
  for (uint8_t i = 0; i < r.nflags; ++i) {
    const proto::mc::MetaFlag& f = r.flags[i];
    if (f.flag == 'c') {
      out->append(" c");
      append_num(out, g.out_version);
    } else if (f.flag == 't') {
      out->append(" t");
      append_signed(out, g.result == Result::kOk ? ttl_of(g.out_exptime, now) : -1);
    } else if (f.flag == 'k') {
      out->append(" k");
      out->append(r.raw_key);
      if (r.base64) out->append(" b");
    } else if (f.flag == 'O') {
      out->append(" O");
      out->append(f.token);
    }
  }
  out->append("\r\n");
  if (with_value) {
    out->append(cx.num);
    out->append("\r\n");
  }
}

void McEngine::exec_meta_debug(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  if (cx.values.empty()) cx.values.resize(1);
  index::Op g = index::Op::get(r.key, &cx.values[0]);
  if (cx.worker_->execute_one(g) != Result::kOk) {
    crlf(out, "EN");
    return;
  }
  // memcached 1.6.18 prints exp as now - exptime (so a TTL of 100 shows
  // exp=-100; -1 when there is none), size as its item's size and cls as the
  // slab class that size falls in (memcached_item_size / memcached_slab_class).
  const uint64_t now = unix_now();
  out->append("ME ");
  out->append(r.raw_key);
  out->append(" exp=");
  append_signed(out, g.out_exptime == 0 ? -1 : static_cast<int64_t>(now) - static_cast<int64_t>(g.out_exptime));
  out->append(" la=0 cas=");
  append_num(out, g.out_version);
  const std::size_t size = memcached_item_size(r.key.size(), cx.values[0].size(), g.out_flags);
  out->append(" fetch=no cls=");
  append_num(out, memcached_slab_class(size));
  out->append(" size=");
  append_num(out, size);
  out->append("\r\n");
}

std::string McEngine::stats_lines() const {
  std::string s;
  auto stat = [&](std::string_view name, uint64_t v) {
    s += "STAT ";
    s += name;
    s += ' ';
    append_num(&s, v);
    s += "\r\n";
  };
  const uint64_t now = unix_now();
  stat("pid", static_cast<uint64_t>(getpid()));
  stat("uptime", now - start_unix_);
  stat("time", now);
  s += "STAT version ";
  s += kMcVersion;
  s += "\r\n";
  stat("pointer_size", sizeof(void*) * 8);
  stat("curr_connections", curr_connections.load(std::memory_order_relaxed));
  stat("total_connections", total_connections.load(std::memory_order_relaxed));
  stat("rejected_connections", rejected_connections.load(std::memory_order_relaxed));
  stat("cmd_get", sum(&McStats::cmd_get));
  stat("cmd_set", sum(&McStats::cmd_set));
  stat("cmd_flush", sum(&McStats::cmd_flush));
  stat("cmd_touch", sum(&McStats::cmd_touch));
  stat("cmd_meta", sum(&McStats::cmd_meta));
  stat("get_hits", sum(&McStats::get_hits));
  stat("get_misses", sum(&McStats::get_misses));
  stat("delete_misses", sum(&McStats::delete_misses));
  stat("delete_hits", sum(&McStats::delete_hits));
  stat("incr_misses", sum(&McStats::incr_misses));
  stat("incr_hits", sum(&McStats::incr_hits));
  stat("decr_misses", sum(&McStats::decr_misses));
  stat("decr_hits", sum(&McStats::decr_hits));
  stat("cas_misses", sum(&McStats::cas_misses));
  stat("cas_hits", sum(&McStats::cas_hits));
  stat("cas_badval", sum(&McStats::cas_badval));
  stat("touch_hits", sum(&McStats::touch_hits));
  stat("touch_misses", sum(&McStats::touch_misses));
  stat("bytes_read", sum(&McStats::bytes_read));
  stat("bytes_written", sum(&McStats::bytes_written));
  const index::IndexStats is = idx_.stats();
  stat("limit_maxbytes", is.capacity_bytes);  // what the pool can hold (memcached: -m)
  stat("threads", contexts_.size());
  stat("bytes", is.log_bytes_live);
  stat("curr_items", idx_.count());
  stat("evictions", is.evictions);
  stat("reclaimed", is.expired_reclaimed);
  // Ferrite's own counters (no memcached equivalent).
  stat("ferrite_errors", sum(&McStats::errors));
  stat("ferrite_client_errors", sum(&McStats::client_errors));
  stat("ferrite_out_of_memory", sum(&McStats::out_of_memory));
  stat("ferrite_udp_requests", sum(&McStats::udp_requests));
  stat("ferrite_udp_drop_multi_datagram", sum(&McStats::udp_drop_multi));
  stat("ferrite_udp_drop_short", sum(&McStats::udp_drop_short));
  stat("ferrite_udp_drop_not_allowed", sum(&McStats::udp_drop_not_allowed));
  stat("ferrite_udp_incomplete_request", sum(&McStats::udp_incomplete));
  stat("ferrite_udp_reply_datagrams", sum(&McStats::udp_reply_datagrams));
  stat("ferrite_udp_batched_requests", sum(&McStats::udp_batched_requests));
  stat("ferrite_binary_connections", sum(&McStats::binary_refused));
  stat("ferrite_udp_reply_too_large", sum(&McStats::udp_reply_too_large));
  stat("ferrite_tcp_output_paused", sum(&McStats::tcp_output_paused));
  stat("ferrite_get_chunks_paused", sum(&McStats::get_chunks_paused));
  stat("ferrite_tcp_accept_paused", accept_paused.load(std::memory_order_relaxed));
  if (extra_stats_) {
    // "name value\n" lines -> STAT lines.
    const std::string extra = extra_stats_();
    std::string_view v(extra);
    while (!v.empty()) {
      const std::size_t nl = v.find('\n');
      const std::string_view line = v.substr(0, nl);
      if (!line.empty()) {
        s += "STAT ";
        s += line;
        s += "\r\n";
      }
      if (nl == std::string_view::npos) break;
      v.remove_prefix(nl + 1);
    }
  }
  return s;
}

void McEngine::exec_stats(McContext& cx, const Request& r, std::string* out) {
  if (r.stats_arg.empty()) {
    out->append(stats_lines());
    out->append("END\r\n");
  } else if (r.stats_arg == "reset") {
    reset_stats();
    crlf(out, "RESET");
  } else if (r.stats_arg == "settings") {
    out->append("STAT item_size_max 1048576\r\nSTAT cas_enabled yes\r\nSTAT flush_enabled yes\r\nSTAT evictions ");
    out->append(idx_.space_options().evict ? "on\r\n" : "off\r\n");
    out->append("STAT num_threads ");
    append_num(out, contexts_.size());
    out->append("\r\nEND\r\n");
  } else if (r.stats_arg == "items" || r.stats_arg == "slabs" || r.stats_arg == "sizes" || r.stats_arg == "conns") {
    crlf(out, "END");  // no slab allocator, no per-class data
  } else {
    inc(cx.stats_.errors);
    crlf(out, "ERROR");
  }
}

void McEngine::reset_stats() {
  for (auto& c : contexts_) {
    McStats& st = c->stats_;
    for (auto* f : {&st.cmd_get, &st.get_hits, &st.get_misses, &st.cmd_set, &st.cmd_touch, &st.touch_hits,
                    &st.touch_misses, &st.delete_hits, &st.delete_misses, &st.incr_hits, &st.incr_misses,
                    &st.decr_hits, &st.decr_misses, &st.cas_hits, &st.cas_misses, &st.cas_badval, &st.cmd_flush,
                    &st.cmd_meta}) {
      f->store(0, std::memory_order_relaxed);
    }
  }
}

// ---- binary protocol ----

namespace {
namespace bin {
constexpr uint16_t kOk = 0x0000, kNotFound = 0x0001, kExists = 0x0002, kTooBig = 0x0003, kInvalid = 0x0004,
                   kNotStored = 0x0005, kNotNumeric = 0x0006, kUnknown = 0x0081, kNoMemory = 0x0082;
std::string_view message(uint16_t status) {
  switch (status) {
    case kNotFound: return "Not found";
    case kExists: return "Data exists for key.";
    case kTooBig: return "Too large.";
    case kInvalid: return "Invalid arguments";
    case kNotStored: return "Not stored.";
    case kNotNumeric: return "Non-numeric server-side value for incr or decr";
    case kUnknown: return "Unknown command";
    case kNoMemory: return "Out of memory";
    default: return "";
  }
}
uint32_t be32(std::string_view s, std::size_t o) {
  return (uint32_t{static_cast<uint8_t>(s[o])} << 24) | (uint32_t{static_cast<uint8_t>(s[o + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[o + 2])} << 8) | uint32_t{static_cast<uint8_t>(s[o + 3])};
}
uint64_t be64(std::string_view s, std::size_t o) { return (uint64_t{be32(s, o)} << 32) | be32(s, o + 4); }
void put32(std::string* o, uint32_t v) {
  for (int i = 3; i >= 0; --i) o->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string* o, uint64_t v) {
  put32(o, static_cast<uint32_t>(v >> 32));
  put32(o, static_cast<uint32_t>(v & 0xffffffffu));
}
}  // namespace bin
}  // namespace

std::size_t McEngine::process_binary(McContext& cx, std::string_view in, std::string* out, bool* close,
                                     McStream* stream) {
  std::size_t done = 0;
  *close = false;
  maybe_delayed_flush(cx);
  proto::mc::BinRequest rq;
  while (done < in.size()) {
    if (stream != nullptr && out->size() >= stream->out_limit) break;  // one packet answers one key
    std::size_t used = 0;
    const auto st = proto::mc::parse_binary(in.substr(done), proto::mc::kMaxValueLen + 1024, &rq, &used);
    if (st == proto::mc::BinParse::kNeedMore) break;
    if (st == proto::mc::BinParse::kBad) {  // cannot be framed: the connection ends
      inc(cx.stats_.client_errors);
      *close = true;
      done = in.size();
      break;
    }
    done += used;
    exec_binary(cx, rq, out, close);
    if (*close) break;
  }
  inc(cx.stats_.bytes_read, done);
  return done;
}

void McEngine::exec_binary(McContext& cx, const proto::mc::BinRequest& r, std::string* out, bool* close) {
  using namespace bin;
  const uint8_t op = r.h.opcode;
  const uint64_t now = unix_now();
  auto respond = [&](uint16_t status, uint64_t cas, std::string_view extras, std::string_view key, std::string_view value) {
    proto::mc::BinHeader h;
    h.magic = proto::mc::kBinResponseMagic;
    h.opcode = op;
    h.key_len = static_cast<uint16_t>(key.size());
    h.extras_len = static_cast<uint8_t>(extras.size());
    h.status = status;
    h.body_len = static_cast<uint32_t>(extras.size() + key.size() + value.size());
    h.opaque = r.h.opaque;
    h.cas = cas;
    proto::mc::append_binary_header(h, out);
    out->append(extras);
    out->append(key);
    out->append(value);
  };
  auto error = [&](uint16_t status) {
    if (status == kInvalid || status == kNotNumeric) inc(cx.stats_.client_errors);
    if (status == kNoMemory) inc(cx.stats_.out_of_memory);
    respond(status, 0, {}, {}, message(status));
  };
  auto shape = [&](std::size_t extras, bool key, bool value) {  // the packet's parts as the opcode wants them
    return r.extras.size() == extras && r.key.empty() != key && (value || r.value.empty());
  };
  switch (op) {
    case 0x00: case 0x09: case 0x0c: case 0x0d:     // get, getq, getk, getkq
    case 0x1d: case 0x1e: case 0x23: case 0x24: {   // gat, gatq, gatk, gatkq
      const bool touch = op == 0x1d || op == 0x1e || op == 0x23 || op == 0x24;
      const bool quiet = op == 0x09 || op == 0x0d || op == 0x1e || op == 0x24;
      const bool with_key = op == 0x0c || op == 0x0d || op == 0x23 || op == 0x24;
      if (!shape(touch ? 4 : 0, true, false)) return error(kInvalid);
      cx.ops.clear();
      if (touch) {
        index::Op t = index::Op::touch(r.key, proto::mc::absolute_exptime(bin::be32(r.extras, 0), now));
        cx.ops.push_back(t);
        inc(cx.stats_.cmd_touch);
      }
      if (cx.values.empty()) cx.values.resize(1);
      cx.ops.push_back(index::Op::get(r.key, &cx.values[0]));
      cx.worker_->execute(cx.ops);
      const index::Op& g = cx.ops.back();
      inc(cx.stats_.cmd_get);
      if (g.result != Result::kOk) {
        inc(cx.stats_.get_misses);
        if (!quiet) respond(kNotFound, 0, {}, with_key ? r.key : std::string_view{}, message(kNotFound));
        return;
      }
      inc(cx.stats_.get_hits);
      std::string extras;
      put32(&extras, g.out_flags);
      respond(kOk, g.out_version, extras, with_key ? r.key : std::string_view{}, cx.values[0]);
      return;
    }
    case 0x01: case 0x11: case 0x02: case 0x12: case 0x03: case 0x13: {  // set, add, replace (+q)
      const bool quiet = op >= 0x11;
      if (!shape(8, true, true)) return error(kInvalid);
      if (r.value.size() > proto::mc::kMaxValueLen) return error(kTooBig);
      index::Op w;
      const uint8_t base = quiet ? static_cast<uint8_t>(op - 0x10) : op;
      w.code = base == 0x01 ? index::OpCode::kSet : base == 0x02 ? index::OpCode::kAdd : index::OpCode::kReplace;
      if (r.h.cas != 0 && base != 0x02) w.code = index::OpCode::kCas;
      w.key = r.key;
      w.value = r.value;
      w.flags = bin::be32(r.extras, 0);
      w.exptime = proto::mc::absolute_exptime(bin::be32(r.extras, 4), now);
      w.cas = r.h.cas;
      const Result res = cx.worker_->execute_one(w);
      inc(cx.stats_.cmd_set);
      switch (res) {
        case Result::kOk: if (!quiet) respond(kOk, w.out_version, {}, {}, {}); return;
        case Result::kExists: case Result::kCasMismatch: return error(kExists);
        case Result::kNotStored: case Result::kNotFound: return error(kNotFound);
        case Result::kTooLarge: return error(kTooBig);
        default: return error(kNoMemory);
      }
    }
    case 0x04: case 0x14: {  // delete (+q)
      if (!shape(0, true, false)) return error(kInvalid);
      index::Op d = index::Op::del(r.key);
      d.cas = r.h.cas;  // 0: unconditional; else compared atomically by the index
      const Result res = cx.worker_->execute_one(d);
      // memcached 1.6.18 answers "exists" to a delete with a CAS on an absent key too.
      if (res == Result::kCasMismatch || (res == Result::kNotFound && d.cas != 0)) return error(kExists);
      inc(res == Result::kOk ? cx.stats_.delete_hits : cx.stats_.delete_misses);
      if (res != Result::kOk) return error(kNotFound);
      if (op == 0x04) respond(kOk, 0, {}, {}, {});
      return;
    }
    case 0x05: case 0x15: case 0x06: case 0x16: {  // incr, decr (+q)
      if (!shape(20, true, false)) return error(kInvalid);
      const bool incr = op == 0x05 || op == 0x15;
      const bool quiet = op >= 0x15;
      index::Op a;
      a.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
      a.key = r.key;
      a.delta = bin::be64(r.extras, 0);
      a.cas = r.h.cas;  // compared atomically (index.h, Op::cas); absent: created below, as memcached
      const uint64_t initial = bin::be64(r.extras, 8);
      const uint32_t exp = bin::be32(r.extras, 16);
      Result res = cx.worker_->execute_one(a);
      uint64_t number = a.out_number, version = a.out_version;
      if (res == Result::kNotFound && exp != 0xffffffffu) {
        cx.num.clear();
        append_num(&cx.num, initial);
        index::Op add;
        add.code = index::OpCode::kAdd;
        add.key = r.key;
        add.value = cx.num;
        add.exptime = proto::mc::absolute_exptime(exp, now);
        res = cx.worker_->execute_one(add);
        number = initial;
        version = add.out_version;
        if (res == Result::kExists) {
          res = cx.worker_->execute_one(a);
          number = a.out_number;
          version = a.out_version;
        }
      }
      if (res == Result::kCasMismatch) return error(kExists);
      inc(res == Result::kNotFound ? (incr ? cx.stats_.incr_misses : cx.stats_.decr_misses)
                                   : (incr ? cx.stats_.incr_hits : cx.stats_.decr_hits));
      if (res == Result::kNotFound) return error(kNotFound);
      if (res == Result::kNotNumeric) return error(kNotNumeric);
      if (res != Result::kOk) return error(kNoMemory);
      if (quiet) return;
      std::string v;
      put64(&v, number);
      respond(kOk, version, {}, {}, v);
      return;
    }
    case 0x07:  // quit
      respond(kOk, 0, {}, {}, {});
      *close = true;
      return;
    case 0x17:  // quitq
      *close = true;
      return;
    case 0x08: case 0x18: {  // flush (+q)
      if (!r.key.empty() || !r.value.empty() || (r.extras.size() != 0 && r.extras.size() != 4)) return error(kInvalid);
      inc(cx.stats_.cmd_flush);
      const uint32_t delay = r.extras.size() == 4 ? bin::be32(r.extras, 0) : 0;
      if (delay > 0) {
        flush_at_.store(proto::mc::absolute_exptime(delay, now), std::memory_order_relaxed);
      } else {
        flush_at_.store(0, std::memory_order_relaxed);
        flush(cx);
      }
      if (op == 0x08) respond(kOk, 0, {}, {}, {});
      return;
    }
    case 0x0a:  // noop
      respond(kOk, 0, {}, {}, {});
      return;
    case 0x0b:  // version
      respond(kOk, 0, {}, {}, kMcVersion);
      return;
    case 0x0e: case 0x19: case 0x0f: case 0x1a: {  // append, prepend (+q)
      if (!shape(0, true, true)) return error(kInvalid);
      index::Op w;
      w.code = (op == 0x0e || op == 0x19) ? index::OpCode::kAppend : index::OpCode::kPrepend;
      w.key = r.key;
      w.value = r.value;
      w.cas = r.h.cas;  // compared atomically (index.h, Op::cas)
      const Result res = cx.worker_->execute_one(w);
      inc(cx.stats_.cmd_set);
      if (res == Result::kCasMismatch) return error(kExists);
      if (res == Result::kNotStored || res == Result::kNotFound) return error(kNotStored);
      if (res == Result::kTooLarge) return error(kTooBig);
      if (res != Result::kOk) return error(kNoMemory);
      if (op == 0x0e || op == 0x0f) respond(kOk, w.out_version, {}, {}, {});
      return;
    }
    case 0x10: {  // stat: one packet per counter, then an empty one
      if (r.key == "reset") {
        reset_stats();
      } else if (r.key.empty()) {
        const std::string lines = stats_lines();
        std::string_view v(lines);
        while (!v.empty()) {
          const std::size_t nl = v.find("\r\n");
          std::string_view line = v.substr(0, nl);
          v.remove_prefix(nl == std::string_view::npos ? v.size() : nl + 2);
          if (!line.starts_with("STAT ")) continue;
          line.remove_prefix(5);
          const std::size_t sp = line.find(' ');
          if (sp == std::string_view::npos) continue;
          respond(kOk, 0, {}, line.substr(0, sp), line.substr(sp + 1));
        }
      } else if (r.key != "settings" && r.key != "items" && r.key != "slabs" && r.key != "sizes" && r.key != "conns") {
        return error(kNotFound);
      }
      respond(kOk, 0, {}, {}, {});
      return;
    }
    case 0x1b:  // verbosity
      if (!shape(4, false, false)) return error(kInvalid);
      respond(kOk, 0, {}, {}, {});
      return;
    case 0x1c: {  // touch
      if (!shape(4, true, false)) return error(kInvalid);
      index::Op t = index::Op::touch(r.key, proto::mc::absolute_exptime(bin::be32(r.extras, 0), now));
      const Result res = cx.worker_->execute_one(t);
      inc(cx.stats_.cmd_touch);
      inc(res == Result::kOk ? cx.stats_.touch_hits : cx.stats_.touch_misses);
      if (res != Result::kOk) return error(res == Result::kNotFound ? kNotFound : kNoMemory);
      respond(kOk, t.out_version, {}, {}, {});
      return;
    }
    default:
      inc(cx.stats_.errors);
      respond(kUnknown, 0, {}, {}, message(kUnknown));
      return;
  }
}

// ---- UDP ----

McUdpHandler::McUdpHandler(McEngine& mc, unsigned first_index_worker, unsigned workers)
    : mc_(mc), reply_(workers), scratch_(workers) {
  for (unsigned w = 0; w < workers; ++w) cx_.push_back(&mc.add_context(first_index_worker + w));
}

void McUdpHandler::on_idle(unsigned worker) { mc_.on_idle(*cx_[worker]); }

void McUdpHandler::on_burst(unsigned worker, std::span<const net::Datagram> in, net::TxQueue& out) {
  McContext& cx = *cx_[worker];
  McStats& st = cx.stats();
  std::string& reply = reply_[worker];
  const std::size_t max_reply = mc_.options().udp_max_reply;
  // Replies to datagram d under its request id; a reply over max_reply is
  // replaced by an error (counted), as is one whose building was stopped.
  auto send = [&](const net::Datagram& d, uint16_t request_id, const std::string& full, bool too_large) {
    static const std::string kTooLarge = "SERVER_ERROR reply too large for UDP\r\n";
    if (too_large || full.size() > max_reply) inc(st.udp_reply_too_large);
    const std::string& r = too_large || full.size() > max_reply ? kTooLarge : full;
    const std::size_t n = proto::mc::udp_fragment(request_id, r, mc_.options().udp_max_payload, &scratch_[worker],
                                                  [&](std::string_view b) {
                                                    out.push(d.peer, std::span<const uint8_t>(
                                                                         reinterpret_cast<const uint8_t*>(b.data()), b.size()));
                                                  });
    inc(st.udp_reply_datagrams, n);
    inc(st.bytes_written, r.size());
  };
  // A staged datagram's tag is its index in the burst; its header was checked when staged.
  auto finish = [&] {
    mc_.finish_gets(cx, [&](std::size_t i, const std::string& r) {
      proto::mc::UdpHeader h;
      (void)proto::mc::decode_udp_header(
          std::string_view(reinterpret_cast<const char*>(in[i].payload.data()), in[i].payload.size()), &h);
      send(in[i], h.request_id, r, false);
    });
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const net::Datagram& d = in[i];
    if (!mc_.allowed(d.peer)) {
      inc(st.udp_drop_not_allowed);
      continue;
    }
    const std::string_view dg(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
    proto::mc::UdpHeader h;
    if (!proto::mc::decode_udp_header(dg, &h)) {
      inc(st.udp_drop_short);
      continue;
    }
    // Requests must fit one datagram (memcached drops the others too); the
    // reserved field is ignored (memaslap sends 0x0100).
    if (h.count != 1 || h.seq != 0) {
      inc(st.udp_drop_multi);
      continue;
    }
    inc(st.udp_requests);
    const std::string_view body = dg.substr(proto::mc::kUdpHeaderSize);
    // Datagrams of classic gets only (the common case) go to the index
    // together; anything else first lets the staged ones finish, so every
    // request sees the writes of the requests before it.
    if (mc_.stage_gets(cx, body, i)) {
      inc(st.udp_batched_requests);
      continue;
    }
    finish();
    reply.clear();
    std::size_t swallow = 0;
    bool close = false;
    McStream bound;
    bound.out_limit = max_reply;
    bound.resumable = false;
    const std::size_t used = mc_.process(cx, body, &reply, &swallow, &close, &bound);
    if (used < body.size() && !close && swallow == 0 && !bound.too_large) inc(st.udp_incomplete);  // cut short: ignored
    send(d, h.request_id, reply, bound.too_large);
    if (reply.capacity() > kKeptValueCapacity) std::string().swap(reply);
  }
  finish();
}

// ---- TCP ----

struct McTcpServer::Conn {
  int fd = -1;
  std::string in;
  std::string out;
  std::size_t out_off = 0;
  std::size_t swallow = 0;
  bool closing = false;     // close once out is flushed
  bool want_write = false;  // EPOLLOUT registered
  bool started = false;     // the first byte has been seen
  bool binary = false;      // it was 0x80: memcached's binary protocol
  uint32_t events = EPOLLIN | EPOLLRDHUP;  // registered with epoll
  McStream stream;          // output bound, paused get (mc_stream.h)
  bool held = false;        // serving stopped at the output bound with requests (or a get) left
  bool eof = false;         // the peer closed its side: serve what was read, then close
  std::size_t pending() const noexcept { return out.size() - out_off; }
};

StatusOr<std::unique_ptr<McTcpServer>> McTcpServer::create(McEngine& mc, const std::string& bind, uint16_t port,
                                                           unsigned index_worker, unsigned max_connections) {
  in_addr a{};
  if (::inet_pton(AF_INET, bind.c_str(), &a) != 1) {
    return Status::invalid_argument("memcached tcp bind address \"" + bind + "\" is not an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = a;
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    const std::string where = "memcached tcp " + bind + ":" + std::to_string(port) + ": ";
    if (e == EADDRINUSE) return Status::busy(where + "address in use by another process");
    return Status::io_error(where + std::strerror(e));
  }
  socklen_t len = sizeof(sa);
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::unique_ptr<McTcpServer> s(new McTcpServer(mc, mc.add_context(index_worker)));
  s->listen_fd_ = fd;
  s->port_ = ntohs(sa.sin_port);
  s->max_connections_ = max_connections;
  s->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  s->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->epoll_fd_ < 0 || s->wake_fd_ < 0) return Status::io_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listening socket
  (void)::epoll_ctl(s->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  ev.data.ptr = &s->wake_fd_;
  (void)::epoll_ctl(s->epoll_fd_, EPOLL_CTL_ADD, s->wake_fd_, &ev);
  return s;
}

McTcpServer::~McTcpServer() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void McTcpServer::start() {
  stop_.store(false);
  thread_ = std::thread([this] { run(); });
}

void McTcpServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

void McTcpServer::run() {
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  std::vector<epoll_event> events(256);
  std::vector<char> buf(256u << 10);
  auto close_conn = [&](Conn* c) {
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    conns.erase(c->fd);
    mc_.curr_connections.fetch_sub(1, std::memory_order_relaxed);
  };
  // Level-triggered: a connection over its output bound must not stay
  // registered for EPOLLIN/EPOLLRDHUP, which it does not act on (that was a
  // busy loop); it waits for EPOLLOUT only.
  auto update_events = [&](Conn* c) {
    const uint32_t want = conn_events(c->pending(), c->closing || c->eof, c->held);
    if (want == c->events) return;
    if ((c->events & EPOLLIN) != 0 && (want & EPOLLIN) == 0 && !c->closing) inc(cx_.stats().tcp_output_paused);
    c->events = want;
    c->want_write = (want & EPOLLOUT) != 0;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = c;
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  };
  // Writes what it can; false if the connection died.
  auto flush_out = [&](Conn* c) {
    while (c->out_off < c->out.size()) {
      const ssize_t n = ::send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_off += static_cast<std::size_t>(n);
        inc(cx_.stats().bytes_written, static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    if (c->out_off == c->out.size()) {
      c->out.clear();
      c->out_off = 0;
      trim(&c->out);
    } else if (c->out_off > (1u << 20)) {
      c->out.erase(0, c->out_off);
      c->out_off = 0;
    }
    return true;
  };
  // Executes the complete requests in c->in.
  auto serve = [&](Conn* c) {
    if (!c->started && !c->in.empty()) {
      c->started = true;
      c->binary = static_cast<uint8_t>(c->in[0]) == proto::mc::kBinRequestMagic;
      if (c->binary) inc(cx_.stats().binary_refused);  // counts binary connections
    }
    // Replies are produced only up to kMaxPendingOut unsent bytes (plus one
    // chunk): process() stops there, pausing a long get (mc_stream.h).
    c->held = false;
    while (!c->closing && (!c->in.empty() || c->stream.paused)) {
      if (c->pending() >= kMaxPendingOut) {
        c->held = true;  // resumed on EPOLLOUT, whether or not more input comes
        break;
      }
      if (c->swallow != 0) {
        const std::size_t n = std::min(c->swallow, c->in.size());
        c->in.erase(0, n);
        c->swallow -= n;
        continue;
      }
      bool close = false;
      std::size_t swallow = 0;
      c->stream.out_limit = c->out_off + kMaxPendingOut;
      const std::size_t used = c->binary ? mc_.process_binary(cx_, c->in, &c->out, &close, &c->stream)
                                         : mc_.process(cx_, c->in, &c->out, &swallow, &close, &c->stream);
      c->in.erase(0, used);
      c->swallow = swallow;
      if (close) c->closing = true;
      if (c->stream.paused) {
        c->held = true;
        break;
      }
      if (used == 0 && swallow == 0) break;  // incomplete request: wait for more bytes
    }
    if (c->in.empty()) trim(&c->in);
  };

  AcceptGate gate(epoll_fd_, listen_fd_, &mc_.accept_paused);
  while (!stop_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               gate.wait_ms(100, AcceptGate::Clock::now()));
    gate.maybe_resume(AcceptGate::Clock::now());
    if (n <= 0) {
      mc_.on_idle(cx_);
      continue;
    }
    for (int i = 0; i < n; ++i) {
      void* p = events[static_cast<std::size_t>(i)].data.ptr;
      const uint32_t evs = events[static_cast<std::size_t>(i)].events;
      if (p == &wake_fd_) continue;
      if (p == nullptr) {
        for (;;) {
          sockaddr_in peer{};
          socklen_t plen = sizeof(peer);
          const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            // Out of descriptors: the listener stays readable, so leave it
            // out of epoll for a moment instead of retrying at once.
            if (AcceptGate::out_of_resources(errno)) gate.pause(errno, conns.size());
            break;
          }
          if (!mc_.allowed(peer) || conns.size() >= max_connections_) {
            mc_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
            ::close(fd);
            continue;
          }
          const int one = 1;
          (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          auto c = std::make_unique<Conn>();
          c->fd = fd;
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.ptr = c.get();
          (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
          conns.emplace(fd, std::move(c));
          mc_.curr_connections.fetch_add(1, std::memory_order_relaxed);
          mc_.total_connections.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      Conn* c = static_cast<Conn*>(p);
      bool dead = (evs & EPOLLERR) != 0;
      if (!dead && (evs & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) {
        // Read while there is room for replies; what is read is served at once.
        while (c->pending() < kMaxPendingOut && !c->held && !c->closing && !c->eof) {
          const ssize_t r = ::recv(c->fd, buf.data(), buf.size(), 0);
          if (r > 0) {
            c->in.append(buf.data(), static_cast<std::size_t>(r));
            serve(c);
            if (!flush_out(c)) {
              dead = true;
              break;
            }
            continue;
          }
          if (r == 0) {
            c->eof = true;  // peer closed: answer what it sent, send it all, then close
            break;
          }
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          dead = true;
          break;
        }
      }
      if (!dead && (evs & EPOLLOUT) != 0) {
        if (!flush_out(c)) dead = true;
        if (!dead) {
          serve(c);  // replies drained: requests held back may run now
          if (!flush_out(c)) dead = true;
        }
      }
      if (c->eof && !c->held) c->closing = true;  // every request it sent is answered
      if (dead || (c->closing && c->out_off == c->out.size())) {
        close_conn(c);
        continue;
      }
      update_events(c);
    }
  }
  for (auto& [fd, c] : conns) ::close(fd);
  mc_.curr_connections.store(0, std::memory_order_relaxed);
}

}  // namespace ferrite::server
