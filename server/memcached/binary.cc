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

}  // namespace ferrite::server
