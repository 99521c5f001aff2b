// Engine (see engine.h). The per-burst path allocates only when a burst is
// bigger than any before it (vectors keep their capacity) or for fragmented
// messages and the duplicate-reply memory.
#include "server/engine.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <chrono>
#include <charconv>

#include "common/clock.h"
#include "common/hash.h"
#include "proto/exptime.h"
#include "server/reassembly.h"

namespace ferrite::server {
namespace {

using proto::Opcode;
using proto::OpStatus;

struct PeerKey {
  uint64_t addr;  // ip << 16 | port
  uint64_t rid;
  bool operator==(const PeerKey&) const = default;
};
struct PeerKeyHash {
  std::size_t operator()(const PeerKey& k) const noexcept { return k.addr * 0x9e3779b97f4a7c15ull ^ k.rid; }
};
uint64_t peer_addr(const sockaddr_in& p) { return (uint64_t{ntohl(p.sin_addr.s_addr)} << 16) | ntohs(p.sin_port); }

OpStatus to_status(Result r) {
  switch (r) {
    case Result::kOk: return OpStatus::kOk;
    case Result::kNotFound: return OpStatus::kNotFound;
    case Result::kExists: return OpStatus::kExists;
    case Result::kNotStored: return OpStatus::kNotStored;
    case Result::kCasMismatch: return OpStatus::kCasMismatch;
    case Result::kNoSpace: return OpStatus::kOutOfMemory;
    case Result::kLiveFull: return OpStatus::kOutOfMemory;
    case Result::kTooLarge: return OpStatus::kTooLarge;
    case Result::kBadKey: return OpStatus::kBadKey;
    case Result::kNotNumeric: return OpStatus::kNotNumeric;
    default: return OpStatus::kMalformed;
  }
}

index::OpCode to_index_op(Opcode c) {
  switch (c) {
    case Opcode::kSet: return index::OpCode::kSet;
    case Opcode::kAdd: return index::OpCode::kAdd;
    case Opcode::kReplace: return index::OpCode::kReplace;
    case Opcode::kAppend: return index::OpCode::kAppend;
    case Opcode::kPrepend: return index::OpCode::kPrepend;
    case Opcode::kCas: return index::OpCode::kCas;
    case Opcode::kIncr: return index::OpCode::kIncr;
    case Opcode::kDecr: return index::OpCode::kDecr;
    case Opcode::kTouch: return index::OpCode::kTouch;
    case Opcode::kDel: return index::OpCode::kDel;
    default: return index::OpCode::kGet;
  }
}

constexpr uint8_t kNoOverride = 0xff;

// EngineStats are per worker, written by that worker only: a relaxed load and
// store instead of a locked read-modify-write; readers see whole values.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void count_evictions(EngineStats& st, const PartialEvictions& ev) noexcept {
  bump(st.drop_partial_source_budget, ev.source_budget);
  bump(st.drop_partial_oldest, ev.oldest);
  bump(st.drop_partial_expired, ev.expired);
  bump(st.drop_partial_evicted, ev.source_budget + ev.oldest + ev.expired);
}

}  // namespace

StatusOr<Cidr> parse_cidr(const std::string& s) {
  auto slash = s.find('/');
  std::string ip = s.substr(0, slash);
  int bits = 32;
  if (slash != std::string::npos) {
    auto tail = std::string_view(s).substr(slash + 1);
    auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), bits);
    if (ec != std::errc() || p != tail.data() + tail.size() || bits < 0 || bits > 32) {
      return ferrite::Status::invalid_argument("bad CIDR \"" + s + "\": prefix length must be 0..32");
    }
  }
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) return ferrite::Status::invalid_argument("bad CIDR \"" + s + "\": not an IPv4 address");
  Cidr c;
  c.mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  c.net = ntohl(a.s_addr) & c.mask;
  return c;
}

namespace {
// Gets per index sub-burst (execute_bounded): the values copied out at once.
// A burst of 32 single-get datagrams still runs as one index burst.
constexpr std::size_t kGetsPerExecute = 32;
// Reply bytes a message keeps aside from its get values (a scan page, stats).
constexpr std::size_t kReplyReserve = 64u << 10;
// Value buffers larger than this are freed after the burst.
constexpr std::size_t kKeptValueCapacity = 64u << 10;
}  // namespace

struct Engine::Message {
  sockaddr_in peer{};
  proto::Header hdr{};
  std::size_t first = 0;        // first entry in WorkerState::entries
  std::size_t count = 0;
  bool malformed = false;
  int dup_of = -1;              // index of an earlier message of this burst with the same id
};

struct Engine::WorkerState {
  index::Worker* worker = nullptr;
  std::unique_ptr<EngineStats> stats = std::make_unique<EngineStats>();
  struct Entry {
    Opcode opcode;
    uint16_t op_flags;
    uint16_t index;             // position in the message
    uint8_t override_status;    // kNoOverride: take the index op's result
    int32_t op = -1;            // index into ops, -1 for engine-only ops
    uint64_t arg = 0;           // scan: the cursor
  };
  std::vector<index::Op> ops;
  std::vector<uint32_t> op_msg;     // per op: its message (index into msgs)
  std::vector<std::string> values;  // get output per op (large buffers freed after the burst)
  std::vector<std::size_t> msg_value_bytes;  // per message: get values kept for its reply
  std::vector<uint8_t> msg_full;             // per message: a get did not fit, later ones are not copied
  std::vector<Entry> entries;
  std::vector<Message> msgs;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> bodies;  // reassembled bodies alive this burst
  PartialTable partial{64};  // sized from EngineOptions::max_partial by the constructor
  std::chrono::steady_clock::time_point last_sweep{};
  bool swept = false;  // the first idle call sweeps (the steady clock's zero is boot, not "long ago")
  uint64_t burst_unix = 0;   // unix_now_s() for this burst, 0 = not read yet
  uint32_t idle_calls = 0;   // on_idle reads the clock on every 32nd call
  // Recent replies for retries: a direct-mapped cache of dup_window slots
  // keyed by (source, request id). A slot's buffer keeps its capacity, so
  // remembering a reply allocates nothing once the cache is warm; a newer
  // request that maps to the same slot evicts the older one early.
  struct ReplySlot {
    PeerKey key{~0ull, ~0ull};
    std::vector<uint8_t> body;
  };
  std::vector<ReplySlot> replies;
  ReplySlot& reply_slot(const PeerKey& k) { return replies[PeerKeyHash{}(k) % replies.size()]; }
  const std::vector<uint8_t>* find_reply(const PeerKey& k) {
    if (replies.empty()) return nullptr;
    ReplySlot& r = reply_slot(k);
    return r.key == k ? &r.body : nullptr;
  }
  std::vector<uint8_t> body, scratch;
  std::string stats_value;
  std::string scan_value;
};

const EngineStats& Engine::stats(unsigned worker) const { return *workers_[worker]->stats; }

Engine::Engine(index::Index& idx, const EngineOptions& opts)
    : idx_(idx), opts_(opts), cookies_(opts.cookie_rotation), start_unix_(unix_now_s()) {
  for (unsigned w = 0; w < idx.workers(); ++w) {
    auto ws = std::make_unique<WorkerState>();
    ws->worker = &idx.worker(w);
    ws->replies.resize(opts_.dup_window);
    ws->partial = PartialTable(opts_.max_partial);
    workers_.push_back(std::move(ws));
  }
  register_stats();
}

Engine::~Engine() = default;

uint64_t Engine::cookie_for(const sockaddr_in& p) const noexcept {
  return cookies_.issue(peer_addr(p));  // SipHash-2-4 under the current secret, never 0
}

void Engine::on_idle(unsigned worker) {
  WorkerState& ws = *workers_[worker];
  ws.worker->quiesce();
  // A polling worker calls this millions of times a second: the timed work
  // below (1 ms and 1 s granularity) looks at the clock every 32nd call.
  if ((ws.idle_calls++ & 31u) != 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (opts_.idle_sweep_slots != 0 && (!ws.swept || now - ws.last_sweep >= opts_.idle_sweep_interval)) {
    ws.swept = true;
    ws.last_sweep = now;
    const uint64_t n = idx_.sweep_expired(opts_.idle_sweep_slots, /*wait=*/false);
    bump(ws.stats->idle_sweep_steps, 1);
    bump(ws.stats->idle_sweep_expired, n);
  }
  PartialEvictions ev;
  if (ws.partial.size() != 0 && ws.partial.expire_st(now, std::chrono::seconds(1), &ev) != 0) {
    count_evictions(*ws.stats, ev);
  }
}

void Engine::on_burst(unsigned worker, std::span<const net::Datagram> in, net::TxQueue& out) {
  WorkerState& ws = *workers_[worker];
  ws.ops.clear();
  ws.op_msg.clear();
  ws.entries.clear();
  ws.msgs.clear();
  ws.bodies.clear();
  ws.burst_unix = 0;
  for (const net::Datagram& d : in) handle_datagram(ws, d, out);
  finish_burst(ws, out);
}

void Engine::handle_datagram(WorkerState& ws, const net::Datagram& d, net::TxQueue& out) {
  EngineStats& st = *ws.stats;
  const uint32_t ip = ntohl(d.peer.sin_addr.s_addr);
  bool allowed = false;
  for (const Cidr& c : opts_.allow) allowed = allowed || c.contains(ip);
  if (!allowed) {
    bump(st.drop_not_allowed, 1);
    return;  // unknown sources get nothing back
  }
  proto::Header h;
  std::span<const uint8_t> payload;
  if (proto::decode_header(d.payload, &h, &payload) != Result::kOk ||
      (h.type != proto::MsgType::kRequest && h.type != proto::MsgType::kHello)) {
    bump(st.drop_bad_header, 1);
    return;
  }
  const uint64_t cookie = cookie_for(d.peer);
  if (h.type == proto::MsgType::kHello ||
      (h.cookie != cookie && !cookies_.accepts(peer_addr(d.peer), h.cookie))) {
    // Unproven source (or a hello): 32 bytes back, never more than it sent.
    proto::Header r;
    r.type = proto::MsgType::kCookie;
    r.request_id = h.request_id;
    r.cookie = cookie;
    proto::encode_header(r, out.add(d.peer, proto::kHeaderSize));
    bump(st.cookie_replies, 1);
    return;
  }
  const PeerKey key{peer_addr(d.peer), h.request_id};
  if (const std::vector<uint8_t>* remembered = ws.find_reply(key)) {
    // A retry of a request we already executed: answer from memory.
    bump(st.duplicates, 1);
    if (h.frag_index == 0) {
      proto::Header r;
      r.type = proto::MsgType::kResponse;
      r.request_id = h.request_id;
      r.cookie = cookie;
      proto::fragment(r, *remembered, opts_.max_datagram, &ws.scratch,
                      [&](std::span<const uint8_t> dg) { out.push(d.peer, dg); });
    }
    return;
  }
  if (h.frag_count == 1) {
    start_message(ws, d.peer, h, payload, d.payload.size(), out);
    return;
  }
  // Bounded memory, shared fairly: a new message always gets a slot, at the
  // cost of its own source's oldest or else the oldest of all (reassembly.h).
  const PartialKey pkey{key.addr, key.rid};
  PartialEvictions ev;
  proto::Reassembly& ra = ws.partial.find_or_open_st(pkey, std::chrono::steady_clock::now(), &ev);
  if (ev.source_budget + ev.oldest != 0) count_evictions(st, ev);
  Result r = ra.add(h, payload);
  if (r == Result::kRetry) return;
  if (r != Result::kOk) {
    bump(st.drop_bad_fragment, 1);
    ws.partial.erase_st(pkey);
    return;
  }
  auto body = std::make_unique<std::vector<uint8_t>>(ra.body().begin(), ra.body().end());
  ws.partial.erase_st(pkey);
  ws.bodies.push_back(std::move(body));
  const auto& b = *ws.bodies.back();
  start_message(ws, d.peer, h, std::span<const uint8_t>(b.data(), b.size()), b.size(), out);
}

void Engine::start_message(WorkerState& ws, const sockaddr_in& peer, const proto::Header& h,
                           std::span<const uint8_t> body, std::size_t request_bytes, net::TxQueue& out) {
  (void)request_bytes;
  (void)out;
  EngineStats& st = *ws.stats;
  bump(st.requests, 1);
  Message m;
  m.peer = peer;
  m.hdr = h;
  m.first = ws.entries.size();
  const PeerKey key{peer_addr(peer), h.request_id};
  // Same request twice in one burst: execute it once. A linear look over
  // this burst's messages (at most a burst's worth) allocates nothing.
  for (std::size_t i = 0; i < ws.msgs.size(); ++i) {
    const Message& o = ws.msgs[i];
    if (o.dup_of < 0 && o.hdr.request_id == h.request_id && peer_addr(o.peer) == key.addr) {
      m.dup_of = static_cast<int>(i);
      bump(st.duplicates, 1);
      ws.msgs.push_back(m);
      return;
    }
  }
  const std::size_t ops_before = ws.ops.size();
  proto::RequestReader rd(body);
  proto::RequestOp rop;
  for (;;) {
    const auto next = rd.next(&rop);
    if (next == proto::RequestReader::Next::kEnd) break;
    if (next == proto::RequestReader::Next::kMalformed) {
      m.malformed = true;
      break;
    }
    WorkerState::Entry e{rop.opcode, rop.op_flags, static_cast<uint16_t>(rd.index() - 1), kNoOverride, -1, 0};
    if (next == proto::RequestReader::Next::kUnknownOpcode) {
      e.override_status = static_cast<uint8_t>(OpStatus::kUnknownOpcode);
      bump(st.unknown_opcode, 1);
      ws.entries.push_back(e);
      break;  // the rest of the message is not executed
    }
    bump(st.ops, 1);
    if (next == proto::RequestReader::Next::kTooLarge) {
      e.override_status = static_cast<uint8_t>(OpStatus::kTooLarge);
      bump(st.too_large, 1);
    } else if (rop.opcode == Opcode::kStats || rop.opcode == Opcode::kNoop || rop.opcode == Opcode::kScan) {
      e.override_status = static_cast<uint8_t>(OpStatus::kOk);
      e.arg = rop.arg;
    } else {
      index::Op op;
      op.code = rop.opcode == Opcode::kGet ? index::OpCode::kGet : to_index_op(rop.opcode);
      op.key = rop.key;
      op.value = rop.value;
      op.flags = rop.client_flags;
      // The wall clock is read once per burst, and only if an op needs it
      // (a clock read costs more than a GET's index work on some VMs).
      if (rop.exptime != 0 && ws.burst_unix == 0) ws.burst_unix = unix_now_s();
      op.exptime = proto::absolute_exptime(rop.exptime, ws.burst_unix);
      // arg is the expected version of cas only (docs/protocol.md); on other
      // writes a non-zero Op::cas would make the index compare it.
      op.cas = rop.opcode == Opcode::kCas ? rop.arg : 0;
      op.delta = rop.arg;
      e.op = static_cast<int32_t>(ws.ops.size());
      ws.ops.push_back(op);
      ws.op_msg.push_back(static_cast<uint32_t>(ws.msgs.size()));
    }
    ws.entries.push_back(e);
  }
  if (m.malformed) {
    // Nothing of a malformed message is executed.
    ws.ops.resize(ops_before);
    ws.op_msg.resize(ops_before);
    ws.entries.resize(m.first);
    bump(st.malformed, 1);
  }
  m.count = ws.entries.size() - m.first;
  ws.msgs.push_back(m);
}

void Engine::execute_bounded(WorkerState& ws) {
  EngineStats& st = *ws.stats;
  // Every op belongs to exactly one message (start_message pushes both).
  FERRITE_DCHECK(ws.op_msg.size() == ws.ops.size());
  if (ws.values.size() < ws.ops.size()) ws.values.resize(ws.ops.size());
  for (std::size_t i = 0; i < ws.ops.size(); ++i) {
    if (ws.ops[i].code == index::OpCode::kGet) ws.ops[i].out_value = &ws.values[i];
  }
  ws.msg_value_bytes.assign(ws.msgs.size(), 0);
  ws.msg_full.assign(ws.msgs.size(), 0);
  // One index burst for every op of every message received together (one
  // fence pair), unless it holds more than kGetsPerExecute gets: then
  // consecutive sub-bursts of at most that many, in order, so at most
  // kGetsPerExecute values (1 MiB each at most) are copied out at once.
  // After each, a get whose value does not fit its message's reply
  // (kMaxMessage) is answered too_large and its value freed at once; the
  // message's later gets are then looked up without copying their values
  // and answered too_large as well. Replies still leave only after the last
  // sub-burst, when every effect is durable.
  std::size_t begin = 0;
  while (begin < ws.ops.size()) {
    std::size_t end = begin, gets = 0;
    while (end < ws.ops.size() && (ws.ops[end].code != index::OpCode::kGet || gets < kGetsPerExecute)) {
      if (ws.ops[end].code == index::OpCode::kGet) ++gets;
      ++end;
    }
    // Each sub-burst runs at least one op and at most kGetsPerExecute gets.
    FERRITE_DCHECK(end > begin && gets <= kGetsPerExecute);
    for (std::size_t i = begin; i < end; ++i) {
      if (ws.ops[i].code == index::OpCode::kGet && ws.msg_full[ws.op_msg[i]] != 0) ws.ops[i].out_value = nullptr;
    }
    ws.worker->execute(std::span<index::Op>(ws.ops.data() + begin, end - begin));
    for (std::size_t i = begin; i < end; ++i) {
      index::Op& op = ws.ops[i];
      if (op.code != index::OpCode::kGet || op.result != Result::kOk) continue;
      const uint32_t mi = ws.op_msg[i];
      // Room for the values: the message's op headers and a stats/scan page aside.
      const std::size_t room =
          proto::kMaxMessage - std::min(proto::kMaxMessage, ws.msgs[mi].count * proto::kOpHeaderSize + kReplyReserve);
      // A get fits unless its message is already full (its value was not
      // even copied, out_value == nullptr, or an earlier get of this
      // sub-burst overflowed) or its value overflows the room left.
      if (op.out_value != nullptr && ws.msg_full[mi] == 0 && ws.msg_value_bytes[mi] + ws.values[i].size() <= room) {
        ws.msg_value_bytes[mi] += ws.values[i].size();
        continue;
      }
      op.result = Result::kTooLarge;
      std::string().swap(ws.values[i]);
      ws.msg_full[mi] = 1;
      bump(st.reply_too_large, 1);
    }
    begin = end;
  }
}

void Engine::finish_burst(WorkerState& ws, net::TxQueue& out) {
  EngineStats& st = *ws.stats;
  execute_bounded(ws);

  for (std::size_t mi = 0; mi < ws.msgs.size(); ++mi) {
    const Message& m = ws.msgs[mi];
    proto::Header r;
    r.request_id = m.hdr.request_id;
    r.cookie = m.hdr.cookie;
    if (m.malformed) {
      r.type = proto::MsgType::kError;
      proto::encode_header(r, out.add(m.peer, proto::kHeaderSize));
      continue;
    }
    r.type = proto::MsgType::kResponse;
    if (m.dup_of >= 0) {
      const PeerKey key{peer_addr(m.peer), m.hdr.request_id};
      if (const std::vector<uint8_t>* remembered = ws.find_reply(key)) {
        proto::fragment(r, *remembered, opts_.max_datagram, &ws.scratch,
                        [&](std::span<const uint8_t> dg) { out.push(m.peer, dg); });
      }
      continue;
    }
    ws.body.clear();
    for (std::size_t k = 0; k < m.count; ++k) {
      const WorkerState::Entry& e = ws.entries[m.first + k];
      proto::ResponseOp rop;
      rop.opcode = e.opcode;
      rop.index = e.index;
      std::string num;
      if (e.override_status != kNoOverride) {
        rop.status = static_cast<OpStatus>(e.override_status);
        if (e.opcode == Opcode::kStats && rop.status == OpStatus::kOk) {
          ws.stats_value = stats_text();
          rop.value = ws.stats_value;
        } else if (e.opcode == Opcode::kScan && rop.status == OpStatus::kOk) {
          // One page of a dump: ~48 KiB of entries, so the reply stays in the
          // duplicate-reply window (retries of a page are answered from it).
          ws.scan_value.clear();
          auto next = idx_.scan_page(e.arg, 48u << 10,
                                     [&](std::string_view k, std::string_view v, uint32_t fl, uint32_t ex, uint64_t ver) {
                                       proto::append_scan_entry(&ws.scan_value, {k, v, fl, ex, ver});
                                     });
          rop.value = ws.scan_value;
          rop.version = next.value_or(0);
          rop.client_flags = next.has_value() ? 0 : proto::kScanDone;
        }
      } else {
        const index::Op& op = ws.ops[static_cast<std::size_t>(e.op)];
        rop.status = to_status(op.result);
        rop.version = op.out_version;
        if (op.result == Result::kNoSpace || op.result == Result::kLiveFull) bump(st.out_of_memory, 1);
        if (op.code == index::OpCode::kGet) {
          bump(st.gets, 1);
          bump(op.result == Result::kOk ? st.hits : st.misses);
          if (op.result == Result::kOk) {
            rop.value = ws.values[static_cast<std::size_t>(e.op)];
            rop.client_flags = op.out_flags;
          }
        } else {
          bump(st.writes, 1);
          if ((op.code == index::OpCode::kIncr || op.code == index::OpCode::kDecr) && op.result == Result::kOk) {
            num = std::to_string(op.out_number);
            rop.value = num;
          }
        }
      }
      if ((e.op_flags & proto::kOpQuiet) != 0 && rop.status == OpStatus::kOk) continue;
      proto::append_response_op(&ws.body, rop);
    }
    if (proto::fragment(r, ws.body, opts_.max_datagram, &ws.scratch,
                        [&](std::span<const uint8_t> dg) { out.push(m.peer, dg); }) == 0) {
      // Over kMaxMessage all the same (many scan pages): an error, not silence.
      r.type = proto::MsgType::kError;
      proto::encode_header(r, out.add(m.peer, proto::kHeaderSize));
      bump(st.reply_too_large, 1);
      continue;
    }
    bump(st.replies, 1);
    // Remember the reply for retries (bounded window; huge replies are not
    // kept: re-executing a read is harmless, and writes reply small).
    if (ws.body.size() <= 65536 && !ws.replies.empty()) {
      const PeerKey key{peer_addr(m.peer), m.hdr.request_id};
      WorkerState::ReplySlot& slot = ws.reply_slot(key);
      slot.key = key;
      slot.body.assign(ws.body.begin(), ws.body.end());
    }
  }
  for (std::string& v : ws.values) {
    if (v.capacity() > kKeptValueCapacity) std::string().swap(v);  // a 1 MiB buffer is not kept per op slot
  }
}

void Engine::register_stats() {
  stats::Registry& r = registry_;
  r.gauge("uptime", "seconds since the engine started", [this] { return unix_now_s() - start_unix_; });
  r.gauge("workers", "index workers", [this] { return workers_.size(); });
  const stats::Workers<EngineStats> w{[this] { return workers_.size(); },
                                      [this](std::size_t i) -> const EngineStats& { return *workers_[i]->stats; }};
  add_engine_counters(r, w);  // requests .. cookie_replies (engine_stats.cc)
  r.counter("cookie_rotations", "cookie secret rotations", [this] { return cookies_.rotations(); });
  r.counter("duplicates", "duplicate requests answered from memory", w.summed(&EngineStats::duplicates));
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    r.counter(fmt::format("worker{}_ops", i), "ops of one worker", [w, i] { return w.of(i, &EngineStats::ops); });
  }
  add_index_stats(r, idx_);
}

}  // namespace ferrite::server
