// memcached over UDP (see udp.h).
//
// Thread safety: on_burst/on_idle of worker w run on one thread, with the
// McContext and buffers of w.
#include "server/memcached/udp.h"

#include "server/memcached/internal.h"

namespace ferrite::server {
using namespace mc_detail;

McUdpHandler::McUdpHandler(McEngine& mc, unsigned first_index_worker, unsigned workers)
    : mc_(mc), reply_(workers), scratch_(workers) {
  // Precondition (ferrited's config check: workers x 2 + tcp_workers index
  // workers): every handler worker has its own index worker.
  FERRITE_CHECK(uint64_t{first_index_worker} + workers <= mc.index_workers());
  for (unsigned w = 0; w < workers; ++w) cx_.push_back(&mc.add_context(first_index_worker + w));
}

void McUdpHandler::on_idle(unsigned worker) { mc_.on_idle(*cx_[worker]); }

void McUdpHandler::on_burst(unsigned worker, std::span<const net::Datagram> in, net::TxQueue& out) {
  McContext& cx = *cx_[worker];
  McStats& st = cx.stats();
  std::string& reply = reply_[worker];
  const std::size_t max_reply = mc_.options().udp_max_reply;
  // Replies to datagram d under its request id; a reply over max_reply is
  // replaced by an error (counted), as is one whose building was stopped.
  auto send = [&](const net::Datagram& d, uint16_t request_id, const std::string& full, bool too_large) {
    static const std::string kTooLarge = "SERVER_ERROR reply too large for UDP\r\n";
    if (too_large || full.size() > max_reply) inc(st.udp_reply_too_large);
    const std::string& r = too_large || full.size() > max_reply ? kTooLarge : full;
    const std::size_t n = proto::mc::udp_fragment(request_id, r, mc_.options().udp_max_payload, &scratch_[worker],
                                                  [&](std::string_view b) {
                                                    out.push(d.peer, std::span<const uint8_t>(
                                                                         reinterpret_cast<const uint8_t*>(b.data()), b.size()));
                                                  });
    inc(st.udp_reply_datagrams, n);
    inc(st.bytes_written, r.size());
  };
  // A staged datagram's tag is its index in the burst; its header was checked when staged.
  auto finish = [&] {
    mc_.finish_gets(cx, [&](std::size_t i, const std::string& r) {
      proto::mc::UdpHeader h;
      (void)proto::mc::decode_udp_header(
          std::string_view(reinterpret_cast<const char*>(in[i].payload.data()), in[i].payload.size()), &h);
      send(in[i], h.request_id, r, false);
    });
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const net::Datagram& d = in[i];
    if (!mc_.allowed(d.peer)) {
      inc(st.udp_drop_not_allowed);
      continue;
    }
    const std::string_view dg(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
    proto::mc::UdpHeader h;
    if (!proto::mc::decode_udp_header(dg, &h)) {
      inc(st.udp_drop_short);
      continue;
    }
    // Requests must fit one datagram (memcached drops the others too); the
    // reserved field is ignored (memaslap sends 0x0100).
    if (h.count != 1 || h.seq != 0) {
      inc(st.udp_drop_multi);
      continue;
    }
    inc(st.udp_requests);
    const std::string_view body = dg.substr(proto::mc::kUdpHeaderSize);
    // Datagrams of classic gets only (the common case) go to the index
    // together; anything else first lets the staged ones finish, so every
    // request sees the writes of the requests before it.
    if (mc_.stage_gets(cx, body, i)) {
      inc(st.udp_batched_requests);
      continue;
    }
    finish();
    reply.clear();
    std::size_t swallow = 0;
    bool close = false;
    McStream bound;
    bound.out_limit = max_reply;
    bound.resumable = false;
    const uint64_t http_before = st.http_refused.load(std::memory_order_relaxed);
    const std::size_t used = mc_.process(cx, body, &reply, &swallow, &close, &bound);
    if (used < body.size() && !close && swallow == 0 && !bound.too_large) inc(st.udp_incomplete);  // cut short: ignored
    // A line that looks like HTTP (process() counted it on this context)
    // makes memcached drop the datagram's whole reply; quit does not.
    if (st.http_refused.load(std::memory_order_relaxed) == http_before) send(d, h.request_id, reply, bound.too_large);
    if (reply.capacity() > kKeptValueCapacity) std::string().swap(reply);
  }
  finish();
}

}  // namespace ferrite::server
