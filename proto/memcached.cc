// memcached text protocol parser (see memcached.h). Reply strings are
// memcached 1.6's, checked against memcached 1.6.18 on this machine.
#include "proto/memcached.h"

#include <cstring>

#include "common/endian.h"
#include "proto/mc_numbers.h"

namespace ferrite::proto::mc {
namespace {

constexpr std::string_view kError = "ERROR";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";
constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument";
constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta argument";
constexpr std::string_view kBadDeleteUsage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
constexpr std::string_view kInvalidFlag = "CLIENT_ERROR invalid flag";
constexpr std::string_view kDuplicateFlag = "CLIENT_ERROR duplicate flag";
constexpr std::string_view kInvalidOrDuplicate = "CLIENT_ERROR invalid or duplicate flag";
constexpr std::string_view kBadToken = "CLIENT_ERROR bad token in command line format";
constexpr std::string_view kOpaqueTooLong = "CLIENT_ERROR opaque token too long";
constexpr std::string_view kBadKeyDecode = "CLIENT_ERROR error decoding key";
constexpr std::string_view kBadMsMode = "CLIENT_ERROR invalid mode for ms M token";
constexpr std::string_view kBadMaMode = "CLIENT_ERROR invalid mode for ma M token";
constexpr std::string_view kFlagsTooLong = "CLIENT_ERROR options flags too long";
constexpr std::string_view kFlagsAreTooLong = "CLIENT_ERROR options flags are too long";  // mg's wording

constexpr std::size_t kMaxTokens = 32;

struct Tokens {
  std::array<std::string_view, kMaxTokens> t;
  std::size_t n = 0;
  bool overflow = false;
};

void tokenize(std::string_view line, Tokens* out) {
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) break;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (out->n == kMaxTokens) {
      out->overflow = true;
      return;
    }
    out->t[out->n++] = line.substr(i, j - i);
    i = j;
  }
}

ParseResult ok(std::size_t consumed) { return ParseResult{Parse::kOk, consumed, {}, 0, false}; }
ParseResult err(std::string_view e, std::size_t consumed, std::size_t swallow = 0) {
  return ParseResult{Parse::kError, consumed, e, swallow, false};
}
ParseResult need_more() { return ParseResult{Parse::kNeedMore, 0, {}, 0, false}; }

bool valid_key(std::string_view k) { return !k.empty() && k.size() <= kMaxKeyLen; }

// The data block of a storage command: `len` bytes after the line, then "\r\n".
ParseResult take_data(std::string_view in, std::size_t linelen, std::size_t len, Request* req) {
  if (in.size() < linelen + len + 2) return need_more();
  if (in[linelen + len] != '\r' || in[linelen + len + 1] != '\n') return err(kBadChunk, linelen + len + 2);
  req->data = in.substr(linelen, len);
  return ok(linelen + len + 2);
}

// A storage command refused with error e: its data block of n bytes is
// swallowed (memcached's way to stay in sync), or, beyond kMaxSwallow, the
// connection closes.
ParseResult refuse_block(std::string_view e, std::size_t linelen, std::size_t n) {
  if (n > kMaxSwallow) {
    ParseResult r = err(e, linelen);
    r.close = true;
    return r;
  }
  return err(e, linelen, n + 2);
}

ParseResult refuse_too_large(std::size_t linelen, std::size_t n) {
  ParseResult r = refuse_block(kTooLarge, linelen, n);
  r.too_large = true;
  return r;
}

ParseResult parse_storage(std::string_view in, std::size_t linelen, const Tokens& tk, Cmd cmd, Request* req) {
  const bool cas = cmd == Cmd::kCas;
  const std::size_t base = cas ? 6 : 5;
  if (tk.n != base && tk.n != base + 1) return err(kError, linelen);
  req->key = req->raw_key = tk.t[1];
  std::size_t n = 0;
  // memcached 1.6.18 refuses all of these alike, and swallows nothing: the
  // data block is read as the next command line.
  if (!valid_key(req->key) || !read_uint32(tk.t[2], &req->client_flags) || !read_int32(tk.t[3], &req->exptime) ||
      !read_length(tk.t[4], &n) || (cas && !read_uint64(tk.t[5], &req->cas))) {
    return err(kBadFormat, linelen);
  }
  req->has_cas = cas;
  req->noreply = tk.n == base + 1 && tk.t[base] == "noreply";
  if (n > kMaxValueLen) return refuse_too_large(linelen, n);
  return take_data(in, linelen, n, req);
}

ParseResult parse_get(std::string_view line, std::size_t linelen, const Tokens& tk, Cmd cmd, Request* req) {
  const bool touch = cmd == Cmd::kGat || cmd == Cmd::kGats;
  const std::size_t first = touch ? 2 : 1;
  if (tk.n < 2) return err(kError, linelen);
  if (touch && !read_int32(tk.t[1], &req->exptime)) return err(kBadExptime, linelen);
  if (tk.n <= first) return ok(linelen);  // "gat 10": no key, memcached answers END
  // Keys run from the first key token to the end of the line (there may be
  // more of them than tokenize() keeps).
  const std::size_t start = static_cast<std::size_t>(tk.t[first].data() - line.data());
  req->keys = line.substr(start);
  KeyIter it(req->keys);
  std::string_view k;
  while (it.next(&k)) {
    if (!valid_key(k)) return err(kBadFormat, linelen);
  }
  return ok(linelen);
}

bool is_flag_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Which flags each meta command supports here. memcached 1.6.18 refuses E
// (all commands) and x (md) too; h and l on mg are the flags it knows that
// Ferrite refuses (docs/memcached.md says why).
std::string_view allowed_flags(Cmd c) {
  switch (c) {
    case Cmd::kMetaGet: return "bcfkNOqRstuvT";
    case Cmd::kMetaSet: return "bcCFIkOqMNT";
    case Cmd::kMetaDelete: return "bCIkOqT";  // T: memcached applies it only with I, else ignores it
    case Cmd::kMetaArith: return "bcCNJDTMOqtvk";
    case Cmd::kMetaDebug: return "b";
    default: return "";
  }
}

// Parses the flags of a meta command from tokens [from, n). On error
// returns the error string; swallow is decided by the caller.
std::string_view parse_meta_flags(const Tokens& tk, std::size_t from, Cmd cmd, Request* req) {
  const bool arith = cmd == Cmd::kMetaArith;
  // memcached 1.6.18's ma and md answer every flag error with one string.
  const bool one_error = arith || cmd == Cmd::kMetaDelete;
  const std::string_view allowed = allowed_flags(cmd);
  if (tk.n - from > kMaxMetaFlags) return kBadFormat;
  for (std::size_t i = from; i < tk.n; ++i) {
    const char f = tk.t[i][0];
    if (!is_flag_letter(f) || allowed.find(f) == std::string_view::npos) return one_error ? kInvalidOrDuplicate : kInvalidFlag;
    if (req->has(f)) return one_error ? kInvalidOrDuplicate : kDuplicateFlag;
    req->flags[req->nflags++] = MetaFlag{f, tk.t[i].substr(1)};
  }
  const std::string_view bad_number = one_error ? kInvalidOrDuplicate : kBadToken;
  for (uint8_t i = 0; i < req->nflags; ++i) {
    const MetaFlag& m = req->flags[i];
    switch (m.flag) {
      case 'b': req->base64 = true; break;
      case 'O':
        if (m.token.size() > kMaxOpaqueLen) return kOpaqueTooLong;
        break;
      case 'T':
        if (!parse_argument_i64(m.token, &req->exptime)) return bad_number;
        req->has_exptime = true;
        break;
      case 'C':
        if (!parse_argument_u64(m.token, &req->cas)) return bad_number;
        req->has_cas = true;
        break;
      case 'F': {
        uint64_t v = 0;
        if (!parse_argument_u64(m.token, &v) || v > UINT32_MAX) return kBadFormat;
        req->client_flags = static_cast<uint32_t>(v);
        break;
      }
      case 'N':
        if (!parse_argument_i64(m.token, &req->vivify_ttl)) return bad_number;
        req->has_vivify = true;
        break;
      case 'R':
        if (!parse_argument_i64(m.token, &req->recache_ttl)) return bad_number;
        req->has_recache = true;
        break;
      case 'J':
        if (!parse_argument_u64(m.token, &req->initial)) return bad_number;
        break;
      case 'D':
        if (!parse_argument_u64(m.token, &req->delta)) return bad_number;
        break;
      case 'M': {
        if (m.token.size() != 1) return arith ? kBadMaMode : kBadMsMode;
        const char c = m.token[0];
        if (arith) {
          if (c == 'I' || c == 'i' || c == '+') req->mode = MetaMode::kIncr;
          else if (c == 'D' || c == 'd' || c == '-') req->mode = MetaMode::kDecr;
          else return kBadMaMode;
        } else {
          switch (c) {
            case 'S': case 's': req->mode = MetaMode::kSet; break;
            case 'E': case 'e': req->mode = MetaMode::kAdd; break;
            case 'A': case 'a': req->mode = MetaMode::kAppend; break;
            case 'P': case 'p': req->mode = MetaMode::kPrepend; break;
            case 'R': case 'r': req->mode = MetaMode::kReplace; break;
            default: return kBadMsMode;
          }
        }
        break;
      }
      default: break;
    }
  }
  return {};
}

// Sets req->key from the raw key (decoding base64 with the 'b' flag).
bool meta_key(Request* req) {
  if (!req->base64) {
    req->key = req->raw_key;
    return true;
  }
  std::size_t n = 0;
  if (!base64_decode(req->raw_key, req->key_buf.data(), req->key_buf.size(), &n) || n == 0) return false;
  req->key = std::string_view(req->key_buf.data(), n);
  return true;
}

// memcached 1.6.18 refuses a meta command of 20 tokens or more (its
// MFLAG_MAX_OPT_LENGTH counts a terminal token too).
bool too_many_meta_tokens(const Tokens& tk) { return tk.overflow || tk.n + 1 > 20; }

ParseResult parse_meta(std::string_view in, std::size_t linelen, const Tokens& tk, Cmd cmd, Request* req) {
  if (cmd == Cmd::kMetaNoop) return ok(linelen);
  if (tk.n < 2) return err(cmd == Cmd::kMetaDebug ? kBadFormat : kError, linelen);
  req->raw_key = tk.t[1];
  if (cmd == Cmd::kMetaSet) {
    // memcached 1.6.18's order: the key's and the length's errors swallow
    // nothing, the flags' errors swallow the data block, too large last.
    std::size_t n = 0;
    if (req->raw_key.size() > kMaxKeyLen || tk.n < 3) return err(kBadFormat, linelen);
    if (too_many_meta_tokens(tk)) return err(kFlagsTooLong, linelen);
    if (!read_length(tk.t[2], &n)) return err(kBadFormat, linelen);
    if (std::string_view e = parse_meta_flags(tk, 3, cmd, req); !e.empty()) return refuse_block(e, linelen, n);
    if (!meta_key(req)) return refuse_block(kBadKeyDecode, linelen, n);
    if (n > kMaxValueLen) return refuse_too_large(linelen, n);
    return take_data(in, linelen, n, req);
  }
  if (req->raw_key.size() > kMaxKeyLen) return err(kBadFormat, linelen);
  if (cmd != Cmd::kMetaDebug && too_many_meta_tokens(tk)) {
    return err(cmd == Cmd::kMetaGet ? kFlagsAreTooLong : kFlagsTooLong, linelen);
  }
  if (std::string_view e = parse_meta_flags(tk, 2, cmd, req); !e.empty()) return err(e, linelen);
  if (!meta_key(req)) return err(kBadKeyDecode, linelen);
  return ok(linelen);
}

struct CmdName {
  std::string_view name;
  Cmd cmd;
};
constexpr CmdName kCmds[] = {
    {"get", Cmd::kGet},           {"gets", Cmd::kGets},         {"gat", Cmd::kGat},         {"gats", Cmd::kGats},
    {"set", Cmd::kSet},           {"add", Cmd::kAdd},           {"replace", Cmd::kReplace}, {"append", Cmd::kAppend},
    {"prepend", Cmd::kPrepend},   {"cas", Cmd::kCas},           {"delete", Cmd::kDelete},   {"incr", Cmd::kIncr},
    {"decr", Cmd::kDecr},         {"touch", Cmd::kTouch},       {"flush_all", Cmd::kFlushAll},
    {"version", Cmd::kVersion},   {"verbosity", Cmd::kVerbosity}, {"stats", Cmd::kStats},   {"quit", Cmd::kQuit},
    {"mg", Cmd::kMetaGet},        {"ms", Cmd::kMetaSet},        {"md", Cmd::kMetaDelete},   {"ma", Cmd::kMetaArith},
    {"mn", Cmd::kMetaNoop},       {"me", Cmd::kMetaDebug},
};

// memcached 1.6.18 closes the connection, without a reply, on a line whose
// command it does not know at all (the line falls through its whole
// dispatch: not a name it answers, even with ERROR; this list is the
// memcached 1.6.18 installed here, with extstore and TLS) and whose last token
// (of the first 23, its MAX_TOKENS) starts with "HTTP/": a browser, or an
// HTTP request sent to the cache port by someone else's hand.
bool looks_like_http(const Tokens& tk) {
  const std::string_view name = tk.t[0];
  if (name.size() < 2 || (name[0] == 'm' && name.size() == 2)) return false;
  if (std::string_view("gsacidt").find(name[0]) != std::string_view::npos) return false;
  for (std::string_view known :
       {"replace", "prepend", "bget", "flush_all", "version", "quit", "lru_crawler", "watch", "verbosity", "lru",
        "extstore", "refresh_certs"}) {
    if (name == known) return false;
  }
  const std::size_t last = (tk.n < 23 ? tk.n : 23) - 1;
  return tk.t[last].starts_with("HTTP/");
}

}  // namespace

std::string_view cmd_name(Cmd c) noexcept {
  for (const CmdName& n : kCmds) {
    if (n.cmd == c) return n.name;
  }
  return "?";
}

bool KeyIter::next(std::string_view* key) noexcept {
  std::size_t i = 0;
  while (i < rest_.size() && rest_[i] == ' ') ++i;
  if (i == rest_.size()) return false;
  std::size_t j = i;
  while (j < rest_.size() && rest_[j] != ' ') ++j;
  *key = rest_.substr(i, j - i);
  rest_.remove_prefix(j);
  return true;
}

namespace {
int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

bool base64_decode(std::string_view in, char* out, std::size_t cap, std::size_t* out_len) noexcept {
  if (in.size() % 4 != 0) return false;
  std::size_t n = 0;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad != 0) return false;  // data after padding
        v[k] = b64_value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t w = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    const int bytes = 3 - pad;
    if (n + static_cast<std::size_t>(bytes) > cap) return false;
    out[n++] = static_cast<char>((w >> 16) & 0xff);
    if (bytes > 1) out[n++] = static_cast<char>((w >> 8) & 0xff);
    if (bytes > 2) out[n++] = static_cast<char>(w & 0xff);
  }
  *out_len = n;
  return true;
}

void base64_encode(std::string_view in, std::string* out) {
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t w = (uint32_t{static_cast<uint8_t>(in[i])} << 16) | (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       uint32_t{static_cast<uint8_t>(in[i + 2])};
    *out += kB64[(w >> 18) & 63];
    *out += kB64[(w >> 12) & 63];
    *out += kB64[(w >> 6) & 63];
    *out += kB64[w & 63];
  }
  const std::size_t rest = in.size() - i;
  if (rest == 0) return;
  uint32_t w = uint32_t{static_cast<uint8_t>(in[i])} << 16;
  if (rest == 2) w |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
  *out += kB64[(w >> 18) & 63];
  *out += kB64[(w >> 12) & 63];
  *out += rest == 2 ? kB64[(w >> 6) & 63] : '=';
  *out += '=';
}

namespace {
ParseResult parse_line(std::string_view in, std::size_t linelen, std::string_view line, const Tokens& tk, Cmd cmd,
                       Request* req);
}  // namespace

// A line with no "\n" in its first kMaxLineLen bytes: kLongGet or a silent close.
ParseResult parse_long_line(std::string_view in, Request* req) noexcept;

ParseResult parse_request(std::string_view in, Request* req) noexcept {
  const void* nlp = std::memchr(in.data(), '\n', in.size() < kMaxLineLen ? in.size() : kMaxLineLen);
  if (nlp == nullptr) {
    if (in.size() >= kMaxLineLen) return parse_long_line(in, req);  // memcached_get_line.cc
    return need_more();
  }
  const std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(nlp) - in.data());
  const std::size_t linelen = nl + 1;
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  *req = Request{};
  Tokens tk;
  tokenize(line, &tk);
  if (tk.n == 0) return err(kError, linelen);
  const std::string_view name = tk.t[0];
  const CmdName* found = nullptr;
  for (const CmdName& c : kCmds) {
    if (c.name == name) {
      found = &c;
      break;
    }
  }
  if (found == nullptr) {
    if (!looks_like_http(tk)) return err(kError, linelen);
    ParseResult r = err({}, linelen);
    r.close = true;
    r.http = true;
    return r;
  }
  const Cmd cmd = found->cmd;
  req->cmd = cmd;
  ParseResult res = parse_line(in, linelen, line, tk, cmd, req);
  // memcached answers nothing at all to a classic command ending in
  // "noreply", errors included (get-family keys may be named "noreply").
  if (res.status == Parse::kError && cmd >= Cmd::kSet && cmd <= Cmd::kQuit && tk.n > 1 && !tk.overflow &&
      tk.t[tk.n - 1] == "noreply") {
    res.quiet = true;
  }
  return res;
}

namespace {
ParseResult parse_line(std::string_view in, std::size_t linelen, std::string_view line, const Tokens& tk, Cmd cmd,
                       Request* req) {
  switch (cmd) {
    case Cmd::kGet: case Cmd::kGets: case Cmd::kGat: case Cmd::kGats:
      return parse_get(line, linelen, tk, cmd, req);
    default: break;
  }
  // More tokens than any classic command takes: memcached's token-count
  // checks answer ERROR (version and quit ignore them; meta: parse_meta).
  if (tk.overflow && cmd != Cmd::kVersion && cmd != Cmd::kQuit && cmd < Cmd::kMetaGet) return err(kError, linelen);
  switch (cmd) {
    case Cmd::kSet: case Cmd::kAdd: case Cmd::kReplace: case Cmd::kAppend: case Cmd::kPrepend: case Cmd::kCas:
      return parse_storage(in, linelen, tk, cmd, req);
    case Cmd::kDelete: {
      if (tk.n < 2 || tk.n > 4) return err(kError, linelen);
      req->key = req->raw_key = tk.t[1];
      if (!valid_key(req->key)) return err(kBadFormat, linelen);
      const bool hold_zero = tk.n >= 3 && tk.t[2] == "0";
      req->noreply = tk.t[tk.n - 1] == "noreply";
      if ((tk.n == 3 && !hold_zero && !req->noreply) || (tk.n == 4 && !(hold_zero && req->noreply))) {
        return err(kBadDeleteUsage, linelen);
      }
      return ok(linelen);
    }
    case Cmd::kIncr: case Cmd::kDecr:
      if (tk.n != 3 && tk.n != 4) return err(kError, linelen);
      req->key = req->raw_key = tk.t[1];
      if (!valid_key(req->key)) return err(kBadFormat, linelen);
      if (!read_uint64(tk.t[2], &req->delta)) return err(kBadDelta, linelen);
      req->noreply = tk.n == 4 && tk.t[3] == "noreply";
      return ok(linelen);
    case Cmd::kTouch:
      if (tk.n != 3 && tk.n != 4) return err(kError, linelen);
      req->key = req->raw_key = tk.t[1];
      if (!valid_key(req->key)) return err(kBadFormat, linelen);
      if (!read_int32(tk.t[2], &req->exptime)) return err(kBadExptime, linelen);
      req->noreply = tk.n == 4 && tk.t[3] == "noreply";
      return ok(linelen);
    case Cmd::kFlushAll: {
      if (tk.n > 3) return err(kError, linelen);
      req->noreply = tk.t[tk.n - 1] == "noreply";
      const std::size_t args = tk.n - 1 - (req->noreply ? 1 : 0);
      // memcached reads the first argument whenever there is one besides noreply.
      if (args >= 1 && !read_int32(tk.t[1], &req->number)) return err(kBadExptime, linelen);
      return ok(linelen);
    }
    case Cmd::kVerbosity: {
      if (tk.n != 2 && tk.n != 3) return err(kError, linelen);
      req->noreply = tk.t[tk.n - 1] == "noreply";
      uint32_t level = 0;
      if (!read_uint32(tk.t[1], &level)) return err(kBadFormat, linelen);
      req->number = level;
      return ok(linelen);
    }
    case Cmd::kStats:
      req->stats_arg = tk.n > 1 ? tk.t[1] : std::string_view{};
      req->stats_arg2 = tk.n > 2 ? tk.t[2] : std::string_view{};
      return ok(linelen);
    case Cmd::kVersion: case Cmd::kQuit:
      return ok(linelen);
    default:
      return parse_meta(in, linelen, tk, cmd, req);
  }
}
}  // namespace


BinParse parse_binary(std::string_view in, std::size_t max_body, BinRequest* req, std::size_t* consumed) noexcept {
  if (in.empty()) return BinParse::kNeedMore;
  if (static_cast<uint8_t>(in[0]) != kBinRequestMagic) return BinParse::kBad;
  if (in.size() < kBinHeaderSize) return BinParse::kNeedMore;
  BinHeader& h = req->h;
  h.magic = static_cast<uint8_t>(in[0]);
  h.opcode = static_cast<uint8_t>(in[1]);
  h.key_len = load_be16(in.data() + 2);
  h.extras_len = static_cast<uint8_t>(in[4]);
  h.data_type = static_cast<uint8_t>(in[5]);
  h.status = load_be16(in.data() + 6);
  h.body_len = load_be32(in.data() + 8);
  h.opaque = load_be32(in.data() + 12);
  h.cas = load_be64(in.data() + 16);
  const std::size_t head = std::size_t{h.extras_len} + h.key_len;
  if (head > h.body_len || h.key_len > kMaxKeyLen) return BinParse::kBad;
  const bool too_large = h.body_len > max_body;
  const std::size_t take = too_large ? head : h.body_len;
  if (in.size() < kBinHeaderSize + take) return BinParse::kNeedMore;
  const std::string_view body = in.substr(kBinHeaderSize, take);
  req->extras = body.substr(0, h.extras_len);
  req->key = body.substr(h.extras_len, h.key_len);
  req->value = body.substr(head);
  *consumed = kBinHeaderSize + take;
  return too_large ? BinParse::kTooLarge : BinParse::kOk;
}

std::string_view bin_status_message(BinStatus s) noexcept {
  switch (s) {
    case BinStatus::kOk: return "";
    case BinStatus::kNotFound: return "Not found";
    case BinStatus::kExists: return "Data exists for key.";
    case BinStatus::kTooBig: return "Too large.";
    case BinStatus::kInvalid: return "Invalid arguments";
    case BinStatus::kNotStored: return "Not stored.";
    case BinStatus::kNotNumeric: return "Non-numeric server-side value for incr or decr";
    case BinStatus::kUnknown: return "Unknown command";
    case BinStatus::kNoMemory: return "Out of memory";
  }
  return "";
}

void append_binary_header(const BinHeader& h, std::string* o) {
  uint8_t b[kBinHeaderSize];
  b[0] = h.magic;
  b[1] = h.opcode;
  store_be16(b + 2, h.key_len);
  b[4] = h.extras_len;
  b[5] = h.data_type;
  store_be16(b + 6, h.status);
  store_be32(b + 8, h.body_len);
  store_be32(b + 12, h.opaque);
  store_be64(b + 16, h.cas);
  o->append(reinterpret_cast<const char*>(b), sizeof(b));
}

}  // namespace ferrite::proto::mc
