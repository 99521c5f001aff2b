// ClusterClient (see cluster.h).
#include "client/cluster.h"

#include <fmt/format.h>

#include "common/address.h"

namespace ferrite::client {

StatusOr<std::unique_ptr<ClusterClient>> ClusterClient::connect(const std::vector<std::string>& servers,
                                                                const ClientOptions& opts) {
  if (servers.empty()) return Status::invalid_argument("no servers given");
  std::unique_ptr<ClusterClient> cc(new ClusterClient(servers));
  for (const std::string& s : servers) {
    auto addr = parse_host_port(s);
    if (!addr) return addr.status();
    auto c = Client::connect(addr->host, addr->port, opts);
    if (!c) return c.status();
    cc->clients_.push_back(std::move(c).value());
  }
  return cc;
}

Status ClusterClient::execute(std::span<const proto::RequestOp> ops, std::vector<Reply>* replies) {
  replies->assign(ops.size(), Reply{});
  std::vector<std::vector<std::size_t>> by_server(clients_.size());
  for (std::size_t i = 0; i < ops.size(); ++i) by_server[ring_.server_index(ops[i].key)].push_back(i);
  std::vector<proto::RequestOp> part;
  std::vector<Reply> got;
  for (std::size_t s = 0; s < clients_.size(); ++s) {
    if (by_server[s].empty()) continue;
    part.clear();
    for (std::size_t i : by_server[s]) {
      part.push_back(ops[i]);
      part.back().op_flags &= static_cast<uint16_t>(~proto::kOpQuiet);  // one reply per op, to map them back
    }
    FERRITE_RETURN_IF_ERROR(clients_[s]->execute(part, &got).with_context(ring_.servers()[s]));
    if (got.size() != part.size()) return Status::corruption("server " + ring_.servers()[s] + " skipped replies");
    for (std::size_t k = 0; k < got.size(); ++k) (*replies)[by_server[s][k]] = std::move(got[k]);
  }
  return Status::ok();
}

StatusOr<proto::OpStatus> ClusterClient::get(std::string_view key, Reply* out) {
  return clients_[ring_.server_index(key)]->get(key, out);
}
StatusOr<proto::OpStatus> ClusterClient::set(std::string_view key, std::string_view value, uint32_t flags,
                                           uint32_t exptime) {
  return clients_[ring_.server_index(key)]->set(key, value, flags, exptime);
}
StatusOr<proto::OpStatus> ClusterClient::del(std::string_view key) { return clients_[ring_.server_index(key)]->del(key); }

}  // namespace ferrite::client
