// Test helper: a memcached binary-protocol request packet (header, extras,
// key, value), as a client sends it, for tests of the binary protocol.
//
// Thread safety: a stateless function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proto/memcached.h"

namespace ferrite::testing {

inline std::string bin_request(proto::mc::BinOp opcode, std::string_view extras, std::string_view key,
                               std::string_view value, uint32_t opaque, uint64_t cas = 0) {
  proto::mc::BinHeader h;
  h.magic = proto::mc::kBinRequestMagic;
  h.opcode = static_cast<uint8_t>(opcode);
  h.key_len = static_cast<uint16_t>(key.size());
  h.extras_len = static_cast<uint8_t>(extras.size());
  h.body_len = static_cast<uint32_t>(extras.size() + key.size() + value.size());
  h.opaque = opaque;
  h.cas = cas;
  std::string s;
  proto::mc::append_binary_header(h, &s);
  return s.append(extras).append(key).append(value);
}

}  // namespace ferrite::testing
