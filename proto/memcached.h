// memcached's text protocol (classic and meta commands) as pure functions
// over bytes: parse one request from the front of a buffer; the binary
// protocol's header. The UDP frame header is in memcached_udp.h (included).
// No sockets, no index: server/memcached/ executes what this decodes.
// Semantics and reply strings follow memcached 1.6's protocol.txt
// (docs/memcached.md lists what Ferrite does differently).
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

#include "common/limits.h"
#include "proto/exptime.h"
#include "proto/mc_numbers.h"
#include "proto/memcached_udp.h"

namespace ferrite::proto::mc {

// memcached's limits are ours (KEY_MAX_LENGTH, the default item_size_max).
using limits::kMaxKeyLen;
using limits::kMaxValueLen;
// Longer lines: a get-family line is answered while it arrives (a "long
// get", parse_get_part); any other closes the connection, as memcached does.
inline constexpr std::size_t kMaxLineLen = 64u << 10;
// Spaces allowed before the command of a long get (memcached's 100).
inline constexpr std::size_t kMaxLongGetIndent = 100;
// A storage command refused for its length has its data block swallowed
// (memcached's way to keep the stream in sync) up to this length; a longer
// one (no memcached item can be larger: its -I stops at 1 GiB) closes the
// connection instead, so no length makes Ferrite discard gigabytes.
inline constexpr std::size_t kMaxSwallow = 1u << 30;
inline constexpr std::size_t kMaxOpaqueLen = 32;
inline constexpr std::size_t kMaxMetaFlags = 24;
// Largest reply to one UDP request (before framing): a larger one is not
// built; the request is answered "SERVER_ERROR reply too large for UDP".
// One item of kMaxValueLen fits with room to spare.
inline constexpr std::size_t kUdpMaxReply = 2 * kMaxValueLen;

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
  std::string_view stats_arg2;   // stats: the second argument ("stats detail on")
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
  kLongGet,   // a get-family line with no "\n" in kMaxLineLen bytes: see GetLine
};

struct ParseResult {
  Parse status = Parse::kNeedMore;
  std::size_t consumed = 0;
  std::string_view error;    // the reply line without "\r\n" (a string literal)
  std::size_t swallow = 0;   // data block of a refused storage command still to discard
  bool close = false;        // the connection cannot continue (a long line that is no get, a data block past kMaxSwallow, HTTP)
  bool quiet = false;        // no reply: the line ended in "noreply", or it closes the connection
  // A storage command (classic or ms) refused because its data block is
  // larger than kMaxValueLen: req->cmd, req->key (and ms's req->mode) are
  // set, so the engine can unlink the old value as memcached does.
  bool too_large = false;
  // The line looks like HTTP (memcached 1.6.18's rule: a command it does
  // not know whose last token starts with "HTTP/"): close (TCP) or drop
  // (UDP) without a reply byte; `error` is empty.
  bool http = false;
};

// Parses the request at the front of in. Never reads past in; never trusts
// a length before checking it. kLongGet: `consumed` covers the line's head
// (command, and gat's exptime in req->exptime), req->cmd is the command;
// the rest of the line goes to parse_get_part, unless `error` is set (gat's
// exptime is no number): then it is answered and the line discarded
// (GetLine::failed).
ParseResult parse_request(std::string_view in, Request* req) noexcept;

// A get/gets/gat/gats line longer than kMaxLineLen (a "long get", issue 17)
// is answered while it arrives, so that a connection never holds it whole:
// each piece's complete keys are answered, the partial last key stays in
// the input for the next read. The reply is memcached's (VALUE lines in key
// order, one END) except after an error: memcached answers a line holding a
// key over kMaxKeyLen with the error alone; here the keys of the pieces
// before it have been answered already, then comes the error, and the rest
// of the line is discarded. The state of one long get line:
struct GetLine {
  Cmd cmd = Cmd::kGet;
  int64_t exptime = 0;     // gat/gats, as sent
  bool keys_seen = false;  // a key of the line has been seen
  bool failed = false;     // an error was answered: the rest of the line is discarded
};
struct GetPart {
  std::size_t consumed = 0;  // bytes of the line used (0: wait for more bytes)
  std::string_view keys;     // complete keys to answer now, space separated (a view into in)
  std::string_view error;    // the error to answer instead (a literal); then the line is discarded
  bool end = false;          // the line ended here: END follows keys (unless it failed: no END)
};
// Reads the next piece of a long get line at the front of in (its head was
// consumed by parse_request): looks at most kMaxLineLen bytes ahead, leaves
// a partial key of at most kMaxKeyLen bytes unconsumed.
GetPart parse_get_part(std::string_view in, GetLine* line) noexcept;

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

// memcached's exptime rule (proto/exptime.h).
using proto::absolute_exptime;

// Standard base64 (RFC 4648, with padding). decode returns false on bad
// input or if the result does not fit out_cap.
bool base64_decode(std::string_view in, char* out, std::size_t out_cap, std::size_t* out_len) noexcept;
void base64_encode(std::string_view in, std::string* out);

// Numeric arguments: proto/mc_numbers.h (included).

// The UDP frame header and udp_fragment: proto/memcached_udp.h.

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
// kTooLarge: the body is beyond max_body but the packet can be framed; its
// header, extras and key are decoded (value empty, *consumed covers them),
// and the rest of the body, body_len - extras - key bytes, is still to come.
enum class BinParse : uint8_t { kOk, kNeedMore, kBad, kTooLarge };
// Decodes one request packet at the front of in: kBad if the magic is not a
// request's or the lengths do not add up.
BinParse parse_binary(std::string_view in, std::size_t max_body, BinRequest* req, std::size_t* consumed) noexcept;
void append_binary_header(const BinHeader& h, std::string* out);

}  // namespace ferrite::proto::mc
