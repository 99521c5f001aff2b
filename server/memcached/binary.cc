// memcached's binary protocol (see engine.h): the packet loop
// (process_binary) and each opcode's execution. Spoken on TCP only, for
// binary clients and memccapable's binary tests.
//
// Thread safety: every function runs on the thread owning the McContext it
// is given.
#include "server/memcached/engine.h"
#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

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

// One request's reply: the response header echoes its opcode and opaque.
struct McEngine::BinReply {
  const proto::mc::BinRequest& r;
  std::string* out;
  McStats& st;
  uint64_t now;

  uint8_t op() const noexcept { return r.h.opcode; }
  void respond(uint16_t status, uint64_t cas, std::string_view extras, std::string_view key, std::string_view value) {
    proto::mc::BinHeader h;
    h.magic = proto::mc::kBinResponseMagic;
    h.opcode = r.h.opcode;
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
  }
  void ok(uint64_t cas = 0) { respond(bin::kOk, cas, {}, {}, {}); }
  void error(uint16_t status) {
    if (status == bin::kInvalid || status == bin::kNotNumeric) inc(st.client_errors);
    if (status == bin::kNoMemory) inc(st.out_of_memory);
    respond(status, 0, {}, {}, bin::message(status));
  }
  // The packet's parts as the opcode wants them: extras of that size, a
  // key or none, a value allowed or not.
  bool shape(std::size_t extras, bool key, bool value) const {
    return r.extras.size() == extras && r.key.empty() != key && (value || r.value.empty());
  }
};

void McEngine::exec_binary(McContext& cx, const proto::mc::BinRequest& r, std::string* out, bool* close) {
  BinReply rp{r, out, cx.stats_, unix_now()};
  switch (r.h.opcode) {
    case 0x00: case 0x09: case 0x0c: case 0x0d:     // get, getq, getk, getkq
    case 0x1d: case 0x1e: case 0x23: case 0x24:     // gat, gatq, gatk, gatkq
      bin_get(cx, rp);
      return;
    case 0x01: case 0x11: case 0x02: case 0x12: case 0x03: case 0x13:  // set, add, replace (+q)
      bin_store(cx, rp);
      return;
    case 0x04: case 0x14: bin_delete(cx, rp); return;                        // delete (+q)
    case 0x05: case 0x15: case 0x06: case 0x16: bin_arith(cx, rp); return;  // incr, decr (+q)
    case 0x07:  // quit
      rp.ok();
      *close = true;
      return;
    case 0x17:  // quitq
      *close = true;
      return;
    case 0x08: case 0x18: bin_flush(cx, rp); return;                          // flush (+q)
    case 0x0a: rp.ok(); return;                                               // noop
    case 0x0b: rp.respond(bin::kOk, 0, {}, {}, kMcVersion); return;          // version
    case 0x0e: case 0x19: case 0x0f: case 0x1a: bin_concat(cx, rp); return;  // append, prepend (+q)
    case 0x10: bin_stat(rp); return;                                          // stat
    case 0x1b:  // verbosity
      if (!rp.shape(4, false, false)) return rp.error(bin::kInvalid);
      rp.ok();
      return;
    case 0x1c: bin_touch(cx, rp); return;  // touch
    default:
      inc(cx.stats_.errors);
      rp.respond(bin::kUnknown, 0, {}, {}, bin::message(bin::kUnknown));
      return;
  }
}

void McEngine::bin_get(McContext& cx, BinReply& rp) {
  const uint8_t op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  const bool touch = op == 0x1d || op == 0x1e || op == 0x23 || op == 0x24;
  const bool quiet = op == 0x09 || op == 0x0d || op == 0x1e || op == 0x24;
  const bool with_key = op == 0x0c || op == 0x0d || op == 0x23 || op == 0x24;
  if (!rp.shape(touch ? 4 : 0, true, false)) return rp.error(bin::kInvalid);
  const uint32_t exptime = touch ? proto::mc::absolute_exptime(bin::be32(r.extras, 0), rp.now) : 0;
  std::string& value = value_slot(cx);
  const index::Op& g = touch_get(cx, r.key, touch, exptime, &value);
  if (touch) inc(cx.stats_.cmd_touch);
  count_get(cx.stats_, g.result == Result::kOk);
  const std::string_view key = with_key ? r.key : std::string_view{};
  if (g.result != Result::kOk) {
    if (!quiet) rp.respond(bin::kNotFound, 0, {}, key, bin::message(bin::kNotFound));
    return;
  }
  std::string extras;
  bin::put32(&extras, g.out_flags);
  rp.respond(bin::kOk, g.out_version, extras, key, value);
}

void McEngine::bin_store(McContext& cx, BinReply& rp) {
  const uint8_t op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  const bool quiet = op >= 0x11;
  if (!rp.shape(8, true, true)) return rp.error(bin::kInvalid);
  if (r.value.size() > proto::mc::kMaxValueLen) return rp.error(bin::kTooBig);
  index::Op w;
  const uint8_t base = quiet ? static_cast<uint8_t>(op - 0x10) : op;
  w.code = base == 0x01 ? index::OpCode::kSet : base == 0x02 ? index::OpCode::kAdd : index::OpCode::kReplace;
  if (r.h.cas != 0 && base != 0x02) w.code = index::OpCode::kCas;
  w.key = r.key;
  w.value = r.value;
  w.flags = bin::be32(r.extras, 0);
  w.exptime = proto::mc::absolute_exptime(bin::be32(r.extras, 4), rp.now);
  w.cas = r.h.cas;
  const Result res = cx.worker_->execute_one(w);
  inc(cx.stats_.cmd_set);
  switch (res) {
    case Result::kOk: if (!quiet) rp.ok(w.out_version); return;
    case Result::kExists: case Result::kCasMismatch: return rp.error(bin::kExists);
    case Result::kNotStored: case Result::kNotFound: return rp.error(bin::kNotFound);
    case Result::kTooLarge: return rp.error(bin::kTooBig);
    default: return rp.error(bin::kNoMemory);
  }
}

void McEngine::bin_delete(McContext& cx, BinReply& rp) {
  if (!rp.shape(0, true, false)) return rp.error(bin::kInvalid);
  index::Op d = index::Op::del(rp.r.key);
  d.cas = rp.r.h.cas;  // 0: unconditional; else compared atomically by the index
  const Result res = cx.worker_->execute_one(d);
  // memcached 1.6.18 answers "exists" to a delete with a CAS on an absent key too.
  if (res == Result::kCasMismatch || (res == Result::kNotFound && d.cas != 0)) return rp.error(bin::kExists);
  count_delete(cx.stats_, res);
  if (res != Result::kOk) return rp.error(bin::kNotFound);
  if (rp.op() == 0x04) rp.ok();
}

void McEngine::bin_arith(McContext& cx, BinReply& rp) {
  const uint8_t op = rp.op();
  const proto::mc::BinRequest& r = rp.r;
  if (!rp.shape(20, true, false)) return rp.error(bin::kInvalid);
  const bool incr = op == 0x05 || op == 0x15;
  const bool quiet = op >= 0x15;
  index::Op a;
  a.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
  a.key = r.key;
  a.delta = bin::be64(r.extras, 0);
  a.cas = r.h.cas;  // compared atomically (index.h, Op::cas); absent: created, as memcached
  // Extras: delta, initial value, expiry (all ones: an absent key is not created).
  const uint64_t initial = bin::be64(r.extras, 8);
  const uint32_t exp = bin::be32(r.extras, 16);
  uint64_t number = 0, version = 0;
  const Result res = arith_or_create(cx, a, exp != 0xffffffffu, initial, proto::mc::absolute_exptime(exp, rp.now),
                                     &number, &version);
  if (res == Result::kCasMismatch) return rp.error(bin::kExists);
  count_arith(cx.stats_, incr, res);
  if (res == Result::kNotFound) return rp.error(bin::kNotFound);
  if (res == Result::kNotNumeric) return rp.error(bin::kNotNumeric);
  if (res != Result::kOk) return rp.error(bin::kNoMemory);
  if (quiet) return;
  std::string v;
  bin::put64(&v, number);
  rp.respond(bin::kOk, version, {}, {}, v);
}

void McEngine::bin_flush(McContext& cx, BinReply& rp) {
  const proto::mc::BinRequest& r = rp.r;
  if (!r.key.empty() || !r.value.empty() || (r.extras.size() != 0 && r.extras.size() != 4)) {
    return rp.error(bin::kInvalid);
  }
  flush_all(cx, r.extras.size() == 4 ? bin::be32(r.extras, 0) : 0, rp.now);
  if (rp.op() == 0x08) rp.ok();
}

void McEngine::bin_concat(McContext& cx, BinReply& rp) {
  const uint8_t op = rp.op();
  if (!rp.shape(0, true, true)) return rp.error(bin::kInvalid);
  index::Op w;
  w.code = (op == 0x0e || op == 0x19) ? index::OpCode::kAppend : index::OpCode::kPrepend;
  w.key = rp.r.key;
  w.value = rp.r.value;
  w.cas = rp.r.h.cas;  // compared atomically (index.h, Op::cas)
  const Result res = cx.worker_->execute_one(w);
  inc(cx.stats_.cmd_set);
  if (res == Result::kCasMismatch) return rp.error(bin::kExists);
  if (res == Result::kNotStored || res == Result::kNotFound) return rp.error(bin::kNotStored);
  if (res == Result::kTooLarge) return rp.error(bin::kTooBig);
  if (res != Result::kOk) return rp.error(bin::kNoMemory);
  if (op == 0x0e || op == 0x0f) rp.ok(w.out_version);
}

// stat: one packet per counter, then an empty one.
void McEngine::bin_stat(BinReply& rp) {
  const std::string_view key = rp.r.key;
  if (key == "reset") {
    reset_stats();
  } else if (key.empty()) {
    each_stat([&](std::string_view name, std::string_view value) { rp.respond(bin::kOk, 0, {}, name, value); });
  } else if (key != "settings" && key != "items" && key != "slabs" && key != "sizes" && key != "conns") {
    return rp.error(bin::kNotFound);
  }
  rp.ok();
}

void McEngine::bin_touch(McContext& cx, BinReply& rp) {
  if (!rp.shape(4, true, false)) return rp.error(bin::kInvalid);
  index::Op t = index::Op::touch(rp.r.key, proto::mc::absolute_exptime(bin::be32(rp.r.extras, 0), rp.now));
  const Result res = cx.worker_->execute_one(t);
  count_touch(cx.stats_, res);
  if (res != Result::kOk) return rp.error(res == Result::kNotFound ? bin::kNotFound : bin::kNoMemory);
  rp.ok(t.out_version);
}

}  // namespace ferrite::server
