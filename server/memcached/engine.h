// memcached compatibility (issue 7): McEngine executes memcached text, meta
// and binary commands (proto/memcached.h) against the index; the transports
// (udp.h: a PacketHandler, so any backend that can hand it the datagrams of
// the memcached port serves it; tcp.h: a small epoll server) feed it bytes.
//
//   McEngine mc(idx, {.allow = ...});
//   McUdpHandler udp(mc, first_index_worker, workers);   // give it to a backend
//   auto tcp = McTcpServer::create(mc, "127.0.0.1", 11211, first_index_worker, threads, max_connections);
//
// Each thread that executes commands owns a McContext (its own index
// Worker). Replies follow memcached 1.6; docs/memcached.md lists the
// differences.
//
// This header owns McEngine's interface, its options, contexts and counters.
// Its definitions are spread by command family over server/memcached/:
//   engine.cc   construction, process() (text parse loop and dispatch),
//               flush_all, idle housekeeping
//   classic.cc  get/gets/gat/gats (chunked, and staged for UDP bursts),
//               storage commands, delete, incr/decr, touch
//   batch.cc    pipelined classic commands of one TCP read in one index burst
//   meta.cc     mg, ms, md, ma, me
//   binary.cc   the binary protocol
//   stats.cc    stats entries (the registry), stats text and reset
//   items.cc    memcached's item sizes and slab classes (items.h)
//   prefix_stats.cc  stats detail's per-prefix counts (prefix_stats.h)
//
// Thread safety: McEngine is shared; a McContext belongs to one thread;
// counters are relaxed atomics summed by stats. flush_at_ is the one field
// every context writes (relaxed; the CAS in maybe_delayed_flush picks the one
// context that runs a delayed flush).
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/cacheline.h"
#include "common/stats.h"
#include "index/index.h"
#include "proto/memcached.h"
#include "server/engine.h"
#include "server/memcached/items.h"
#include "server/memcached/prefix_stats.h"
#include "server/memcached/stream.h"
#include "server/memcached/win_tokens.h"

namespace ferrite::server {

inline constexpr std::string_view kMcVersion = "1.6.18-ferrite-0.1.0";

// Per-context counters (stats.cc names them; binary_connections: TCP
// connections whose first byte chose the binary protocol).
struct alignas(kCacheLine) McStats {
  std::atomic<uint64_t> cmd_get{0}, get_hits{0}, get_misses{0}, cmd_set{0}, cmd_touch{0}, touch_hits{0},
      touch_misses{0}, delete_hits{0}, delete_misses{0}, incr_hits{0}, incr_misses{0}, decr_hits{0},
      decr_misses{0}, cas_hits{0}, cas_misses{0}, cas_badval{0}, cmd_flush{0}, cmd_meta{0}, errors{0},
      client_errors{0}, out_of_memory{0}, bytes_read{0}, bytes_written{0}, udp_requests{0}, udp_drop_multi{0},
      udp_drop_short{0}, udp_drop_not_allowed{0}, udp_incomplete{0}, udp_reply_datagrams{0}, udp_batched_requests{0},
      binary_connections{0}, udp_reply_too_large{0}, tcp_output_paused{0}, get_chunks_paused{0};
  // Items written by a command that creates or replaces one (memcached's
  // total_items: a store, mg/ma with N creating, incr/decr creating).
  std::atomic<uint64_t> total_items{0};
  // Pipelined TCP text requests executed in an index burst shared with
  // others (batch.cc), and those bursts.
  std::atomic<uint64_t> tcp_batched_requests{0}, tcp_batches{0};
  // Storage commands refused: value too large / out of memory (memcached's
  // store_too_large, store_no_memory); lines that looked like HTTP (closed
  // or dropped without a reply).
  std::atomic<uint64_t> store_too_large{0}, store_no_memory{0}, http_refused{0};
};

struct McOptions {
  std::vector<Cidr> allow;          // UDP sources and TCP peers allowed (empty: nobody)
  std::size_t udp_max_payload = proto::mc::kUdpMaxPayload;
  std::size_t udp_max_reply = proto::mc::kUdpMaxReply;  // larger replies: "SERVER_ERROR reply too large for UDP"
  uint64_t pool_bytes = 0;  // the pool's size, stats limit_maxbytes (0: what the index's heap can hold)
};

class McEngine;

// One thread's execution context.
class McContext {
 public:
  index::Worker& worker() { return *worker_; }
  McStats& stats() { return stats_; }

 private:
  friend class McEngine;
  index::Worker* worker_ = nullptr;
  McStats stats_;
  std::vector<index::Op> ops;
  std::vector<std::string> values;
  proto::mc::Request req;
  std::string num;
  McStream* stream = nullptr;  // the bound of the process() call running (null: none)
  // Staged classic gets of several UDP datagrams (McEngine::stage_gets):
  // one request each, its ops [first, first + n) in ops, in order.
  struct StagedGet {
    std::size_t tag;
    std::size_t first, n;
    bool with_cas;
    bool last_of_tag;  // the tag's reply is complete after this request
  };
  std::vector<StagedGet> staged_gets;
  std::string staged_reply;
  // Pipelined requests of one process() call gathered into one index burst
  // (batch.cc): one entry per request, its ops [first, first + n) in ops,
  // replied in order once the burst executed.
  struct Batched {
    proto::mc::Cmd cmd;
    bool noreply;
    std::size_t first, n;
    std::string_view key;  // a view into the input being processed
  };
  std::vector<Batched> batch;
  std::size_t batch_get_keys = 0;  // keys of the batch's get-family requests
};

class McEngine {
 public:
  McEngine(index::Index& idx, McOptions opts);
  ~McEngine();

  // A context for index worker `index_worker` (create all before serving),
  // which must be below index_workers().
  McContext& add_context(unsigned index_worker);
  // How many workers the index has (Index::workers()).
  unsigned index_workers() const { return idx_.workers(); }

  // Parses and executes the requests at the front of in, appending replies
  // to out. Returns how many bytes were consumed (a trailing incomplete
  // request is left). *swallow: bytes after the consumed ones that must be
  // discarded (the data of a refused storage command). *close: the
  // connection must close (quit, a long line that is no get). Stops after a close.
  // stream (optional): the output bound, a paused get and a long get line
  // being read (stream.h); a paused get is answered first, and process()
  // stops parsing once out reaches stream->out_limit.
  std::size_t process(McContext& cx, std::string_view in, std::string* out, std::size_t* swallow, bool* close,
                      McStream* stream = nullptr);

  // The same for memcached's binary protocol (TCP connections whose first
  // byte is 0x80). *swallow: the rest of the body of a packet refused as too
  // large. *close: quit, or a packet that cannot be framed.
  std::size_t process_binary(McContext& cx, std::string_view in, std::string* out, std::size_t* swallow,
                             bool* close, McStream* stream = nullptr);

  // Read batching for datagram transports: if every request in `in` is a
  // classic get or gets (complete, well formed), stages their index ops
  // under `tag` and returns true; otherwise stages nothing and returns
  // false (the caller then runs finish_gets, then process). Staged requests
  // see the index as of finish_gets: the caller must finish before it
  // executes anything else, which keeps the order of requests.
  bool stage_gets(McContext& cx, std::string_view in, std::size_t tag);
  // Executes every staged get as one index burst, then calls emit(tag,
  // reply) once per staged tag, in staging order, with its whole reply.
  template <typename Emit>
  void finish_gets(McContext& cx, Emit&& emit);

  // Housekeeping from an idle loop: quiescent state, delayed flush_all.
  void on_idle(McContext& cx);

  bool allowed(const sockaddr_in& peer) const noexcept;
  const McOptions& options() const noexcept { return opts_; }

  // "STAT name value\r\n" lines of the general stats (no END): the
  // registry rendered (stats.cc lists the entries).
  std::string stats_lines() const;
  // The general stats' entries: memcached_registry()'s, then whatever is
  // added here (ferrited includes the native engine's registry, prefixed
  // "ferrite_"); add before serving.
  stats::Registry& stats_registry() noexcept { return stats_; }
  // The memcached front end's own entries alone (the metrics endpoint names
  // them ferrite_memcached_*, beside the native engine's).
  const stats::Registry& memcached_registry() const noexcept { return registry_; }
  std::atomic<uint64_t> curr_connections{0}, total_connections{0}, rejected_connections{0};
  // The most connections the TCP servers accept, summed over them (stats
  // max_connections; each McTcpServer adds its own limit at create).
  std::atomic<uint64_t> max_connections{0};
  std::atomic<uint64_t> accept_paused{0};  // TCP accept paused: out of file descriptors (EMFILE/ENFILE)
  // The most input bytes one TCP connection held (its budget: tcp_io.h).
  std::atomic<uint64_t> tcp_input_peak{0};
  void note_tcp_input(std::size_t held) noexcept {
    uint64_t p = tcp_input_peak.load(std::memory_order_relaxed);
    while (held > p && !tcp_input_peak.compare_exchange_weak(p, held, std::memory_order_relaxed)) {
    }
  }
  uint64_t sum(std::atomic<uint64_t> McStats::*f) const;

 private:
  // batch.cc: on a resumable stream (TCP), process() gathers pipelined
  // classic commands (get family with few keys, storage, delete, incr/decr,
  // touch) into one index burst. batch_add returns false for a request it
  // does not take (the caller flushes, then executes it alone); batch_flush
  // executes the burst and appends the replies, in request order.
  bool batch_add(McContext& cx, const proto::mc::Request& r, std::string* out);
  void batch_flush(McContext& cx, std::string* out);

  // engine.cc
  void execute(McContext& cx, const proto::mc::Request& r, std::string* out, bool* close);
  void flush(McContext& cx);
  void maybe_delayed_flush(McContext& cx);
  // flush_all (text and binary): now, or at now + delay (delay > 0).
  void flush_all(McContext& cx, int64_t delay, uint64_t now);
  // Reads the key's current version; false if absent.
  bool current_version(McContext& cx, std::string_view key, uint64_t* version);
  // cx.values[0], the buffer of single-key reads.
  static std::string& value_slot(McContext& cx);
  // One index burst: touch (if asked) then get of key, value into *value
  // (nullptr: not copied). Returns the get; the touch is cx.ops.front().
  index::Op& touch_get(McContext& cx, std::string_view key, bool touch, uint32_t exptime, std::string* value);

  // classic.cc
  void exec_get(McContext& cx, const proto::mc::Request& r, std::string* out);
  // Answers keys a chunk at a time, within cx.stream's bound (stream.h),
  // then END if `end`.
  void get_keys(McContext& cx, proto::mc::Cmd cmd, uint32_t exptime, std::string_view keys, bool end,
                std::string* out);
  // A long get line (proto::mc::GetLine): its head was cx.req (error: the
  // head's, answered now); the state goes to cx.stream. long_get answers the
  // pieces of it at the front of in and returns the bytes used.
  void start_long_get(McContext& cx, std::string_view error, std::string* out);
  std::size_t long_get(McContext& cx, std::string_view in, std::string* out);
  // Replies ops [first, first + n) without the END line.
  void reply_items(McContext& cx, std::size_t first, std::size_t n, bool with_cas, std::string* out);
  // Frees value buffers grown past kKeptValueCapacity.
  static void release_values(McContext& cx);
  // Replies and counts ops [first, first + n) of cx.ops, executed (get/gets/gat/gats).
  void reply_get(McContext& cx, std::size_t first, std::size_t n, bool with_cas, std::string* out);
  // finish_gets' index burst: every staged op, values into cx.values.
  void execute_staged_gets(McContext& cx);
  void exec_storage(McContext& cx, const proto::mc::Request& r, std::string* out);
  // The storage command's op (views into r), and its reply once executed.
  index::Op storage_op(const proto::mc::Request& r);
  void storage_reply(McContext& cx, proto::mc::Cmd cmd, bool noreply, std::string_view key, Result res,
                     std::string* out);
  // A write refused for its size or for lack of room: counted, and, if
  // `unlink` (memcached's set, ms and binary set do it), the key's old value
  // is deleted, so that a failed overwrite leaves no stale value behind.
  void refuse_store(McContext& cx, std::string_view key, bool too_large, bool unlink);
  void exec_delete(McContext& cx, const proto::mc::Request& r, std::string* out);
  void exec_arith(McContext& cx, const proto::mc::Request& r, std::string* out);
  void exec_touch(McContext& cx, const proto::mc::Request& r, std::string* out);
  // The ops of delete, incr/decr and touch, and their replies once executed
  // (arith_reply: number is the item's value after the op).
  index::Op delete_op(const proto::mc::Request& r);
  void delete_reply(McContext& cx, bool noreply, Result res, std::string* out);
  static index::Op arith_op(const proto::mc::Request& r);
  void arith_reply(McContext& cx, const index::Op& op, bool noreply, Result res, uint64_t number, std::string* out);
  static index::Op touch_op(const proto::mc::Request& r);
  void touch_reply(McContext& cx, const index::Op& op, bool noreply, std::string* out);
  // incr/decr op (text, meta, binary); an absent key is created with
  // `initial` and expiry `exptime` if `create`, the delta applied instead if
  // another client created it meanwhile. *number, *version: the item's after
  // the write. The caller carries the win token (carry_token(op)) if it does.
  Result arith_or_create(McContext& cx, index::Op& op, bool create, uint64_t initial, uint32_t exptime,
                         uint64_t* number, uint64_t* version);

  // meta.cc
  void exec_meta_get(McContext& cx, const proto::mc::Request& r, std::string* out);
  // mg N on a miss: creates the item, decides its win token; g becomes the
  // item's get. Returns the add's result.
  Result meta_vivify(McContext& cx, const proto::mc::Request& r, index::Op& g, uint64_t now, bool* created,
                     bool* win);
  void exec_meta_set(McContext& cx, const proto::mc::Request& r, std::string* out);
  void exec_meta_delete(McContext& cx, const proto::mc::Request& r, std::string* out);
  void exec_meta_arith(McContext& cx, const proto::mc::Request& r, std::string* out);
  void exec_meta_debug(McContext& cx, const proto::mc::Request& r, std::string* out);

  // binary.cc: one handler per opcode family; BinReply builds the response.
  struct BinReply;
  void exec_binary(McContext& cx, const proto::mc::BinRequest& r, std::string* out, bool* close);
  void bin_get(McContext& cx, BinReply& rp);
  void bin_store(McContext& cx, BinReply& rp);
  // A write refused as too large (whether its value was buffered or is
  // being swallowed): "Too large.", and a set unlinks the old value.
  void bin_too_large(McContext& cx, BinReply& rp);
  void bin_delete(McContext& cx, BinReply& rp);
  void bin_arith(McContext& cx, BinReply& rp);
  void bin_flush(McContext& cx, BinReply& rp);
  void bin_concat(McContext& cx, BinReply& rp);
  void bin_stat(BinReply& rp);
  void bin_touch(McContext& cx, BinReply& rp);

  // stats.cc
  void exec_stats(McContext& cx, const proto::mc::Request& r, std::string* out);
  // Calls fn(name, value) for each entry of stats_lines(), in order (binary stat).
  void each_stat(const std::function<void(std::string_view name, std::string_view value)>& fn) const;
  void reset_stats();
  // stats items / slabs / sizes: calls fn(name, value) per entry, in
  // memcached 1.6.18's order (text and binary render them); false for any
  // other section.
  bool each_class_stat(std::string_view section,
                       const std::function<void(std::string_view name, std::string_view value)>& fn) const;
  // stats detail on|off|dump (text); binary: "detail on" etc. as its key.
  void exec_stats_detail(std::string_view arg, std::string* out);
  void register_stats();  // the constructor's last step
  stats::Workers<McStats> stat_workers() const;  // the contexts' McStats

  // A write memcached applies to the item in place (touch, incr/decr, ms I
  // on an older CAS) keeps the item's win token (WinTokens::carry).
  void carry_token(const index::Op& op) {
    if (op.result == Result::kOk) tokens_.carry(op.key, op.out_prev_version, op.out_version);
  }

  index::Index& idx_;
  McOptions opts_;
  uint64_t start_unix_ = 0;
  std::vector<std::unique_ptr<McContext>> contexts_;
  std::atomic<uint64_t> flush_at_{0};  // delayed flush_all deadline (unix seconds), 0 = none
  stats::Registry registry_;  // memcached's entries (register_stats)
  stats::Registry stats_;     // registry_ included, then what ferrited adds
  WinTokens tokens_;
  PrefixStats prefix_stats_;  // stats detail (prefix_stats.h)
};

template <typename Emit>
void McEngine::finish_gets(McContext& cx, Emit&& emit) {
  if (cx.staged_gets.empty()) return;
  execute_staged_gets(cx);
  std::string& reply = cx.staged_reply;
  reply.clear();
  for (const McContext::StagedGet& g : cx.staged_gets) {
    reply_get(cx, g.first, g.n, g.with_cas, &reply);
    if (g.last_of_tag) {
      emit(g.tag, static_cast<const std::string&>(reply));
      reply.clear();
    }
  }
  cx.staged_gets.clear();
  cx.ops.clear();
  release_values(cx);
  if (reply.capacity() > kKeptValueCapacity) std::string().swap(reply);
}

}  // namespace ferrite::server
