// parse_host_port (see address.h).
#include "common/address.h"

#include <fmt/format.h>

#include <charconv>

namespace ferrite {

StatusOr<HostPort> parse_host_port(std::string_view text, std::optional<uint16_t> default_port) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(fmt::format("\"{}\" is not HOST:PORT ({})", text, why));
  };
  const std::size_t colon = text.rfind(':');
  HostPort hp;
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.empty()) return bad("the host is empty");
  if (colon == std::string_view::npos) {
    if (!default_port) return bad("the port is missing");
    hp.port = *default_port;
    return hp;
  }
  const std::string_view p = text.substr(colon + 1);
  unsigned v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
    return bad("the port must be 1..65535");
  }
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

}  // namespace ferrite
