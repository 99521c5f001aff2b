// The load loop (see runner.h).
#include "perf/bench/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <random>

#include "common/clock.h"
#include "common/limits.h"
#include "perf/bench/memcache_udp.h"
#include "perf/bench/workload.h"
#include "proto/native.h"

namespace ferrite::bench {

namespace {

constexpr uint64_t kHelloId = ~uint64_t{0};
constexpr std::size_t kMaxBacklog = 4u << 20;  // open loop: arrivals waiting for a free slot, all flows

std::size_t request_size(const RunConfig& c) {
  if (c.protocol == Protocol::kMemcached) {
    // frame + "set " key " 0 0 " bytes "\r\n" value "\r\n"
    return proto::mc::kUdpHeaderSize + 4 + c.key_size + 5 + 20 + 2 + c.value_size + 2;
  }
  return proto::kHeaderSize + c.batch * (proto::kOpHeaderSize + c.key_size + c.value_size);
}

}  // namespace

void RunResult::merge(const RunResult& o) {
  seconds = std::max(seconds, o.seconds);
  requests_sent += o.requests_sent;
  requests_done += o.requests_done;
  ops_done += o.ops_done;
  lost += o.lost;
  send_failed += o.send_failed;
  errors += o.errors;
  get_hits += o.get_hits;
  get_misses += o.get_misses;
  sets_ok += o.sets_ok;
  sets_failed += o.sets_failed;
  fills += o.fills;
  stale += o.stale;
  cookie_refreshes += o.cookie_refreshes;
  backlog_dropped += o.backlog_dropped;
  max_send_lag_ns = std::max(max_send_lag_ns, o.max_send_lag_ns);
  latency.merge(o.latency);
  merge_timeline(&timeline, o.timeline);
}

void Progress::publish(uint64_t ops, uint64_t lost, const Histogram& h) {
  std::lock_guard<std::mutex> g(mu_);
  ops_ += ops;
  lost_ += lost;
  h_.merge(h);
}

void Progress::take(uint64_t* ops, uint64_t* lost, Histogram* h) {
  std::lock_guard<std::mutex> g(mu_);
  *ops = ops_;
  *lost = lost_;
  *h = h_;
  ops_ = lost_ = 0;
  h_.reset();
}

std::string check_config(const RunConfig& c) {
  if (c.keys == 0) return "keys must be >= 1";
  if (c.key_size < 8 || c.key_size > limits::kMaxKeyLen) {
    return fmt::format("key size must be 8..{} bytes", limits::kMaxKeyLen);
  }
  if (c.batch == 0 || c.batch > 1024) return "ops per datagram must be 1..1024";
  if (c.protocol == Protocol::kMemcached && c.batch != 1) {
    return "the memcached UDP protocol carries one op per request (--batch 1)";
  }
  if (c.get_ratio < 0 || c.get_ratio > 1) return "get ratio must be in [0, 1]";
  if (c.zipf_theta < 0 || c.zipf_theta >= 1) return "zipf theta must be in [0, 1) (0 = uniform)";
  if (c.depth == 0 || c.depth > 4096) return "depth must be 1..4096";
  if (c.mode == Mode::kOpen && !(c.rate > 0)) return "open loop needs a rate > 0";
  if (!(c.duration_s > 0) || c.duration_s > 3600) return "duration must be in (0, 3600] s";
  if (c.warmup_s < 0 || c.warmup_s > 600) return "warmup must be in [0, 600] s";
  if (c.timeout_ms < 1 || c.timeout_ms > 60000) return "timeout must be 1..60000 ms";
  const std::size_t limit = c.protocol == Protocol::kMemcached ? 1400 : proto::kDefaultDatagram;
  if (request_size(c) > limit) {
    return fmt::format("a request of {} bytes does not fit one {}-byte datagram: fewer ops per datagram or smaller "
                       "keys/values",
                       request_size(c), limit);
  }
  if (c.preload && c.key_end <= c.key_begin) return "preload needs a key range";
  return "";
}

unsigned max_batch(const RunConfig& c) {
  if (c.protocol == Protocol::kMemcached) return 1;
  const std::size_t per = proto::kOpHeaderSize + c.key_size + c.value_size;
  const std::size_t n = (proto::kDefaultDatagram - proto::kHeaderSize) / per;
  return static_cast<unsigned>(std::clamp<std::size_t>(n, 1, 1024));
}

struct Runner::Impl {
  struct Slot {
    bool busy = false;
    uint16_t gen = 0;
    uint16_t frags_need = 0;
    uint32_t ops = 0;
    uint64_t id = 0;
    uint64_t intended_ns = 0;
    uint64_t sent_ns = 0;
    std::vector<uint8_t> is_get;  // per op
    std::vector<uint64_t> key;    // per op: the key number
    std::unique_ptr<proto::Reassembly> native_asm;
    std::unique_ptr<mc::ReplyAssembler> mc_asm;
  };
  struct Flow {
    std::vector<Slot> slots;
    std::vector<uint32_t> free;
    std::deque<uint64_t> backlog;  // open loop: intended send times (ns)
    std::deque<uint64_t> fills;    // fill_on_miss: keys whose get missed, to set next
    uint64_t cookie = 0;
    unsigned outstanding = 0;
  };

  RunConfig c;
  Transport& t;
  Progress* progress;
  unsigned wbits = 0;
  std::vector<Flow> flows;
  KeyChooser keys;
  std::mt19937_64 rng;
  std::string value;
  std::vector<char> keybuf;
  uint64_t next_seq = 0;
  // tx staging
  std::vector<uint8_t> txbuf;
  std::vector<iovec> txiov;
  std::vector<uint32_t> txslot;
  std::vector<uint8_t> scratch;
  RunResult r;
  Histogram interval;
  uint64_t interval_ops = 0, interval_lost = 0;
  uint64_t window_start = 0, window_end = 0;
  bool in_window = false;
  uint64_t last_done = 0;
  std::vector<TimelineMark> marks;  // the window's start, then about every second

  Impl(const RunConfig& cfg, Transport& tr, Progress* p)
      : c(cfg), t(tr), progress(p), keys(cfg.keys, cfg.zipf_theta, cfg.seed * 7919 + 1), rng(cfg.seed),
        value(cfg.value_size, 'v'), keybuf(cfg.key_size) {
    unsigned w = 1;
    while (w < c.depth) {
      w <<= 1;
      ++wbits;
    }
    flows = std::vector<Flow>(t.flows());
    for (auto& f : flows) {
      f.slots.resize(w);
      for (uint32_t i = w; i-- > 0;) f.free.push_back(i);
      for (auto& s : f.slots) {
        s.is_get.resize(c.batch);
        s.key.resize(c.batch);
      }
    }
    next_seq = c.key_begin;
  }

  uint64_t make_id(Slot& s, uint32_t idx) {
    ++s.gen;
    if (c.protocol == Protocol::kMemcached) return ((uint64_t{s.gen} << wbits) | idx) & 0xffff;
    return (uint64_t{s.gen} << 32) | idx;
  }
  uint32_t slot_of(uint64_t id) const { return static_cast<uint32_t>(id & ((uint64_t{1} << wbits) - 1)); }

  bool more_keys() const { return !c.preload || next_seq < c.key_end; }

  // The next op of flow f: a pending fill (a set), else a key of the
  // distribution and a get with probability get_ratio (a preload: the next key, a set).
  uint64_t next_op(Flow& f, bool* get) {
    if (c.preload) {
      *get = false;
      return next_seq++;
    }
    if (!f.fills.empty()) {
      const uint64_t k = f.fills.front();
      f.fills.pop_front();
      ++r.fills;
      *get = false;
      return k;
    }
    const uint64_t k = keys.next();
    *get = std::uniform_real_distribution<double>(0, 1)(rng) < c.get_ratio;
    return k;
  }

  Counts counts() const {
    return Counts{r.ops_done, r.sets_ok, r.sets_failed, r.get_hits, r.get_misses, r.lost, r.errors};
  }

  void note_miss(Flow& f, const Slot& s, uint32_t op) {
    if (c.fill_on_miss && !c.preload) f.fills.push_back(s.key[op]);
  }

  // Encodes one request into txbuf for flow f using a free slot; returns
  // false if none. fills_only: only the flow's pending fills (at least one).
  bool build(unsigned fi, uint64_t intended, bool fills_only = false) {
    Flow& f = flows[fi];
    if (f.free.empty()) return false;
    const uint32_t idx = f.free.back();
    f.free.pop_back();
    Slot& s = f.slots[idx];
    s.busy = true;
    s.id = make_id(s, idx);
    s.intended_ns = intended;
    s.ops = c.batch;
    s.frags_need = 0;
    if (s.native_asm) s.native_asm.reset();
    if (s.mc_asm) s.mc_asm->reset();
    const std::size_t at = scratch.size();
    if (c.protocol == Protocol::kMemcached) {
      bool get = false;
      const uint64_t k = next_op(f, &get);
      format_key(k, keybuf.data(), keybuf.size());
      const std::string_view key(keybuf.data(), keybuf.size());
      s.is_get[0] = get;
      s.key[0] = k;
      if (get) {
        mc::append_get(&scratch, static_cast<uint16_t>(s.id), key);
      } else {
        mc::append_set(&scratch, static_cast<uint16_t>(s.id), key, value);
      }
    } else {
      scratch.resize(at + proto::kHeaderSize);
      const std::size_t body_at = scratch.size();
      uint32_t n = 0;
      for (; n < c.batch && more_keys() && (!fills_only || !f.fills.empty()); ++n) {
        bool get = false;
        const uint64_t k = next_op(f, &get);
        format_key(k, keybuf.data(), keybuf.size());
        s.is_get[n] = get;
        s.key[n] = k;
        proto::RequestOp op;
        op.opcode = get ? proto::Opcode::kGet : proto::Opcode::kSet;
        op.key = std::string_view(keybuf.data(), keybuf.size());
        if (!get) op.value = value;
        proto::append_request_op(&scratch, op);
      }
      s.ops = n;
      proto::Header h;
      h.type = proto::MsgType::kRequest;
      h.request_id = s.id;
      h.cookie = f.cookie;
      h.msg_len = static_cast<uint32_t>(scratch.size() - body_at);
      proto::encode_header(h, scratch.data() + at);
    }
    txiov.push_back(iovec{reinterpret_cast<void*>(at), scratch.size() - at});  // offset; fixed up before send
    txslot.push_back(idx);
    ++f.outstanding;
    return true;
  }

  void flush(unsigned fi, uint64_t now) {
    if (txiov.empty()) return;
    for (auto& v : txiov) v.iov_base = scratch.data() + reinterpret_cast<std::size_t>(v.iov_base);
    const std::size_t sent = t.send(fi, txiov);
    Flow& f = flows[fi];
    for (std::size_t i = 0; i < txslot.size(); ++i) {
      Slot& s = f.slots[txslot[i]];
      s.sent_ns = now;
      if (i >= sent) {
        ++r.send_failed;
        ++r.lost;
        ++interval_lost;
        release(f, txslot[i]);
      } else {
        ++r.requests_sent;
        if (c.mode == Mode::kOpen && now > s.intended_ns) r.max_send_lag_ns = std::max(r.max_send_lag_ns, now - s.intended_ns);
      }
    }
    txiov.clear();
    txslot.clear();
    scratch.clear();
  }

  void release(Flow& f, uint32_t idx) {
    f.slots[idx].busy = false;
    f.free.push_back(idx);
    --f.outstanding;
  }

  void complete(Flow& f, uint32_t idx, uint64_t now) {
    Slot& s = f.slots[idx];
    ++r.requests_done;
    if (now <= window_end || window_end == 0) r.ops_done += s.ops;
    const uint64_t lat = now > s.intended_ns ? now - s.intended_ns : 0;
    r.latency.record(lat);
    interval.record(lat);
    interval_ops += s.ops;
    last_done = now;
    release(f, idx);
  }

  void on_native(unsigned fi, std::span<const uint8_t> d, uint64_t now) {
    Flow& f = flows[fi];
    proto::Header h;
    std::span<const uint8_t> payload;
    if (proto::decode_header(d, &h, &payload) != Result::kOk) {
      ++r.errors;
      return;
    }
    if (h.request_id == kHelloId) {  // a late cookie of the handshake
      if (h.type == proto::MsgType::kCookie) f.cookie = h.cookie;
      return;
    }
    const uint32_t idx = slot_of(h.request_id);
    if (idx >= f.slots.size() || !f.slots[idx].busy || f.slots[idx].id != h.request_id) {
      ++r.stale;
      return;
    }
    Slot& s = f.slots[idx];
    if (h.type == proto::MsgType::kCookie) {  // not executed: the server wants a new handshake
      f.cookie = h.cookie;
      ++r.cookie_refreshes;
      ++r.lost;
      ++interval_lost;
      release(f, idx);
      return;
    }
    if (h.type != proto::MsgType::kResponse) {
      ++r.errors;
      release(f, idx);
      return;
    }
    std::span<const uint8_t> body = payload;
    if (h.frag_count > 1) {
      if (!s.native_asm) s.native_asm = std::make_unique<proto::Reassembly>();
      const Result ar = s.native_asm->add(h, payload);
      if (ar == Result::kRetry) return;
      if (ar != Result::kOk) {
        ++r.errors;
        release(f, idx);
        return;
      }
      body = s.native_asm->body();
    }
    proto::ResponseReader rd(body);
    proto::ResponseOp op;
    uint32_t seen = 0;
    Result rr;
    while ((rr = rd.next(&op)) == Result::kOk) {
      if (op.index >= s.ops) {
        ++r.errors;
        continue;
      }
      ++seen;
      if (s.is_get[op.index]) {
        if (op.status == proto::OpStatus::kOk) {
          if (op.value.size() == c.value_size) {
            ++r.get_hits;
          } else {
            ++r.errors;
          }
        } else if (op.status == proto::OpStatus::kNotFound) {
          ++r.get_misses;
          note_miss(f, s, op.index);
        } else {
          ++r.errors;
        }
      } else if (op.status == proto::OpStatus::kOk) {
        ++r.sets_ok;
      } else {
        ++r.sets_failed;
      }
    }
    if (rr == Result::kMalformed || seen != s.ops) ++r.errors;
    complete(f, idx, now);
  }

  void on_memcached(unsigned fi, std::span<const uint8_t> d, uint64_t now) {
    Flow& f = flows[fi];
    proto::mc::UdpHeader fr;
    std::span<const uint8_t> payload;
    if (!proto::mc::decode_udp_reply(d, &fr, &payload)) {
      ++r.errors;
      return;
    }
    const uint32_t idx = slot_of(fr.request_id);
    if (idx >= f.slots.size() || !f.slots[idx].busy || f.slots[idx].id != fr.request_id) {
      ++r.stale;
      return;
    }
    Slot& s = f.slots[idx];
    std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (fr.count > 1) {
      if (!s.mc_asm) s.mc_asm = std::make_unique<mc::ReplyAssembler>();
      const uint64_t rejected = s.mc_asm->rejected();
      if (!s.mc_asm->add(fr, payload)) {
        if (s.mc_asm->rejected() != rejected) ++r.errors;  // odd datagram; the request may still time out
        return;
      }
      text = s.mc_asm->text();
    }
    mc::Reply rep;
    switch (mc::parse_reply(text, &rep)) {
      case mc::ReplyKind::kHit:
        if (s.is_get[0] && rep.value.size() == c.value_size) {
          ++r.get_hits;
        } else {
          ++r.errors;
        }
        break;
      case mc::ReplyKind::kMiss:
        if (s.is_get[0]) {
          ++r.get_misses;
          note_miss(f, s, 0);
        } else {
          ++r.errors;
        }
        break;
      case mc::ReplyKind::kStored:
        if (!s.is_get[0]) {
          ++r.sets_ok;
        } else {
          ++r.errors;
        }
        break;
      case mc::ReplyKind::kNotStored:
        ++r.sets_failed;
        break;
      case mc::ReplyKind::kError:
        // A set the server refused (SERVER_ERROR out of memory ...) failed,
        // as a native set with an error status does; anything else is an error.
        if (!s.is_get[0] && text.starts_with("SERVER_ERROR")) {
          ++r.sets_failed;
        } else {
          ++r.errors;
        }
        break;
      default:
        ++r.errors;
        break;
    }
    complete(f, idx, now);
  }

  void expire(uint64_t now) {
    const uint64_t limit = static_cast<uint64_t>(c.timeout_ms) * 1000000ull;
    for (auto& f : flows) {
      if (f.outstanding == 0) continue;
      for (uint32_t i = 0; i < f.slots.size(); ++i) {
        Slot& s = f.slots[i];
        if (s.busy && now - s.sent_ns > limit) {
          ++r.lost;
          ++interval_lost;
          release(f, i);
        }
      }
    }
  }

  void publish() {
    if (progress != nullptr) progress->publish(interval_ops, interval_lost, interval);
    interval.reset();
    interval_ops = interval_lost = 0;
  }

  Status handshake() {
    if (c.protocol != Protocol::kNative) return Status::ok();
    uint8_t hello[proto::kHeaderSize];
    proto::Header h;
    h.type = proto::MsgType::kHello;
    h.request_id = kHelloId;
    proto::encode_header(h, hello);
    for (int attempt = 0; attempt < 10; ++attempt) {
      bool all = true;
      for (unsigned fi = 0; fi < flows.size(); ++fi) {
        if (flows[fi].cookie != 0) continue;
        all = false;
        iovec v{hello, sizeof(hello)};
        (void)t.send(fi, std::span<const iovec>(&v, 1));
      }
      if (all) return Status::ok();
      const uint64_t until = mono_now_ns() + 100000000ull;
      while (mono_now_ns() < until) {
        auto rx = t.recv(64);
        for (const auto& d : rx) {
          proto::Header rh;
          std::span<const uint8_t> p;
          if (proto::decode_header(d.bytes, &rh, &p) == Result::kOk && rh.type == proto::MsgType::kCookie) {
            flows[d.flow].cookie = rh.cookie;
          }
        }
        if (rx.empty()) t.wait(2000);
      }
    }
    for (const auto& f : flows) {
      if (f.cookie == 0) return Status::io_error("no cookie from the server (is ferrited running there?)");
    }
    return Status::ok();
  }

  RunResult run() {
    const uint64_t start = mono_now_ns();
    const uint64_t warm_end = start + static_cast<uint64_t>(c.warmup_s * 1e9);
    uint64_t issue_end = warm_end + static_cast<uint64_t>(c.duration_s * 1e9);
    const uint64_t timeout_ns = static_cast<uint64_t>(c.timeout_ms) * 1000000ull;
    in_window = c.warmup_s <= 0;
    window_start = start;
    constexpr uint64_t kSecond = 1000000000ull;
    uint64_t next_mark = start + kSecond;  // meaningful once in the window
    bool marks_closed = false;             // the window's last mark is taken
    marks.clear();
    if (in_window) marks.push_back(TimelineMark{start, Counts{}});
    uint64_t ops_issued = 0;  // in the window
    std::unique_ptr<PoissonSchedule> sched;
    uint64_t next_arrival = 0;
    std::size_t backlog_total = 0;
    if (c.mode == Mode::kOpen) {
      sched = std::make_unique<PoissonSchedule>(c.rate / c.batch, c.seed * 104729 + 3);
      next_arrival = start + static_cast<uint64_t>(sched->next());
    }
    unsigned rr_flow = 0;
    uint64_t last_expire = start, last_publish = start;
    bool issuing = true;
    const std::size_t burst = 64;
    for (;;) {
      uint64_t now = mono_now_ns();
      if (!in_window && now >= warm_end) {
        in_window = true;
        window_start = now;
        const uint64_t lag = r.max_send_lag_ns;
        r = RunResult{};
        r.max_send_lag_ns = lag;
        ops_issued = 0;
        marks.push_back(TimelineMark{now, Counts{}});
        next_mark = now + kSecond;
      }
      if (in_window && !marks_closed && now >= next_mark) {
        marks.push_back(TimelineMark{now, counts()});
        // The next whole second of the window (one interval spans a stall
        // of the generator instead of rows of nothing).
        next_mark += kSecond * ((now - next_mark) / kSecond + 1);
      }
      if (issuing && (now >= issue_end || (c.max_ops != 0 && in_window && ops_issued >= c.max_ops) || !more_keys())) {
        issuing = false;
        // Time bound: the window ends now, replies still in flight count for
        // latency but not for throughput. Count bound: the window ends with
        // the last reply (every issued op is in the figures).
        if (now >= issue_end) {
          window_end = now;
          if (in_window) {
            marks.push_back(TimelineMark{now, counts()});
            marks_closed = true;
          }
        }
        issue_end = now;
      }
      bool busy = false;
      if (c.mode == Mode::kOpen && issuing) {
        for (int k = 0; k < 4096 && next_arrival <= now; ++k) {
          if (backlog_total >= kMaxBacklog) {
            ++r.backlog_dropped;
            ++r.lost;
          } else {
            flows[rr_flow].backlog.push_back(next_arrival);
            ++backlog_total;
          }
          rr_flow = (rr_flow + 1) % static_cast<unsigned>(flows.size());
          next_arrival = start + static_cast<uint64_t>(sched->next());
        }
      }
      for (unsigned fi = 0; fi < flows.size(); ++fi) {
        Flow& f = flows[fi];
        if (c.mode == Mode::kClosed) {
          while (issuing && f.outstanding < c.depth && txiov.size() < burst && more_keys() &&
                 (c.max_ops == 0 || !in_window || ops_issued < c.max_ops)) {
            if (!build(fi, now)) break;
            ops_issued += f.slots[txslot.back()].ops;
          }
        } else {
          while (issuing && !f.fills.empty() && txiov.size() < burst) {
            if (!build(fi, now, true)) break;
            ops_issued += f.slots[txslot.back()].ops;
          }
          while (!f.backlog.empty() && txiov.size() < burst) {
            if (!build(fi, f.backlog.front())) break;
            ops_issued += f.slots[txslot.back()].ops;
            f.backlog.pop_front();
            --backlog_total;
          }
        }
        if (!txiov.empty()) {
          busy = true;
          flush(fi, now);
        }
      }
      auto rx = t.recv(burst);
      if (!rx.empty()) {
        busy = true;
        now = mono_now_ns();
        for (const auto& d : rx) {
          if (d.bytes.empty()) {
            ++r.errors;  // truncated
            continue;
          }
          if (c.protocol == Protocol::kNative) {
            on_native(d.flow, d.bytes, now);
          } else {
            on_memcached(d.flow, d.bytes, now);
          }
        }
      }
      if (now - last_expire > 5000000ull) {
        expire(now);
        last_expire = now;
      }
      if (now - last_publish > 100000000ull) {
        publish();
        last_publish = now;
      }
      unsigned outstanding = 0;
      for (const auto& f : flows) outstanding += f.outstanding;
      if (!issuing) {
        // Arrivals still in the backlog when issuing stops were due in the window: lost.
        for (auto& f : flows) {
          r.lost += f.backlog.size();
          f.backlog.clear();
        }
        backlog_total = 0;
        if (outstanding == 0) break;
        if (now > issue_end + timeout_ns) {
          expire(now + timeout_ns + 1);
          break;
        }
      }
      if (!busy) {
        if (c.mode == Mode::kOpen && issuing) {
          const uint64_t until = next_arrival > now ? next_arrival - now : 0;
          if (until > 60000) t.wait(static_cast<int>(std::min<uint64_t>(until - 50000, 1000000) / 1000));
        } else {
          t.wait(outstanding ? 1000 : 100);
        }
      }
    }
    publish();
    const uint64_t end = window_end ? window_end : std::max(last_done, window_start + 1);
    r.seconds = static_cast<double>(end - window_start) / 1e9;
    if (!marks_closed && !marks.empty()) {  // bound by a count of ops (or keys): the window ends at the last reply
      while (marks.size() > 1 && marks.back().t_ns > end) marks.pop_back();
      marks.push_back(TimelineMark{std::max(end, marks.back().t_ns), counts()});
    }
    r.timeline = timeline_rows(marks);
    return std::move(r);
  }
};

Runner::Runner(const RunConfig& c, Transport& t, Progress* progress) : impl_(std::make_unique<Impl>(c, t, progress)) {}
Runner::~Runner() = default;
Status Runner::handshake() { return impl_->handshake(); }
RunResult Runner::run() { return impl_->run(); }

}  // namespace ferrite::bench
