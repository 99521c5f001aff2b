// McEngine's core (see engine.h): construction and contexts, the text
// protocol's parse loop and dispatch (process, execute), flush_all (now or
// delayed) and idle housekeeping. The commands themselves are in classic.cc,
// meta.cc, binary.cc and stats.cc.
//
// Thread safety: every function runs on the thread owning the McContext it
// is given; shared state is the index (thread safe), the win tokens (their
// own locks) and flush_at_ (relaxed atomic).
#include "server/memcached/engine.h"

#include <arpa/inet.h>

#include <optional>

#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

McEngine::McEngine(index::Index& idx, McOptions opts) : idx_(idx), opts_(std::move(opts)), start_unix_(unix_now_s()) {
  if (opts_.udp_max_payload == 0 || opts_.udp_max_payload > proto::mc::kUdpMaxPayload) {
    opts_.udp_max_payload = proto::mc::kUdpMaxPayload;
  }
  if (opts_.udp_max_reply == 0) opts_.udp_max_reply = proto::mc::kUdpMaxReply;
  register_stats();  // stats.cc
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

stats::Workers<McStats> McEngine::stat_workers() const {
  return {[this] { return contexts_.size(); }, [this](std::size_t i) -> const McStats& { return contexts_[i]->stats_; }};
}

uint64_t McEngine::sum(std::atomic<uint64_t> McStats::*f) const { return stat_workers().sum(f); }

std::size_t McEngine::process(McContext& cx, std::string_view in, std::string* out, std::size_t* swallow,
                              bool* close, McStream* stream) {
  std::size_t done = 0;
  *swallow = 0;
  *close = false;
  maybe_delayed_flush(cx);
  McStream unbounded;  // no stream: no bound, and nothing kept between calls
  unbounded.resumable = false;
  McStream& s = stream != nullptr ? *stream : unbounded;
  cx.stream = &s;
  if (s.paused) {
    // The rest of a get paused at the bound comes before anything behind it.
    const std::string keys = std::move(s.keys);
    s.paused = false;
    get_keys(cx, s.cmd, s.exptime, keys, s.end, out);
    if (s.paused) {
      cx.stream = nullptr;
      return 0;
    }
  }
  while (done < in.size()) {
    if (out->size() >= s.out_limit) {
      // Bound reached: no further request is parsed now (TCP resumes once
      // the output drained; UDP cannot, so the datagram is refused).
      if (!s.resumable) s.too_large = true;
      break;
    }
    if (s.long_get) {
      const std::size_t used = long_get(cx, in.substr(done), out);
      done += used;
      if (used == 0 || s.paused || s.too_large) break;
      continue;
    }
    const proto::mc::ParseResult pr = proto::mc::parse_request(in.substr(done), &cx.req);
    if (pr.status == Parse::kNeedMore) break;
    // On a resumable stream (TCP) pipelined classic commands share an index
    // burst (batch.cc); anything else runs after the batch gathered so far.
    if (pr.status == Parse::kOk && s.resumable && batch_add(cx, cx.req, out)) {
      done += pr.consumed;
      continue;
    }
    batch_flush(cx, out);
    if (pr.status == Parse::kLongGet) {
      // Kept across calls on a resumable stream only; otherwise answered
      // only once its whole line is in the input.
      const std::string_view rest = in.substr(done + pr.consumed);
      if (!s.resumable && rest.find('\n') == std::string_view::npos) break;
      start_long_get(cx, pr.error, out);
      done += pr.consumed;
      continue;
    }
    done += pr.consumed;
    if (pr.status == Parse::kError) {
      if (pr.http) {  // not memcached's protocol: no reply at all
        inc(cx.stats_.http_refused);
        *close = true;
        break;
      }
      if (!pr.error.empty()) inc(pr.error.starts_with("CLIENT_ERROR") ? cx.stats_.client_errors : cx.stats_.errors);
      if (pr.too_large) refuse_store(cx, cx.req.key, true, cx.req.cmd == Cmd::kSet || cx.req.cmd == Cmd::kMetaSet);
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
    if (s.paused || s.too_large) break;
  }
  batch_flush(cx, out);
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
  if (at == 0 || unix_now_s() < at) return;
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

bool McEngine::current_version(McContext& cx, std::string_view key, uint64_t* version) {
  index::Op g = index::Op::get(key, nullptr);
  if (cx.worker_->execute_one(g) != Result::kOk) return false;
  *version = g.out_version;
  return true;
}

void McEngine::execute(McContext& cx, const Request& r, std::string* out, bool* close) {
  switch (r.cmd) {
    case Cmd::kGet: case Cmd::kGets: case Cmd::kGat: case Cmd::kGats:
      exec_get(cx, r, out);
      return;
    case Cmd::kSet: case Cmd::kAdd: case Cmd::kReplace: case Cmd::kAppend: case Cmd::kPrepend: case Cmd::kCas:
      exec_storage(cx, r, out);
      return;
    case Cmd::kDelete: exec_delete(cx, r, out); return;
    case Cmd::kIncr: case Cmd::kDecr: exec_arith(cx, r, out); return;
    case Cmd::kTouch: exec_touch(cx, r, out); return;
    case Cmd::kFlushAll:
      flush_all(cx, r.number, unix_now_s());
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

void McEngine::flush_all(McContext& cx, int64_t delay, uint64_t now) {
  inc(cx.stats_.cmd_flush);
  if (delay > 0) {
    flush_at_.store(proto::mc::absolute_exptime(delay, now), std::memory_order_relaxed);
  } else {
    flush_at_.store(0, std::memory_order_relaxed);
    flush(cx);
  }
}

std::string& McEngine::value_slot(McContext& cx) {
  if (cx.values.empty()) cx.values.resize(1);
  return cx.values[0];
}

index::Op& McEngine::touch_get(McContext& cx, std::string_view key, bool touch, uint32_t exptime,
                               std::string* value) {
  cx.ops.clear();
  if (touch) cx.ops.push_back(index::Op::touch(key, exptime));
  cx.ops.push_back(index::Op::get(key, value));
  cx.worker_->execute(cx.ops);
  return cx.ops.back();
}

}  // namespace ferrite::server
