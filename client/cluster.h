// ClusterClient: one Client per server, keys placed by ketama consistent
// hashing (libmemcached-compatible, see ketama.h). A batch is split by
// server, sent to each, and the replies put back in request order.
//
// Thread safety: one thread at a time, like Client.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/ketama.h"

namespace ferrite::client {

class ClusterClient {
 public:
  // servers: "host:port" each.
  static StatusOr<std::unique_ptr<ClusterClient>> connect(const std::vector<std::string>& servers,
                                                          const ClientOptions& opts = {});

  Status execute(std::span<const proto::RequestOp> ops, std::vector<Reply>* replies);
  StatusOr<proto::OpStatus> get(std::string_view key, Reply* out);
  StatusOr<proto::OpStatus> set(std::string_view key, std::string_view value, uint32_t flags = 0, uint32_t exptime = 0);
  StatusOr<proto::OpStatus> del(std::string_view key);

  const KetamaRing& ring() const noexcept { return ring_; }
  Client& server(std::size_t i) { return *clients_[i]; }

 private:
  explicit ClusterClient(std::vector<std::string> servers) : ring_(std::move(servers)) {}
  KetamaRing ring_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace ferrite::client
