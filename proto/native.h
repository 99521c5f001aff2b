// Ferrite's native wire protocol (docs/protocol.md) as pure functions over
// byte spans: datagram headers, request and response op streams, and
// fragmentation. No sockets, no allocation on the decode path, no trust in a
// length field before it is checked against the bytes present.
//
// Thread safety: stateless functions; readers and writers are values owned by
// one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/endian.h"
#include "common/limits.h"
#include "common/result.h"

namespace ferrite::proto {

inline constexpr uint16_t kMagic = 0x4546;  // bytes 46 45 ("FE")
inline constexpr uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 32;
inline constexpr std::size_t kOpHeaderSize = 24;
inline constexpr std::size_t kMaxDatagram = 65507;
inline constexpr std::size_t kDefaultDatagram = 1472;
inline constexpr std::size_t kMaxMessage = 2 * limits::kMaxValueLen;  // a largest item and its headers fit
inline constexpr uint16_t kMaxFragments = 1024;
// The native protocol carries the store's item limits unchanged.
inline constexpr std::size_t kMaxKey = limits::kMaxKeyLen;
inline constexpr std::size_t kMaxValue = limits::kMaxValueLen;

enum class MsgType : uint8_t { kRequest = 1, kResponse = 2, kHello = 3, kCookie = 4, kError = 5 };

enum class Opcode : uint8_t {
  kGet = 0x01, kSet = 0x02, kAdd = 0x03, kReplace = 0x04, kAppend = 0x05, kPrepend = 0x06,
  kCas = 0x07, kIncr = 0x08, kDecr = 0x09, kTouch = 0x0a, kDel = 0x0b, kStats = 0x0c, kNoop = 0x0d,
  kScan = 0x0e,
};
inline constexpr uint8_t kMaxOpcode = 0x0e;

// A scan page (the value of a scan response) is a run of entries
//   u8 key_len | u32 value_len | u32 flags | u32 exptime | u64 version | key | value
// The response's version field carries the next page's cursor, and its
// client_flags is kScanDone on the last page. See docs/protocol.md.
inline constexpr std::size_t kScanEntryHeader = 21;
struct ScanEntry {
  std::string_view key, value;
  uint32_t flags = 0, exptime = 0;
  uint64_t version = 0;
};
void append_scan_entry(std::string* out, const ScanEntry& e);
// Reads entries from a page; false if the page is malformed.
bool read_scan_page(std::string_view page, std::vector<ScanEntry>* out);

// The outcome of one op, a byte in each response op. Named apart from
// ferrite::Status (common/status.h), which carries setup-path errors.
enum class OpStatus : uint8_t {
  kOk = 0, kNotFound = 1, kExists = 2, kNotStored = 3, kCasMismatch = 4, kOutOfMemory = 5,
  kTooLarge = 6, kBadKey = 7, kNotNumeric = 8, kMalformed = 9, kUnknownOpcode = 10,
};

inline constexpr uint16_t kOpQuiet = 1;  // op_flags bit 0
inline constexpr uint32_t kScanDone = 1;  // scan response: client_flags value of the last page

struct Header {
  MsgType type = MsgType::kRequest;
  uint16_t frag_index = 0;
  uint16_t frag_count = 1;
  uint32_t msg_len = 0;
  uint32_t frag_offset = 0;
  uint64_t request_id = 0;
  uint64_t cookie = 0;
};

// Decodes and validates a datagram header (magic, version, type, fragment
// fields consistent with each other and with the datagram's size).
// kMalformed if anything is off; on success *payload is the fragment payload.
Result decode_header(std::span<const uint8_t> dgram, Header* out, std::span<const uint8_t>* payload) noexcept;
void encode_header(const Header& h, uint8_t* out) noexcept;  // writes kHeaderSize bytes

struct RequestOp {
  Opcode opcode = Opcode::kNoop;
  uint16_t op_flags = 0;
  std::string_view key;
  std::string_view value;
  uint32_t client_flags = 0;
  uint32_t exptime = 0;
  uint64_t arg = 0;
};

// Reads ops from a request body in order.
class RequestReader {
 public:
  explicit RequestReader(std::span<const uint8_t> body) noexcept : p_(body.data()), end_(body.data() + body.size()) {}
  enum class Next : uint8_t {
    kOp,             // *op filled
    kEnd,            // no more ops
    kTooLarge,       // op decoded but key/value beyond limits (*op has lengths only)
    kUnknownOpcode,  // op skipped by length; rest of the message is not executed
    kMalformed,      // lengths do not fit the body: stop
  };
  Next next(RequestOp* op) noexcept;
  std::size_t index() const noexcept { return index_; }  // ops returned so far

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  std::size_t index_ = 0;
};

// Appends request ops to a body (client side).
void append_request_op(std::vector<uint8_t>* body, const RequestOp& op);

struct ResponseOp {
  Opcode opcode = Opcode::kNoop;
  OpStatus status = OpStatus::kOk;
  uint16_t index = 0;
  uint32_t client_flags = 0;
  uint64_t version = 0;
  std::string_view value;
};

// Appends one response op (header + value) to out.
void append_response_op(std::vector<uint8_t>* out, const ResponseOp& op);
std::size_t response_op_size(std::size_t value_len) noexcept;

class ResponseReader {
 public:
  explicit ResponseReader(std::span<const uint8_t> body) noexcept : p_(body.data()), end_(body.data() + body.size()) {}
  // kOk with *op filled, kNotFound at the end, kMalformed if truncated.
  Result next(ResponseOp* op) noexcept;

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Cuts a message body into datagrams of at most max_dgram bytes, each with
// header h (frag fields filled in), and calls emit(span) for each. Returns the
// number of datagrams, or 0 if the body is larger than kMaxMessage or needs
// more than kMaxFragments datagrams.
template <typename Emit>
std::size_t fragment(Header h, std::span<const uint8_t> body, std::size_t max_dgram, std::vector<uint8_t>* scratch,
                     Emit&& emit);

// Collects the fragments of one message (one per reassembler). The owner
// keys reassemblers by (source, request id) and bounds how many it keeps.
class Reassembly {
 public:
  // Adds a fragment; kOk when the message is complete (body() valid),
  // kRetry when more fragments are needed, kMalformed when the fragment is
  // inconsistent with earlier ones (the message should be dropped).
  Result add(const Header& h, std::span<const uint8_t> payload);
  std::span<const uint8_t> body() const noexcept { return {buf_.data(), buf_.size()}; }
  uint64_t request_id() const noexcept { return first_.request_id; }
  std::size_t received_bytes() const noexcept { return received_; }

 private:
  bool started_ = false;
  Header first_{};
  std::vector<uint8_t> buf_;
  std::vector<uint8_t> have_;  // per fragment: received?
  std::size_t received_ = 0;
  std::size_t fragments_ = 0;
};


template <typename Emit>
std::size_t fragment(Header h, std::span<const uint8_t> body, std::size_t max_dgram, std::vector<uint8_t>* scratch,
                     Emit&& emit) {
  if (body.size() > kMaxMessage || max_dgram <= kHeaderSize || max_dgram > kMaxDatagram) return 0;
  const std::size_t per = max_dgram - kHeaderSize;
  const std::size_t n = body.empty() ? 1 : (body.size() + per - 1) / per;
  if (n > kMaxFragments) return 0;
  h.frag_count = static_cast<uint16_t>(n);
  h.msg_len = static_cast<uint32_t>(body.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = i * per;
    const std::size_t len = std::min(per, body.size() - off);
    h.frag_index = static_cast<uint16_t>(i);
    h.frag_offset = static_cast<uint32_t>(off);
    scratch->resize(kHeaderSize + len);
    encode_header(h, scratch->data());
    if (len != 0) std::memcpy(scratch->data() + kHeaderSize, body.data() + off, len);
    emit(std::span<const uint8_t>(scratch->data(), scratch->size()));
  }
  return n;
}

}  // namespace ferrite::proto
