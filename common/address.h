// The one address syntax of Ferrite's programs: HOST:PORT (ferritectl
// --server, ferrite-bench --server, the client library's server lists).
// HOST is an IPv4 address or a name (the caller resolves it); PORT is
// 1..65535. A bare HOST is accepted where the caller has a default port.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferrite {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "127.0.0.1:11311" -> {127.0.0.1, 11311}. Without ":PORT", default_port
// if given, else an error. Errors quote the text and say what was expected.
StatusOr<HostPort> parse_host_port(std::string_view text, std::optional<uint16_t> default_port = std::nullopt);

}  // namespace ferrite
