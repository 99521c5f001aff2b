// The memcached UDP protocol as memcached's clients speak it: the frame
// header (proto/memcached_udp.h), then text protocol bytes. Requests fit one
// datagram; a reply may span several (seq 0..count-1).
//
// Request builders, reply parsing and a small reply assembler; no sockets.
// Thread safety: stateless functions; an assembler belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/memcached_udp.h"

namespace ferrite::bench::mc {

// Most datagrams one reply may span: a 1 MiB value at 1400 bytes each is ~750.
inline constexpr uint16_t kMaxReplyDatagrams = 1024;

// Appends a whole request datagram (frame + text): "get <key>\r\n".
void append_get(std::vector<uint8_t>* out, uint16_t request_id, std::string_view key);
// "set <key> <flags> <exptime> <bytes>\r\n<value>\r\n".
void append_set(std::vector<uint8_t>* out, uint16_t request_id, std::string_view key, std::string_view value,
                uint32_t flags = 0, uint32_t exptime = 0);

enum class ReplyKind : uint8_t {
  kHit,         // VALUE <key> <flags> <bytes> [cas]\r\n<data>\r\nEND\r\n
  kMiss,        // END\r\n
  kStored,      // STORED\r\n
  kNotStored,   // NOT_STORED / EXISTS / NOT_FOUND
  kError,       // ERROR / CLIENT_ERROR ... / SERVER_ERROR ...
  kIncomplete,  // a prefix of a valid reply: more bytes are needed
  kMalformed,   // none of the above
};

struct Reply {
  ReplyKind kind = ReplyKind::kMalformed;
  std::string_view key;    // kHit
  std::string_view value;  // kHit
  uint32_t flags = 0;      // kHit
};

// Parses one complete reply to a single get or a storage command. Views in
// *out point into text.
ReplyKind parse_reply(std::string_view text, Reply* out) noexcept;

// Collects the datagrams of one reply (keyed by the caller on request id).
class ReplyAssembler {
 public:
  // Adds a datagram's payload; true when every datagram 0..count-1 is in
  // (then text() is the reply). A datagram whose count disagrees with the
  // first one's or exceeds kMaxReplyDatagrams, or a duplicate, is ignored and
  // counted in rejected().
  bool add(const proto::mc::UdpHeader& f, std::span<const uint8_t> payload);
  std::string_view text() const noexcept { return text_; }
  uint64_t rejected() const noexcept { return rejected_; }
  void reset();

 private:
  uint16_t count_ = 0;
  uint16_t have_n_ = 0;
  std::vector<std::string> parts_;
  std::vector<uint8_t> have_;
  std::string text_;
  uint64_t rejected_ = 0;
};

}  // namespace ferrite::bench::mc
