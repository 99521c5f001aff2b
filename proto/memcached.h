// memcached's text protocol (classic and meta commands) as pure functions
// over bytes: parse one request from the front of a buffer, and the UDP
// frame header. No sockets, no index: server/memcached/ executes what
// this decodes. Semantics and reply strings follow memcached 1.6's
// protocol.txt (docs/memcached.md lists what Ferrite does differently).
//
// A request is a command line ending in "\n" (usually "\r\n"), tokens
// separated by spaces; storage commands (set, add, ..., ms) carry a data
// block of the announced length followed by "\r\n". Keys are bytes: up to
// 250, no spaces or line ends; anything else is allowed (memaslap sends
// binary keys).
//
// Thread safety: stateless functions; a Request is a value owned by one
// thread, valid while the parsed buffer is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferrite::proto::mc {

inline constexpr std::size_t kMaxKeyLen = 250;
inline constexpr std::size_t kMaxValueLen = 1u << 20;   // memcached's default item_size_max
inline constexpr std::size_t kMaxLineLen = 64u << 10;   // longer lines: error, connection closed
inline constexpr std::size_t kMaxOpaqueLen = 32;
inline constexpr std::size_t kMaxMetaFlags = 24;
inline constexpr std::size_t kUdpHeaderSize = 8;
inline constexpr std::size_t kUdpMaxPayload = 1400;     // reply bytes per datagram after the header
// Largest reply to one UDP request (before framing): a larger one is not
// built; the request is answered "SERVER_ERROR reply too large for UDP".
// One item of kMaxValueLen fits with room to spare.
inline constexpr std::size_t kUdpMaxReply = 2u << 20;

enum class Cmd : uint8_t {
  kGet, kGets, kGat, kGats,
  kSet, kAdd, kReplace, kAppend, kPrepend, kCas,
  kDelete, kIncr, kDecr, kTouch,
  kFlushAll, kVersion, kVerbosity, kStats, kQuit,
  kMetaGet, kMetaSet, kMetaDelete, kMetaArith, kMetaNoop, kMetaDebug,
};
std::string_view cmd_name(Cmd c) noexcept;
inline bool is_storage(Cmd c) noexcept { return c >= Cmd::kSet && c <= Cmd::kCas; }

// One meta flag as sent: its letter and the token glued to it ("T30" -> 'T', "30").
struct MetaFlag {
  char flag = 0;
  std::string_view token;
};

// ms mode (M token) and ma mode.
enum class MetaMode : uint8_t { kSet, kAdd, kAppend, kPrepend, kReplace, kIncr, kDecr };

struct Request {
  Cmd cmd = Cmd::kVersion;
  std::string_view key;          // single-key commands; for meta with 'b', the decoded bytes
  std::string_view raw_key;      // the key as sent (meta 'k' echoes it)
  std::string_view keys;         // get/gets/gat/gats: the keys, space separated (see KeyIter)
  std::string_view data;         // storage commands: the data block (without its "\r\n")
  uint32_t client_flags = 0;
  int64_t exptime = 0;           // as sent: 0 never, <0 expired, <=30 days relative, else unix time
  bool has_exptime = false;      // meta: a T token was given
  uint64_t cas = 0;              // cas command, meta C token
  bool has_cas = false;
  uint64_t delta = 1;            // incr/decr, ma D token
  uint64_t initial = 0;          // ma J token
  int64_t vivify_ttl = 0;        // ma / mg N token
  bool has_vivify = false;
  int64_t recache_ttl = 0;       // mg R token: win token if the TTL left is below it
  bool has_recache = false;
  int64_t number = 0;            // verbosity level, flush_all delay
  bool noreply = false;          // classic "noreply"; meta 'q' is in flags
  std::string_view stats_arg;    // stats: the first argument ("" for none)
  bool base64 = false;           // meta 'b'
  MetaMode mode = MetaMode::kSet;
  std::array<MetaFlag, kMaxMetaFlags> flags{};
  uint8_t nflags = 0;
  std::array<char, kMaxKeyLen> key_buf{};  // decoded base64 key

  bool has(char f) const noexcept { return find(f) != nullptr; }
  const MetaFlag* find(char f) const noexcept {
    for (uint8_t i = 0; i < nflags; ++i) {
      if (flags[i].flag == f) return &flags[i];
    }
    return nullptr;
  }
};

enum class Parse : uint8_t {
  kOk,        // *req filled; consumed bytes form the request
  kNeedMore,  // the request is not complete yet (wait for more bytes)
  kError,     // error reply in `error`; drop consumed bytes, then `swallow` more
};

struct ParseResult {
  Parse status = Parse::kNeedMore;
  std::size_t consumed = 0;
  std::string_view error;    // the reply line without "\r\n" (a string literal)
  std::size_t swallow = 0;   // data block of a refused storage command still to discard
  bool close = false;        // the connection cannot continue (line too long)
  bool quiet = false;        // the line ended in "noreply": memcached sends no error either
};

// Parses the request at the front of in. Never reads past in; never trusts
// a length before checking it.
ParseResult parse_request(std::string_view in, Request* req) noexcept;

// Iterates the keys of a get-family request.
class KeyIter {
 public:
  explicit KeyIter(std::string_view keys) noexcept : rest_(keys) {}
  bool next(std::string_view* key) noexcept;
  // The keys not returned yet (may be only spaces).
  std::string_view rest() const noexcept { return rest_; }
  bool done() const noexcept { return rest_.find_first_not_of(' ') == std::string_view::npos; }

 private:
  std::string_view rest_;
};

// memcached's exptime rule: 0 never; negative already expired; up to 30
// days relative to now; beyond, an absolute unix time. Returns the absolute
// unix time for the index (0 = never, 1 = long past).
uint32_t absolute_exptime(int64_t exptime, uint64_t now_unix) noexcept;

// Standard base64 (RFC 4648, with padding). decode returns false on bad
// input or if the result does not fit out_cap.
bool base64_decode(std::string_view in, char* out, std::size_t out_cap, std::size_t* out_len) noexcept;
void base64_encode(std::string_view in, std::string* out);

// Parses a decimal u64 the way memcached's numeric arguments must look:
// digits only, no sign, no overflow.
bool parse_u64(std::string_view s, uint64_t* v) noexcept;
bool parse_i64(std::string_view s, int64_t* v) noexcept;

// UDP frame header: four big-endian u16.
struct UdpHeader {
  uint16_t request_id = 0;
  uint16_t seq = 0;
  uint16_t count = 1;
  uint16_t reserved = 0;
};
bool decode_udp_header(std::string_view dgram, UdpHeader* h) noexcept;
void encode_udp_header(const UdpHeader& h, uint8_t* out) noexcept;  // writes kUdpHeaderSize bytes

// Cuts a reply into datagrams of at most kUdpHeaderSize + max_payload
// bytes, each with the request id and seq/count filled in, and calls
// emit(span of bytes) for each. An empty reply emits nothing. Returns the
// number of datagrams, 0 if more than 65535 would be needed.
template <typename Emit>
std::size_t udp_fragment(uint16_t request_id, std::string_view reply, std::size_t max_payload, std::string* scratch,
                         Emit&& emit) {
  if (reply.empty() || max_payload == 0) return 0;
  const std::size_t n = (reply.size() + max_payload - 1) / max_payload;
  if (n > 65535) return 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = i * max_payload;
    const std::size_t len = reply.size() - off < max_payload ? reply.size() - off : max_payload;
    scratch->resize(kUdpHeaderSize + len);
    UdpHeader h{request_id, static_cast<uint16_t>(i), static_cast<uint16_t>(n), 0};
    encode_udp_header(h, reinterpret_cast<uint8_t*>(scratch->data()));
    scratch->replace(kUdpHeaderSize, len, reply.data() + off, len);
    emit(std::string_view(*scratch));
  }
  return n;
}

// memcached's binary protocol (deprecated upstream; spoken on TCP so that
// binary clients and memccapable's binary tests work): 24-byte big-endian
// header, then extras, key and value.
inline constexpr std::size_t kBinHeaderSize = 24;
inline constexpr uint8_t kBinRequestMagic = 0x80;
inline constexpr uint8_t kBinResponseMagic = 0x81;
// The opcodes Ferrite answers (memcached's protocol_binary.h; the Q forms
// are quiet: no reply on success, or on a miss for gets). Any other opcode
// is answered BinStatus::kUnknown.
enum class BinOp : uint8_t {
  kGet = 0x00, kSet = 0x01, kAdd = 0x02, kReplace = 0x03, kDelete = 0x04, kIncrement = 0x05,
  kDecrement = 0x06, kQuit = 0x07, kFlush = 0x08, kGetQ = 0x09, kNoop = 0x0a, kVersion = 0x0b,
  kGetK = 0x0c, kGetKQ = 0x0d, kAppend = 0x0e, kPrepend = 0x0f, kStat = 0x10, kSetQ = 0x11,
  kAddQ = 0x12, kReplaceQ = 0x13, kDeleteQ = 0x14, kIncrementQ = 0x15, kDecrementQ = 0x16, kQuitQ = 0x17,
  kFlushQ = 0x18, kAppendQ = 0x19, kPrependQ = 0x1a, kVerbosity = 0x1b, kTouch = 0x1c, kGat = 0x1d,
  kGatQ = 0x1e, kGatK = 0x23, kGatKQ = 0x24,
};
// Response statuses Ferrite sends (the header's status field of a response).
enum class BinStatus : uint16_t {
  kOk = 0x0000,
  kNotFound = 0x0001,
  kExists = 0x0002,
  kTooBig = 0x0003,
  kInvalid = 0x0004,
  kNotStored = 0x0005,
  kNotNumeric = 0x0006,
  kUnknown = 0x0081,
  kNoMemory = 0x0082,
};
// memcached 1.6.18's message (the value of an error response); "" for kOk.
std::string_view bin_status_message(BinStatus s) noexcept;
struct BinHeader {
  uint8_t magic = 0;
  uint8_t opcode = 0;        // a BinOp in requests Ferrite answers; echoed in the response
  uint16_t key_len = 0;
  uint8_t extras_len = 0;
  uint8_t data_type = 0;
  uint16_t status = 0;       // a BinStatus in responses; vbucket in requests
  uint32_t body_len = 0;     // extras + key + value
  uint32_t opaque = 0;
  uint64_t cas = 0;
};
struct BinRequest {
  BinHeader h;
  std::string_view extras, key, value;
};
enum class BinParse : uint8_t { kOk, kNeedMore, kBad };
// Decodes one request packet at the front of in: kBad if the magic is not a
// request's, the lengths do not add up, or the body is beyond max_body.
BinParse parse_binary(std::string_view in, std::size_t max_body, BinRequest* req, std::size_t* consumed) noexcept;
void append_binary_header(const BinHeader& h, std::string* out);

}  // namespace ferrite::proto::mc
