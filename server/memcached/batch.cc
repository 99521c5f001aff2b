// Pipelined classic text commands of one TCP read as one index burst (see
// engine.h, issue 18): process() hands each parsed request to batch_add;
// get/gets/gat/gats with few keys, the storage commands, delete, incr/decr
// and touch are gathered in cx.ops, and batch_flush executes them with one
// Worker::execute and appends their replies in request order, the same bytes
// the commands executed one at a time give. Anything else (stats, flush_all,
// verbosity, quit, meta commands, errors, a long get) flushes the batch first
// and runs alone, so it sees every write before it.
//
// Why the order holds within a burst: execute() applies a burst's ops in
// order, and an op on a key a staged write of the same burst touches first
// publishes that write (index/worker.cc, staged_has), so "set k; get k" in
// one burst reads the set. A reply depends only on its own op's result.
// Durability: a reply is appended only after execute() returned for its op;
// the transport sends it after process() returns.
//
// One difference from one-at-a-time: a set refused for lack of room deletes
// the key's old value (refuse_store) when its reply is built, after the rest
// of the burst ran, so a later get of that key in the same burst may still
// see the old value (docs/memcached.md).
//
// Thread safety: runs on the thread owning the McContext it is given.
#include "server/memcached/engine.h"
#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

namespace {

// Ops of one burst at most (a storage command's value is a view into the
// input, so this bounds the burst, not memory).
constexpr std::size_t kMaxBatchOps = 64;

bool get_family(Cmd c) { return c == Cmd::kGet || c == Cmd::kGets || c == Cmd::kGat || c == Cmd::kGats; }

}  // namespace

bool McEngine::batch_add(McContext& cx, const Request& r, std::string* out) {
  std::size_t ops = 1, keys = 0;
  switch (r.cmd) {
    case Cmd::kGet: case Cmd::kGets: case Cmd::kGat: case Cmd::kGats: {
      proto::mc::KeyIter it(r.keys);
      std::string_view k;
      while (it.next(&k)) {
        // Values gathered in one burst are all in memory at once: at most a
        // get chunk's (kGetChunkKeys), as when get_keys answers in chunks.
        if (++keys > kGetChunkKeys) return false;
      }
      if (r.cmd == Cmd::kGat || r.cmd == Cmd::kGats) ops = 2 * keys;
      else ops = keys;
      break;
    }
    case Cmd::kSet: case Cmd::kAdd: case Cmd::kReplace: case Cmd::kAppend: case Cmd::kPrepend: case Cmd::kCas:
    case Cmd::kDelete: case Cmd::kIncr: case Cmd::kDecr: case Cmd::kTouch:
      break;
    default:
      return false;
  }
  if (cx.batch.empty()) {
    cx.ops.clear();
  } else if (cx.ops.size() + ops > kMaxBatchOps || cx.batch_get_keys + keys > kGetChunkKeys) {
    batch_flush(cx, out);
    cx.ops.clear();
  }
  McContext::Batched b{r.cmd, r.noreply, cx.ops.size(), 0, r.key};
  switch (r.cmd) {
    case Cmd::kGet: case Cmd::kGets: case Cmd::kGat: case Cmd::kGats: {
      const bool touch = r.cmd == Cmd::kGat || r.cmd == Cmd::kGats;
      const uint32_t exptime = touch ? proto::mc::absolute_exptime(r.exptime, unix_now_s()) : 0;
      proto::mc::KeyIter it(r.keys);
      std::string_view k;
      while (it.next(&k)) {
        if (touch) cx.ops.push_back(index::Op::touch(k, exptime));
        cx.ops.push_back(index::Op::get(k, nullptr));  // out_value set by batch_flush
      }
      cx.batch_get_keys += keys;
      break;
    }
    case Cmd::kDelete: cx.ops.push_back(delete_op(r)); break;
    case Cmd::kIncr: case Cmd::kDecr: cx.ops.push_back(arith_op(r)); break;
    case Cmd::kTouch: cx.ops.push_back(touch_op(r)); break;
    default: cx.ops.push_back(storage_op(r)); break;
  }
  b.n = cx.ops.size() - b.first;
  cx.batch.push_back(b);
  return true;
}

void McEngine::batch_flush(McContext& cx, std::string* out) {
  if (cx.batch.empty()) return;
  if (cx.values.size() < cx.ops.size()) cx.values.resize(cx.ops.size());
  for (std::size_t i = 0; i < cx.ops.size(); ++i) {
    if (cx.ops[i].code == index::OpCode::kGet) cx.ops[i].out_value = &cx.values[i];
  }
  if (!cx.ops.empty()) cx.worker_->execute(cx.ops);
  if (cx.batch.size() > 1) {
    inc(cx.stats_.tcp_batched_requests, cx.batch.size());
    inc(cx.stats_.tcp_batches);
  }
  for (const McContext::Batched& b : cx.batch) {
    index::Op& op = cx.ops[b.first];
    if (get_family(b.cmd)) {
      reply_get(cx, b.first, b.n, b.cmd == Cmd::kGets || b.cmd == Cmd::kGats, out);
      continue;
    }
    switch (b.cmd) {
      case Cmd::kDelete: delete_reply(cx, b.noreply, op.result, out); break;
      case Cmd::kIncr: case Cmd::kDecr: arith_reply(cx, op, b.noreply, op.result, op.out_number, out); break;
      case Cmd::kTouch: touch_reply(cx, op, b.noreply, out); break;
      default: storage_reply(cx, b.cmd, b.noreply, b.key, op.result, out); break;
    }
  }
  cx.batch.clear();
  cx.batch_get_keys = 0;
  cx.ops.clear();
  release_values(cx);
}

}  // namespace ferrite::server
