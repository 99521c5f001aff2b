// memcached parser fuzz body (see memcached_fuzz.h).
#include "tests/fuzz/memcached_fuzz.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/memcached.h"

namespace ferrite::fuzz {
namespace {

namespace mc = proto::mc;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_keys(std::string_view keys) {
  mc::KeyIter it(keys);
  std::string_view k;
  while (it.next(&k)) check(!k.empty() && k.size() <= mc::kMaxKeyLen && k.find(' ') == std::string_view::npos);
}

// Reads the rest of a long get line (after its head) through parse_get_part
// in pieces of `step` bytes, the way a connection does (unconsumed bytes stay
// in front). Returns the keys answered (each followed by a space), then "\n"
// (no key holds one) and "E" with the error, "END" or "EOF" (the input ended
// inside the line); *rest: the bytes after the line.
std::string feed_get_line(std::string_view line, std::size_t step, mc::GetLine st, std::string_view* rest = nullptr) {
  std::string in, got;
  std::size_t fed = 0;
  for (;;) {
    const mc::GetPart p = mc::parse_get_part(in, &st);
    check(p.consumed <= in.size() && inside(p.keys, in) && p.keys.size() <= p.consumed);
    check(p.error.empty() || p.keys.empty());
    check_keys(p.keys);
    mc::KeyIter it(p.keys);
    std::string_view k;
    while (it.next(&k)) got.append(k).push_back(' ');
    if (!p.error.empty()) got.append("\nE").append(p.error);
    const bool failed = st.failed || !p.error.empty();
    in.erase(0, p.consumed);
    if (p.end) {
      if (rest != nullptr) *rest = line.substr(fed - in.size());
      return failed ? got : got + "\nEND";
    }
    if (p.consumed == 0) {
      // Waiting: what is left is one partial key (nothing once refused).
      check(st.failed ? in.empty() : in.size() <= mc::kMaxKeyLen && in.find(' ') == std::string::npos);
      if (fed == line.size()) return got + "\nEOF";
      const std::size_t n = std::min(step, line.size() - fed);
      in.append(line.substr(fed, n));
      fed += n;
    }
  }
}

// Consumes a whole stream; returns the number of requests parsed.
std::size_t drain(std::string_view in) {
  std::size_t n = 0;
  mc::Request r;
  while (!in.empty()) {
    const mc::ParseResult pr = mc::parse_request(in, &r);
    if (pr.status == mc::Parse::kNeedMore) {
      check(pr.consumed == 0);
      break;
    }
    check(pr.consumed > 0 && pr.consumed <= in.size());
    if (pr.status == mc::Parse::kLongGet) {
      check(r.cmd == mc::Cmd::kGet || r.cmd == mc::Cmd::kGets || r.cmd == mc::Cmd::kGat || r.cmd == mc::Cmd::kGats);
      std::string_view rest;
      const std::string got = feed_get_line(in.substr(pr.consumed), 1u << 20,
                                            mc::GetLine{r.cmd, r.exptime, false, !pr.error.empty()}, &rest);
      if (!got.ends_with("\nEOF")) {
        in = rest;
        ++n;
        continue;
      }
      break;
    }
    if (pr.status == mc::Parse::kOk) {
      check(inside(r.raw_key, in) && inside(r.data, in) && inside(r.keys, in));
      check(r.key.size() <= mc::kMaxKeyLen && r.data.size() <= mc::kMaxValueLen);
      check(r.nflags <= mc::kMaxMetaFlags);
      if (mc::is_storage(r.cmd) || r.cmd == mc::Cmd::kMetaSet) check(!r.key.empty());
      check_keys(r.keys);
    } else {
      check(pr.http ? pr.error.empty() && pr.close : (!pr.error.empty() || (pr.close && pr.quiet)));
      check(pr.swallow <= mc::kMaxSwallow + 2 && (!pr.too_large || !r.key.empty()));
    }
    in.remove_prefix(pr.consumed);
    in.remove_prefix(std::min(pr.swallow, in.size()));
    if (pr.close) break;
    ++n;
  }
  return n;
}

}  // namespace

void memcached_one_input(const uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  drain(in);
  // A prefix must never yield more than the whole stream agrees with:
  // parsing a prefix either waits or gives the same first request.
  if (size > 1) {
    const std::size_t cut = 1 + data[0] % (size - 1);
    mc::Request a, b;
    const mc::ParseResult whole = mc::parse_request(in, &a);
    const mc::ParseResult part = mc::parse_request(in.substr(0, cut), &b);
    if (part.status == mc::Parse::kOk) {
      check(whole.status == mc::Parse::kOk && whole.consumed == part.consumed);
    }
  }
  // The binary protocol framing: a packet never claims bytes that are not there.
  {
    std::string_view rest = in;
    mc::BinRequest br;
    std::size_t used = 0;
    for (;;) {
      const mc::BinParse st = mc::parse_binary(rest, 64, &br, &used);
      if (st != mc::BinParse::kOk && st != mc::BinParse::kTooLarge) break;
      check(used >= mc::kBinHeaderSize && used <= rest.size());
      check(br.extras.size() + br.key.size() + br.value.size() + mc::kBinHeaderSize == used);
      check(inside(br.key, rest) && inside(br.value, rest) && br.key.size() <= mc::kMaxKeyLen);
      // Too large: only extras and key are taken, the rest of the body is still to come.
      check(st == mc::BinParse::kOk ? used == mc::kBinHeaderSize + br.h.body_len
                                    : br.value.empty() && br.h.body_len > 64);
      rest.remove_prefix(used);
      if (st == mc::BinParse::kTooLarge) break;
    }
  }
  mc::UdpHeader h;
  if (mc::decode_udp_header(in, &h)) drain(in.substr(mc::kUdpHeaderSize));
  // A long get line: the input is the rest of one (after its head), read
  // whole and in pieces; without an error both answer the same keys, with
  // one the pieces answer a prefix of them.
  if (size > 2) {
    const mc::GetLine st{data[0] & 1 ? mc::Cmd::kGat : mc::Cmd::kGet, 0, (data[0] & 4) != 0, (data[0] & 2) != 0};
    const std::string_view line = in.substr(2);
    const std::string whole = feed_get_line(line, line.size() + 1, st);
    const std::string parts = feed_get_line(line, 1 + data[1] % 16, st);
    if (whole.find("\nE") == std::string::npos && parts.find("\nE") == std::string::npos) check(whole == parts);
    check(whole.starts_with(parts.substr(0, parts.find('\n'))));
    // The same bytes as a line too long to wait for: "get " and the input
    // repeated past kMaxLineLen (for some inputs only: 64 KiB each).
    if ((data[0] & 0x38) == 0x38 && size >= 64) {
      std::string big = data[0] & 0x40 ? "gat 10 " : "get ";
      while (big.size() <= mc::kMaxLineLen) big.append(line);
      drain(big);
    }
  }
  std::string b64;
  mc::base64_encode(in.substr(0, std::min<std::size_t>(in.size(), 180)), &b64);
  char buf[256];
  std::size_t n = 0;
  check(mc::base64_decode(b64, buf, sizeof(buf), &n) && std::string_view(buf, n) == in.substr(0, std::min<std::size_t>(in.size(), 180)));
  (void)mc::base64_decode(in, buf, sizeof(buf), &n);
}

}  // namespace ferrite::fuzz
