// memcached's binary protocol (see engine.h): the packet loop
// (process_binary) and each opcode's execution. Spoken on TCP only, for
// binary clients and memccapable's binary tests.
//
// Thread safety: every function runs on the thread owning the McContext it
// is given.
#include "common/endian.h"
#include "server/memcached/engine.h"
#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

using proto::mc::BinOp;
using proto::mc::BinStatus;

namespace {

namespace bin {
// Big-endian fields of the packet body (extras), over common/endian.h.
uint32_t be32(std::string_view s, std::size_t o) { return load_be32(s.data() + o); }
uint64_t be64(std::string_view s, std::size_t o) { return load_be64(s.data() + o); }
void put32(std::string* o, uint32_t v) {
  char b[4];
  store_be32(b, v);
  o->append(b, sizeof b);
}
void put64(std::string* o, uint64_t v) {
  char b[8];
  store_be64(b, v);
  o->append(b, sizeof b);
}
}  // namespace bin

bool is_bin_set(BinOp op) { return op == BinOp::kSet || op == BinOp::kSetQ; }

// The parts set/add/replace (extras: flags, expiry) and append/prepend (no
// extras) must have for memcached to read them as a write.
bool bin_storage_shape(const proto::mc::BinRequest& r) {
  if (r.key.empty()) return false;
  switch (static_cast<BinOp>(r.h.opcode)) {
    case BinOp::kSet: case BinOp::kSetQ: case BinOp::kAdd: case BinOp::kAddQ:
    case BinOp::kReplace: case BinOp::kReplaceQ:
      return r.extras.size() == 8;
    case BinOp::kAppend: case BinOp::kAppendQ: case BinOp::kPrepend: case BinOp::kPrependQ:
      return r.extras.empty();
    default: return false;
  }
}

}  // namespace

// One request's reply: the response header echoes its opcode and opaque.
struct McEngine::BinReply {
  const proto::mc::BinRequest& r;
  std::string* out;
  McStats& st;
  uint64_t now;

  BinOp op() const noexcept { return static_cast<BinOp>(r.h.opcode); }
  void respond(BinStatus status, uint64_t cas, std::string_view extras, std::string_view key, std::string_view value) {
    proto::mc::BinHeader h;
    h.magic = proto::mc::kBinResponseMagic;
    h.opcode = r.h.opcode;
    h.key_len = static_cast<uint16_t>(key.size());
    h.extras_len = static_cast<uint8_t>(extras.size());
    h.status = static_cast<uint16_t>(status);
    h.body_len = static_cast<uint32_t>(extras.size() + key.size() + value.size());
    h.opaque = r.h.opaque;
    h.cas = cas;
    proto::mc::append_binary_header(h, out);
    out->append(extras);
    out->append(key);
    out->append(value);
  }
  void ok(uint64_t cas = 0) { respond(BinStatus::kOk, cas, {}, {}, {}); }
  void error(BinStatus status) {
    if (status == BinStatus::kInvalid || status == BinStatus::kNotNumeric) inc(st.client_errors);
    if (status == BinStatus::kNoMemory) inc(st.out_of_memory);
    respond(status, 0, {}, {}, proto::mc::bin_status_message(status));
  }
  // The packet's parts as the opcode wants them: extras of that size, a
  // key or none, a value allowed or not.
  bool shape(std::size_t extras, bool key, bool value) const {
    return r.extras.size() == extras && r.key.empty() != key && (value || r.value.empty());
  }
};

std::size_t McEngine::process_binary(McContext& cx, std::string_view in, std::string* out, std::size_t* swallow,
                                     bool* close, McStream* stream) {
  std::size_t done = 0;
  *swallow = 0;
  *close = false;
  maybe_delayed_flush(cx);
  proto::mc::BinRequest rq;
  while (done < in.size()) {
    if (stream != nullptr && out->size() >= stream->out_limit) break;  // one packet answers one key
    std::size_t used = 0;
    const auto st = proto::mc::parse_binary(in.substr(done), proto::mc::kMaxValueLen + 1024, &rq, &used);
    if (st == proto::mc::BinParse::kNeedMore) break;
    const bool too_large = st == proto::mc::BinParse::kTooLarge;
    const std::size_t rest = too_large ? rq.h.body_len - rq.extras.size() - rq.key.size() : 0;  // still to come
    // A storage packet too large to buffer is answered "too large" and its
    // value swallowed, as memcached does; any other cannot be framed here
    // (nor can a value beyond kMaxSwallow): the connection ends.
    if (st == proto::mc::BinParse::kBad ||
        (too_large && (!bin_storage_shape(rq) || rest > proto::mc::kMaxSwallow))) {
      inc(cx.stats_.client_errors);
      *close = true;
      done = in.size();
      break;
    }
    done += used;
    if (too_large) {
      BinReply rp{rq, out, cx.stats_, unix_now_s()};
      bin_too_large(cx, rp);
      const std::size_t here = std::min(rest, in.size() - done);
      done += here;
      *swallow = rest - here;
      if (*swallow != 0) break;
      continue;
    }
    exec_binary(cx, rq, out, close);
    if (*close) break;
  }
  inc(cx.stats_.bytes_read, done);
  return done;
}

void McEngine::exec_binary(McContext& cx, const proto::mc::BinRequest& r, std::string* out, bool* close) {
  BinReply rp{r, out, cx.stats_, unix_now_s()};
  switch (rp.op()) {
    case BinOp::kGet: case BinOp::kGetQ: case BinOp::kGetK: case BinOp::kGetKQ:
    case BinOp::kGat: case BinOp::kGatQ: case BinOp::kGatK: case BinOp::kGatKQ:
      bin_get(cx, rp);
      return;
    case BinOp::kSet: case BinOp::kSetQ: case BinOp::kAdd: case BinOp::kAddQ:
    case BinOp::kReplace: case BinOp::kReplaceQ:
      bin_store(cx, rp);
      return;
    case BinOp::kDelete: case BinOp::kDeleteQ: bin_delete(cx, rp); return;
    case BinOp::kIncrement: case BinOp::kIncrementQ: case BinOp::kDecrement: case BinOp::kDecrementQ:
      bin_arith(cx, rp);
      return;
    case BinOp::kQuit:
      rp.ok();
      *close = true;
      return;
    case BinOp::kQuitQ:
      *close = true;
      return;
    case BinOp::kFlush: case BinOp::kFlushQ: bin_flush(cx, rp); return;
    case BinOp::kNoop: rp.ok(); return;
    case BinOp::kVersion: rp.respond(BinStatus::kOk, 0, {}, {}, kMcVersion); return;
    case BinOp::kAppend: case BinOp::kAppendQ: case BinOp::kPrepend: case BinOp::kPrependQ:
      bin_concat(cx, rp);
      return;
    case BinOp::kStat: bin_stat(rp); return;
    case BinOp::kVerbosity:
      if (!rp.shape(4, false, false)) return rp.error(BinStatus::kInvalid);
      rp.ok();
      return;
    case BinOp::kTouch: bin_touch(cx, rp); return;
  }
  inc(cx.stats_.errors);  // an opcode Ferrite does not answer
  rp.respond(BinStatus::kUnknown, 0, {}, {}, proto::mc::bin_status_message(BinStatus::kUnknown));
}

void McEngine::bin_get(McContext& cx, BinReply& rp) {
  const BinOp op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  const bool touch = op == BinOp::kGat || op == BinOp::kGatQ || op == BinOp::kGatK || op == BinOp::kGatKQ;
  const bool quiet = op == BinOp::kGetQ || op == BinOp::kGetKQ || op == BinOp::kGatQ || op == BinOp::kGatKQ;
  const bool with_key = op == BinOp::kGetK || op == BinOp::kGetKQ || op == BinOp::kGatK || op == BinOp::kGatKQ;
  if (!rp.shape(touch ? 4 : 0, true, false)) return rp.error(BinStatus::kInvalid);
  const uint32_t exptime = touch ? proto::mc::absolute_exptime(bin::be32(r.extras, 0), rp.now) : 0;
  std::string& value = value_slot(cx);
  const index::Op& g = touch_get(cx, r.key, touch, exptime, &value);
  if (touch) inc(cx.stats_.cmd_touch);
  count_get(cx.stats_, g.result == Result::kOk);
  prefix_stats_.record_get(r.key, g.result == Result::kOk);  // stats detail
  const std::string_view key = with_key ? r.key : std::string_view{};
  if (g.result != Result::kOk) {
    if (!quiet) rp.respond(BinStatus::kNotFound, 0, {}, key, proto::mc::bin_status_message(BinStatus::kNotFound));
    return;
  }
  std::string extras;
  bin::put32(&extras, g.out_flags);
  rp.respond(BinStatus::kOk, g.out_version, extras, key, value);
}

void McEngine::bin_store(McContext& cx, BinReply& rp) {
  const BinOp op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  const bool quiet = op == BinOp::kSetQ || op == BinOp::kAddQ || op == BinOp::kReplaceQ;
  const bool set = is_bin_set(op);
  const bool add = op == BinOp::kAdd || op == BinOp::kAddQ;
  if (!rp.shape(8, true, true)) return rp.error(BinStatus::kInvalid);
  if (r.value.size() > proto::mc::kMaxValueLen) return bin_too_large(cx, rp);
  index::Op w;
  w.code = set ? index::OpCode::kSet : add ? index::OpCode::kAdd : index::OpCode::kReplace;
  if (r.h.cas != 0 && !add) w.code = index::OpCode::kCas;
  w.key = r.key;
  w.value = r.value;
  w.flags = bin::be32(r.extras, 0);
  w.exptime = proto::mc::absolute_exptime(bin::be32(r.extras, 4), rp.now);
  w.cas = r.h.cas;
  prefix_stats_.record_set(r.key);  // stats detail
  const Result res = cx.worker_->execute_one(w);
  inc(cx.stats_.cmd_set);
  count_stored(cx.stats_, res);
  switch (res) {
    case Result::kOk: if (!quiet) rp.ok(w.out_version); return;
    case Result::kExists: case Result::kCasMismatch: return rp.error(BinStatus::kExists);
    case Result::kNotStored: case Result::kNotFound: return rp.error(BinStatus::kNotFound);
    case Result::kTooLarge: return bin_too_large(cx, rp);
    default:
      if (is_oom(res)) refuse_store(cx, r.key, false, set);  // memcached unlinks on a failed set
      return rp.error(BinStatus::kNoMemory);
  }
}

void McEngine::bin_too_large(McContext& cx, BinReply& rp) {
  refuse_store(cx, rp.r.key, true, is_bin_set(rp.op()));
  rp.error(BinStatus::kTooBig);  // quiet opcodes too: memcached answers their errors
}

void McEngine::bin_delete(McContext& cx, BinReply& rp) {
  if (!rp.shape(0, true, false)) return rp.error(BinStatus::kInvalid);
  index::Op d = index::Op::del(rp.r.key);
  d.cas = rp.r.h.cas;  // 0: unconditional; else compared atomically by the index
  prefix_stats_.record_delete(rp.r.key);  // stats detail
  const Result res = cx.worker_->execute_one(d);
  // memcached 1.6.18 answers "exists" to a delete with a CAS on an absent key too.
  if (res == Result::kCasMismatch || (res == Result::kNotFound && d.cas != 0)) return rp.error(BinStatus::kExists);
  count_delete(cx.stats_, res);
  if (res != Result::kOk) return rp.error(BinStatus::kNotFound);
  if (rp.op() == BinOp::kDelete) rp.ok();
}

void McEngine::bin_arith(McContext& cx, BinReply& rp) {
  const BinOp op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  if (!rp.shape(20, true, false)) return rp.error(BinStatus::kInvalid);
  const bool incr = op == BinOp::kIncrement || op == BinOp::kIncrementQ;
  const bool quiet = op == BinOp::kIncrementQ || op == BinOp::kDecrementQ;
  index::Op a;
  a.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
  a.key = r.key;
  a.delta = bin::be64(r.extras, 0);
  a.cas = r.h.cas;  // compared atomically (index.h, Op::cas); absent: created, as memcached
  // Extras: delta, initial value, expiry (all ones: an absent key is not created).
  const uint64_t initial = bin::be64(r.extras, 8);
  const uint32_t exp = bin::be32(r.extras, 16);
  constexpr uint32_t kNoCreate = 0xffffffffu;
  uint64_t number = 0, version = 0;
  const Result res = arith_or_create(cx, a, exp != kNoCreate, initial, proto::mc::absolute_exptime(exp, rp.now),
                                     &number, &version);
  if (res == Result::kCasMismatch) return rp.error(BinStatus::kExists);
  count_arith(cx.stats_, incr, res);
  if (res == Result::kNotFound) return rp.error(BinStatus::kNotFound);
  if (res == Result::kNotNumeric) return rp.error(BinStatus::kNotNumeric);
  if (res != Result::kOk) return rp.error(BinStatus::kNoMemory);
  if (quiet) return;
  std::string v;
  bin::put64(&v, number);
  rp.respond(BinStatus::kOk, version, {}, {}, v);
}

void McEngine::bin_flush(McContext& cx, BinReply& rp) {
  const proto::mc::BinRequest& r = rp.r;
  if (!r.key.empty() || !r.value.empty() || (r.extras.size() != 0 && r.extras.size() != 4)) {
    return rp.error(BinStatus::kInvalid);
  }
  flush_all(cx, r.extras.size() == 4 ? bin::be32(r.extras, 0) : 0, rp.now);
  if (rp.op() == BinOp::kFlush) rp.ok();
}

void McEngine::bin_concat(McContext& cx, BinReply& rp) {
  const BinOp op = rp.op();
  if (!rp.shape(0, true, true)) return rp.error(BinStatus::kInvalid);
  index::Op w;
  w.code = (op == BinOp::kAppend || op == BinOp::kAppendQ) ? index::OpCode::kAppend : index::OpCode::kPrepend;
  w.key = rp.r.key;
  w.value = rp.r.value;
  w.cas = rp.r.h.cas;  // compared atomically (index.h, Op::cas)
  prefix_stats_.record_set(w.key);  // stats detail
  const Result res = cx.worker_->execute_one(w);
  inc(cx.stats_.cmd_set);
  count_stored(cx.stats_, res);
  if (res == Result::kCasMismatch) return rp.error(BinStatus::kExists);
  if (res == Result::kNotStored || res == Result::kNotFound) return rp.error(BinStatus::kNotStored);
  // Too large: the data itself (too big, as memcached), or the joined value
  // would pass the limit (memcached 1.6.18: "Not stored.").
  if (res == Result::kTooLarge) {
    if (w.value.size() > proto::mc::kMaxValueLen) return bin_too_large(cx, rp);
    return rp.error(BinStatus::kNotStored);
  }
  if (res != Result::kOk) {
    if (is_oom(res)) refuse_store(cx, rp.r.key, false, false);
    return rp.error(BinStatus::kNoMemory);
  }
  if (op == BinOp::kAppend || op == BinOp::kPrepend) rp.ok(w.out_version);
}

// stat: one packet per counter, then an empty one.
void McEngine::bin_stat(BinReply& rp) {
  const std::string_view key = rp.r.key;
  auto respond = [&](std::string_view name, std::string_view value) { rp.respond(BinStatus::kOk, 0, {}, name, value); };
  if (key == "reset") {
    reset_stats();
  } else if (key.empty()) {
    each_stat(respond);
  } else if (each_class_stat(key, respond)) {
    // items, slabs, sizes: sent
  } else if (key.starts_with("detail")) {
    // memcached 1.6.18: "detail dump" is one packet "detailed" holding the
    // text dump; "detail on" / "detail off" only the end packet.
    const std::string_view arg = key.substr(6);
    if (arg == " dump") {
      respond("detailed", prefix_stats_.dump());
    } else if (arg == " on" || arg == " off") {
      prefix_stats_.set_enabled(arg == " on");
    } else {
      return rp.error(BinStatus::kNotFound);
    }
  } else if (key != "settings" && key != "conns") {
    return rp.error(BinStatus::kNotFound);
  }
  rp.ok();
}

void McEngine::bin_touch(McContext& cx, BinReply& rp) {
  if (!rp.shape(4, true, false)) return rp.error(BinStatus::kInvalid);
  index::Op t = index::Op::touch(rp.r.key, proto::mc::absolute_exptime(bin::be32(rp.r.extras, 0), rp.now));
  const Result res = cx.worker_->execute_one(t);
  count_touch(cx.stats_, res);
  if (res != Result::kOk) return rp.error(res == Result::kNotFound ? BinStatus::kNotFound : BinStatus::kNoMemory);
  rp.ok(t.out_version);
}

}  // namespace ferrite::server
