// memcached over UDP: McUdpHandler, the PacketHandler a backend (kernel
// sockets or DPDK) hands the datagrams of the memcached port to.
//
// Thread safety: handler worker w is called by one thread only and uses its
// own McContext and buffers (index w); McEngine is shared.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "net/handler.h"
#include "server/memcached/engine.h"

namespace ferrite::server {

// memcached over UDP: one request datagram (8-byte frame header, count 1)
// per request; replies cut into datagrams of at most 1400 payload bytes. A
// reply over McOptions::udp_max_reply is not built: the request is answered
// "SERVER_ERROR reply too large for UDP" (ferrite_udp_reply_too_large).
// Handler worker w uses the context of index worker first_index_worker + w
// (which must exist: checked, FERRITE_CHECK).
class McUdpHandler : public net::PacketHandler {
 public:
  McUdpHandler(McEngine& mc, unsigned first_index_worker, unsigned workers);
  void on_burst(unsigned worker, std::span<const net::Datagram> in, net::TxQueue& out) override;
  void on_idle(unsigned worker) override;

 private:
  McEngine& mc_;
  std::vector<McContext*> cx_;
  std::vector<std::string> reply_, scratch_;
};

}  // namespace ferrite::server
