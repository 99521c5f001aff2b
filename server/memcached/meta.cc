// memcached's meta commands (see engine.h): mg, ms, md, ma and me (mn is
// answered by the dispatch in engine.cc). Win tokens (W/Z/X) follow
// memcached 1.6.18 (win_tokens.h).
//
// Thread safety: every function runs on the thread owning the McContext it
// is given; the win tokens have their own locks.
#include "server/memcached/engine.h"
#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

namespace {

// The echo flags every meta reply carries when asked: k (key), O (opaque),
// b (the key is base64, when k is returned). Appends f if it is one of
// them; false if it is not.
bool echo_flag(const Request& r, const proto::mc::MetaFlag& f, std::string* out) {
  if (f.flag == 'k') {
    out->append(" k");
    out->append(r.raw_key);
    if (r.base64) out->append(" b");
    return true;
  }
  if (f.flag == 'O') {
    out->append(" O");
    out->append(f.token);
    return true;
  }
  return false;
}

void meta_echo(const Request& r, std::string* out) {
  for (uint8_t i = 0; i < r.nflags; ++i) (void)echo_flag(r, r.flags[i], out);
}

// A reply of one status code and the echo flags ("EN", "NF k... O...").
void meta_status(std::string_view code, const Request& r, std::string* out) {
  out->append(code);
  meta_echo(r, out);
  out->append("\r\n");
}

// The first word of an mg/ma reply: "VA <size>" with the value, else "HD".
void value_head(bool with_value, std::size_t size, std::string* out) {
  if (with_value) {
    out->append("VA ");
    append_num(out, size);
  } else {
    out->append("HD");
  }
}

// The end of the flags line, then the value if it is sent.
void value_tail(bool with_value, std::string_view value, std::string* out) {
  out->append("\r\n");
  if (with_value) {
    out->append(value);
    out->append("\r\n");
  }
}

// mg's reply to a hit: flags in the order asked, then Z, X, W.
void meta_get_reply(const Request& r, const index::Op& g, std::string_view value, uint64_t now, bool win,
                    bool token_sent, std::string* out) {
  const bool with_value = r.has('v');
  value_head(with_value, value.size(), out);
  for (uint8_t i = 0; i < r.nflags; ++i) {
    const proto::mc::MetaFlag& f = r.flags[i];
    switch (f.flag) {
      case 'c': out->append(" c"); append_num(out, g.out_version); break;
      case 'f': out->append(" f"); append_num(out, g.out_flags); break;
      case 's': out->append(" s"); append_num(out, value.size()); break;
      case 't': out->append(" t"); append_signed(out, ttl_of(g.out_exptime, now)); break;
      default: (void)echo_flag(r, f, out); break;
    }
  }
  if (token_sent) out->append(" Z");
  if (g.out_stale) out->append(" X");
  if (win) out->append(" W");
  value_tail(with_value, value, out);
}

}  // namespace

void McEngine::exec_meta_get(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  const uint64_t now = unix_now_s();
  std::string& value = value_slot(cx);
  const uint32_t exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, now) : 0;
  index::Op& g = touch_get(cx, r.key, r.has_exptime, exptime, &value);
  if (r.has_exptime) {
    inc(cx.stats_.cmd_touch);
    carry_token(cx.ops.front());
  }
  bool created = false;
  bool vivified = false;  // win and token_sent decided by meta_vivify
  bool win = false;
  bool token_sent = false;
  if (g.result != Result::kOk && r.has_vivify) {
    vivified = true;
    const Result res = meta_vivify(cx, r, g, now, &created, &win);
    token_sent = !win;
    if (is_oom(res)) {
      count_get(cx.stats_, false);
      inc(cx.stats_.out_of_memory);
      crlf(out, oom_text(res));
      return;
    }
  }
  count_get(cx.stats_, g.result == Result::kOk && !created);
  if (g.result != Result::kOk) {
    if (!r.has('q')) meta_status("EN", r, out);
    return;
  }
  // Win token (W), token already sent (Z), stale (X), decided as memcached
  // 1.6.18 does: a created item, a stale one, or (R) one whose TTL left is
  // below R wins if its version's token is still unsent (WinTokens).
  if (!vivified) {
    const bool wants_token =
        g.out_stale || (r.has_recache && g.out_exptime != 0 && ttl_of(g.out_exptime, now) < r.recache_ttl);
    if (wants_token) win = tokens_.try_win(r.key, g.out_version);
    if (!win) token_sent = tokens_.sent(r.key, g.out_version);
  }
  meta_get_reply(r, g, value, now, win, token_sent, out);
}

// N (vivify): a miss creates an empty item (flags 0, TTL N) and its creator
// gets the win token, as memcached does. The token is reserved before the
// add (WinTokens::reserve), so readers of the new item, and vivifiers that
// lose the race, see Z; the reserving client gets W for whatever item its
// add leaves (its own, or one created meanwhile).
Result McEngine::meta_vivify(McContext& cx, const Request& r, index::Op& g, uint64_t now, bool* created, bool* win) {
  const bool holder = tokens_.reserve(r.key);
  index::Op add;
  add.code = index::OpCode::kAdd;
  add.key = r.key;
  add.exptime = proto::mc::absolute_exptime(r.vivify_ttl, now);
  const Result res = cx.worker_->execute_one(add);
  count_stored(cx.stats_, res);
  if (res == Result::kOk) {
    *created = true;
    g.out_value->clear();
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
      *win = tokens_.resolve(r.key, g.out_version);
    } else {
      tokens_.cancel(r.key);
    }
  }
  return res;
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
  op.exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, unix_now_s()) : 0;
  op.cas = r.mode == MetaMode::kAdd ? 0 : r.cas;
  // I (invalidate): a C older than the item's version stores the value
  // anyway, marked stale, keeping the item's TTL and win token (memcached
  // 1.6.18, modes S and R); index.h, Op::stale_if_older.
  op.stale_if_older = op.code == index::OpCode::kCas && r.has('I');
  const Result res = cx.worker_->execute_one(op);
  count_stored(cx.stats_, res);
  if (op.out_stale) carry_token(op);
  std::string_view code;
  switch (res) {
    case Result::kOk: code = "HD"; break;
    case Result::kExists: case Result::kNotStored: code = "NS"; break;
    case Result::kNotFound: code = append_mode ? "NS" : "NF"; break;
    // Only an append or prepend whose result would pass the value limit (the
    // parser refused larger data): NS, as memcached 1.6.18 answers.
    case Result::kTooLarge: code = "NS"; break;
    case Result::kCasMismatch: code = "EX"; break;
    default:
      inc(cx.stats_.out_of_memory);
      if (is_oom(res)) refuse_store(cx, r.key, false, true);  // memcached: every mode
      crlf(out, oom_text(res));
      return;
  }
  // memcached 1.6.18 counts cas_* for C with modes S and R only.
  if (r.has_cas && (r.mode == MetaMode::kSet || r.mode == MetaMode::kReplace)) count_cas(cx.stats_, res);
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
      op.exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, unix_now_s()) : 0;
    }
    const Result res = cx.worker_->execute_one(op);
    count_delete(cx.stats_, res);  // a mismatch is a miss
    if (is_oom(res)) {
      inc(cx.stats_.out_of_memory);
      crlf(out, oom_text(res));
      return;
    }
    code = res == Result::kOk ? "HD" : res == Result::kCasMismatch ? "EX" : "NF";
  }
  if (code == "HD" && r.has('q')) return;
  meta_status(code, r, out);
}

void McEngine::exec_meta_arith(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  const uint64_t now = unix_now_s();
  const bool incr = r.mode != MetaMode::kDecr;
  index::Op op;
  op.code = incr ? index::OpCode::kIncr : index::OpCode::kDecr;
  op.key = r.key;
  op.delta = r.delta;
  // C: compared atomically with the write (index.h, Op::cas), before the
  // value is parsed as a number, as memcached does. C0 compares nothing
  // (memcached 1.6.18 too). An absent key is NF, or created by N with the
  // initial value (J, default 0) and TTL N (N ignores C, as in memcached).
  op.cas = r.cas;
  uint64_t number = 0, version = 0;
  const Result res = arith_or_create(cx, op, r.has_vivify, r.initial, proto::mc::absolute_exptime(r.vivify_ttl, now),
                                     &number, &version);
  carry_token(op);
  if (res == Result::kCasMismatch) {
    meta_status("EX", r, out);
    return;
  }
  count_arith(cx.stats_, incr, res);
  if (res == Result::kNotNumeric) {
    inc(cx.stats_.client_errors);
    crlf(out, kNonNumeric);
    return;
  }
  if (res == Result::kNotFound) {
    meta_status("NF", r, out);
    return;
  }
  if (res != Result::kOk) {
    inc(cx.stats_.out_of_memory);
    crlf(out, oom_text(res));
    return;
  }
  // TTL update, then the item's version and expiry for c/t.
  const uint32_t exptime = r.has_exptime ? proto::mc::absolute_exptime(r.exptime, now) : 0;
  const index::Op& g = touch_get(cx, r.key, r.has_exptime, exptime, nullptr);
  if (r.has_exptime) carry_token(cx.ops.front());
  const bool with_value = r.has('v');
  if (!with_value && r.has('q')) return;
  cx.num.clear();
  append_num(&cx.num, number);
  value_head(with_value, cx.num.size(), out);
  for (uint8_t i = 0; i < r.nflags; ++i) {
    const proto::mc::MetaFlag& f = r.flags[i];
    if (f.flag == 'c') {
      out->append(" c");
      append_num(out, g.out_version);
    } else if (f.flag == 't') {
      out->append(" t");
      append_signed(out, g.result == Result::kOk ? ttl_of(g.out_exptime, now) : -1);
    } else {
      (void)echo_flag(r, f, out);
    }
  }
  value_tail(with_value, cx.num, out);
}

void McEngine::exec_meta_debug(McContext& cx, const Request& r, std::string* out) {
  inc(cx.stats_.cmd_meta);
  index::Op g = index::Op::get(r.key, &value_slot(cx));
  if (cx.worker_->execute_one(g) != Result::kOk) {
    crlf(out, "EN");
    return;
  }
  // memcached 1.6.18 prints exp as now - exptime (so a TTL of 100 shows
  // exp=-100; -1 when there is none), size as its item's size and cls as the
  // slab class that size falls in (memcached_item_size / memcached_slab_class).
  const uint64_t now = unix_now_s();
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

}  // namespace ferrite::server
