// memcached's classic text commands that touch items (see engine.h):
// get/gets/gat/gats answered a chunk of keys at a time within the output
// bound (stream.h), long get lines answered piece by piece as they arrive
// (proto::mc::GetLine), the staging of classic gets of several UDP datagrams
// into one index burst (stage_gets / finish_gets), and the storage commands.
//
// Thread safety: every function runs on the thread owning the McContext it
// is given.
#include "server/memcached/engine.h"
#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

namespace {

// Keys of classic gets staged from one burst of datagrams (stage_gets): their
// values are copied out of the index together, so at most this many.
constexpr std::size_t kMaxStagedKeys = 32;

}  // namespace

void McEngine::exec_get(McContext& cx, const Request& r, std::string* out) {
  const bool touch = r.cmd == Cmd::kGat || r.cmd == Cmd::kGats;
  const uint32_t exptime = touch ? proto::mc::absolute_exptime(r.exptime, unix_now_s()) : 0;
  get_keys(cx, r.cmd, exptime, r.keys, true, out);
}

void McEngine::start_long_get(McContext& cx, std::string_view error, std::string* out) {
  McStream& s = *cx.stream;
  const bool touch = cx.req.cmd == Cmd::kGat || cx.req.cmd == Cmd::kGats;
  s.long_get = true;
  s.line = proto::mc::GetLine{cx.req.cmd, cx.req.exptime, false, !error.empty()};
  s.exptime = touch ? proto::mc::absolute_exptime(cx.req.exptime, unix_now_s()) : 0;
  if (!error.empty()) {  // gat's exptime: answered at once, the rest of the line discarded
    inc(cx.stats_.client_errors);
    crlf(out, error);
  }
}

std::size_t McEngine::long_get(McContext& cx, std::string_view in, std::string* out) {
  McStream& s = *cx.stream;
  std::size_t done = 0;
  while (s.long_get) {
    if (out->size() >= s.out_limit) {
      if (!s.resumable) s.too_large = true;
      break;  // resumed by the next process() call
    }
    const proto::mc::GetPart p = proto::mc::parse_get_part(in.substr(done), &s.line);
    done += p.consumed;
    if (p.end) s.long_get = false;
    if (!p.error.empty()) {
      inc(p.error.starts_with("CLIENT_ERROR") ? cx.stats_.client_errors : cx.stats_.errors);
      crlf(out, p.error);
    } else if (!s.line.failed) {  // else the rest of a refused line: nothing to answer
      get_keys(cx, s.line.cmd, s.exptime, p.keys, p.end, out);
      if (s.paused || s.too_large) break;
    }
    if (p.consumed == 0) break;  // the partial key waits for more bytes
  }
  return done;
}

void McEngine::get_keys(McContext& cx, Cmd cmd, uint32_t exptime, std::string_view keys, bool end,
                        std::string* out) {
  // kGetChunkKeys keys per index burst, the bound checked between bursts
  // (stream.h): the values in memory at once and the output past the
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
      s->end = end;
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
  if (end) out->append("END\r\n");
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
      count_touch(cx.stats_, op.result);
      continue;
    }
    count_get(cx.stats_, op.result == Result::kOk);
    prefix_stats_.record_get(op.key, op.result == Result::kOk);  // stats detail
    if (op.result != Result::kOk) continue;
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
  index::Op op = storage_op(r);
  const Result res = cx.worker_->execute_one(op);
  storage_reply(cx, r.cmd, r.noreply, r.key, res, out);
}

index::Op McEngine::storage_op(const Request& r) {
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
  op.exptime = proto::mc::absolute_exptime(r.exptime, unix_now_s());
  op.cas = r.cas;
  prefix_stats_.record_set(r.key);  // stats detail
  return op;
}

void McEngine::storage_reply(McContext& cx, Cmd cmd, bool noreply, std::string_view key, Result res,
                             std::string* out) {
  inc(cx.stats_.cmd_set);
  count_stored(cx.stats_, res);
  std::string_view reply;
  switch (res) {
    case Result::kOk: reply = "STORED"; break;
    case Result::kExists: case Result::kNotStored: reply = "NOT_STORED"; break;
    case Result::kNotFound: reply = "NOT_FOUND"; break;
    case Result::kCasMismatch: reply = "EXISTS"; break;
    // The parser refused data past the value limit, so this is an append or
    // prepend whose result would pass it: memcached 1.6.18 answers
    // NOT_STORED (its allocation of the joined item fails), not out of memory.
    case Result::kTooLarge: reply = "NOT_STORED"; break;
    default:
      inc(cx.stats_.out_of_memory);
      if (is_oom(res)) refuse_store(cx, key, false, cmd == Cmd::kSet);
      if (!noreply) crlf(out, oom_text(res));  // noreply: memcached sends no error either
      return;
  }
  if (cmd == Cmd::kCas) count_cas(cx.stats_, res);
  if (!noreply) crlf(out, reply);
}

void McEngine::refuse_store(McContext& cx, std::string_view key, bool too_large, bool unlink) {
  inc(too_large ? cx.stats_.store_too_large : cx.stats_.store_no_memory);
  if (!unlink) return;
  // The delete writes a tombstone: out of memory, it may find no room
  // either, and then the old value stays (docs/memcached.md).
  index::Op d = index::Op::del(key);
  (void)cx.worker_->execute_one(d);
}


void McEngine::exec_delete(McContext& cx, const Request& r, std::string* out) {
  index::Op op = delete_op(r);
  delete_reply(cx, r.noreply, cx.worker_->execute_one(op), out);
}

index::Op McEngine::delete_op(const Request& r) {
  prefix_stats_.record_delete(r.key);  // stats detail
  return index::Op::del(r.key);
}

void McEngine::delete_reply(McContext& cx, bool noreply, Result res, std::string* out) {
  count_delete(cx.stats_, res);
  if (!noreply) crlf(out, res == Result::kOk ? "DELETED" : "NOT_FOUND");
}

void McEngine::exec_arith(McContext& cx, const Request& r, std::string* out) {
  index::Op op = arith_op(r);
  uint64_t number = 0, version = 0;
  const Result res = arith_or_create(cx, op, false, 0, 0, &number, &version);
  arith_reply(cx, op, r.noreply, res, number, out);
}

index::Op McEngine::arith_op(const Request& r) {
  index::Op op;
  op.code = r.cmd == Cmd::kIncr ? index::OpCode::kIncr : index::OpCode::kDecr;
  op.key = r.key;
  op.delta = r.delta;
  return op;
}

void McEngine::arith_reply(McContext& cx, const index::Op& op, bool noreply, Result res, uint64_t number,
                           std::string* out) {
  const bool incr = op.code == index::OpCode::kIncr;
  carry_token(op);
  count_arith(cx.stats_, incr, res);
  if (res == Result::kNotNumeric) inc(cx.stats_.client_errors);
  if (is_oom(res)) inc(cx.stats_.out_of_memory);
  if (noreply) return;  // memcached sends no error either
  if (res == Result::kNotNumeric) {
    crlf(out, kNonNumeric);
    return;
  }
  if (is_oom(res)) {
    crlf(out, oom_text(res));
    return;
  }
  if (res == Result::kOk) {
    append_num(out, number);
    out->append("\r\n");
  } else {
    crlf(out, "NOT_FOUND");
  }
}

Result McEngine::arith_or_create(McContext& cx, index::Op& op, bool create, uint64_t initial, uint32_t exptime,
                                 uint64_t* number, uint64_t* version) {
  Result res = cx.worker_->execute_one(op);
  *number = op.out_number;
  *version = op.out_version;
  if (res != Result::kNotFound || !create) return res;
  cx.num.clear();
  append_num(&cx.num, initial);
  index::Op add;
  add.code = index::OpCode::kAdd;
  add.key = op.key;
  add.value = cx.num;
  add.exptime = exptime;
  res = cx.worker_->execute_one(add);
  count_stored(cx.stats_, res);  // created (an existing item's incr below is in place: not counted)
  *number = initial;
  *version = add.out_version;
  if (res == Result::kExists) {  // created meanwhile by another client: apply the delta
    res = cx.worker_->execute_one(op);
    *number = op.out_number;
    *version = op.out_version;
  }
  return res;
}

void McEngine::exec_touch(McContext& cx, const Request& r, std::string* out) {
  index::Op op = touch_op(r);
  (void)cx.worker_->execute_one(op);
  touch_reply(cx, op, r.noreply, out);
}

index::Op McEngine::touch_op(const Request& r) {
  return index::Op::touch(r.key, proto::mc::absolute_exptime(r.exptime, unix_now_s()));
}

void McEngine::touch_reply(McContext& cx, const index::Op& op, bool noreply, std::string* out) {
  const Result res = op.result;
  carry_token(op);
  count_touch(cx.stats_, res);
  if (noreply) return;
  if (is_oom(res)) {
    crlf(out, oom_text(res));
    return;
  }
  crlf(out, res == Result::kOk ? "TOUCHED" : "NOT_FOUND");
}

}  // namespace ferrite::server
