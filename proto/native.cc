// Native protocol codec (see native.h and docs/protocol.md).
#include "proto/native.h"

#include <algorithm>

namespace ferrite::proto {

Result decode_header(std::span<const uint8_t> d, Header* h, std::span<const uint8_t>* payload) noexcept {
  if (d.size() < kHeaderSize || d.size() > kMaxDatagram) return Result::kMalformed;
  const uint8_t* p = d.data();
  if (load_le16(p) != kMagic || p[2] != kVersion) return Result::kMalformed;
  const uint8_t type = p[3];
  if (type < 1 || type > 5) return Result::kMalformed;
  h->type = static_cast<MsgType>(type);
  h->frag_index = load_le16(p + 4);
  h->frag_count = load_le16(p + 6);
  h->msg_len = load_le32(p + 8);
  h->frag_offset = load_le32(p + 12);
  h->request_id = load_le64(p + 16);
  h->cookie = load_le64(p + 24);
  const std::size_t plen = d.size() - kHeaderSize;
  if (h->frag_count == 0 || h->frag_count > kMaxFragments || h->frag_index >= h->frag_count) return Result::kMalformed;
  if (h->msg_len > kMaxMessage) return Result::kMalformed;
  if (static_cast<uint64_t>(h->frag_offset) + plen > h->msg_len) return Result::kMalformed;
  if (h->frag_count == 1 && (h->frag_offset != 0 || plen != h->msg_len)) return Result::kMalformed;
  *payload = d.subspan(kHeaderSize);
  return Result::kOk;
}

void encode_header(const Header& h, uint8_t* p) noexcept {
  store_le16(p, kMagic);
  p[2] = kVersion;
  p[3] = static_cast<uint8_t>(h.type);
  store_le16(p + 4, h.frag_index);
  store_le16(p + 6, h.frag_count);
  store_le32(p + 8, h.msg_len);
  store_le32(p + 12, h.frag_offset);
  store_le64(p + 16, h.request_id);
  store_le64(p + 24, h.cookie);
}

RequestReader::Next RequestReader::next(RequestOp* op) noexcept {
  if (p_ == end_) return Next::kEnd;
  if (static_cast<std::size_t>(end_ - p_) < kOpHeaderSize) return Next::kMalformed;
  const uint8_t code = p_[0];
  const uint8_t klen = p_[1];
  const uint32_t vlen = load_le32(p_ + 4);
  const std::size_t avail = static_cast<std::size_t>(end_ - p_) - kOpHeaderSize;
  if (static_cast<uint64_t>(klen) + vlen > avail) return Next::kMalformed;
  op->opcode = static_cast<Opcode>(code);
  op->op_flags = load_le16(p_ + 2);
  op->client_flags = load_le32(p_ + 8);
  op->exptime = load_le32(p_ + 12);
  op->arg = load_le64(p_ + 16);
  const char* kp = reinterpret_cast<const char*>(p_ + kOpHeaderSize);
  op->key = std::string_view(kp, klen);
  op->value = std::string_view(kp + klen, vlen);
  p_ += kOpHeaderSize + klen + vlen;
  ++index_;
  if (code == 0 || code > kMaxOpcode) return Next::kUnknownOpcode;
  if (klen > kMaxKey || vlen > kMaxValue) return Next::kTooLarge;
  return Next::kOp;
}

void append_request_op(std::vector<uint8_t>* body, const RequestOp& op) {
  const std::size_t at = body->size();
  body->resize(at + kOpHeaderSize + op.key.size() + op.value.size());
  uint8_t* p = body->data() + at;
  p[0] = static_cast<uint8_t>(op.opcode);
  p[1] = static_cast<uint8_t>(std::min<std::size_t>(op.key.size(), 255));
  store_le16(p + 2, op.op_flags);
  store_le32(p + 4, static_cast<uint32_t>(op.value.size()));
  store_le32(p + 8, op.client_flags);
  store_le32(p + 12, op.exptime);
  store_le64(p + 16, op.arg);
  if (p[1] != 0) std::memcpy(p + kOpHeaderSize, op.key.data(), p[1]);
  if (!op.value.empty()) std::memcpy(p + kOpHeaderSize + p[1], op.value.data(), op.value.size());
  body->resize(at + kOpHeaderSize + p[1] + op.value.size());
}

std::size_t response_op_size(std::size_t value_len) noexcept { return kOpHeaderSize + value_len; }

void append_response_op(std::vector<uint8_t>* out, const ResponseOp& op) {
  const std::size_t at = out->size();
  out->resize(at + kOpHeaderSize + op.value.size());
  uint8_t* p = out->data() + at;
  p[0] = static_cast<uint8_t>(op.opcode);
  p[1] = static_cast<uint8_t>(op.status);
  store_le16(p + 2, op.index);
  store_le32(p + 4, static_cast<uint32_t>(op.value.size()));
  store_le32(p + 8, op.client_flags);
  store_le32(p + 12, 0);
  store_le64(p + 16, op.version);
  if (!op.value.empty()) std::memcpy(p + kOpHeaderSize, op.value.data(), op.value.size());
}

Result ResponseReader::next(ResponseOp* op) noexcept {
  if (p_ == end_) return Result::kNotFound;
  if (static_cast<std::size_t>(end_ - p_) < kOpHeaderSize) return Result::kMalformed;
  const uint32_t vlen = load_le32(p_ + 4);
  if (vlen > static_cast<std::size_t>(end_ - p_) - kOpHeaderSize) return Result::kMalformed;
  op->opcode = static_cast<Opcode>(p_[0]);
  op->status = static_cast<OpStatus>(p_[1]);
  op->index = load_le16(p_ + 2);
  op->client_flags = load_le32(p_ + 8);
  op->version = load_le64(p_ + 16);
  op->value = std::string_view(reinterpret_cast<const char*>(p_ + kOpHeaderSize), vlen);
  p_ += kOpHeaderSize + vlen;
  return Result::kOk;
}

void append_scan_entry(std::string* out, const ScanEntry& e) {
  uint8_t h[kScanEntryHeader];
  h[0] = static_cast<uint8_t>(e.key.size());
  store_le32(h + 1, static_cast<uint32_t>(e.value.size()));
  store_le32(h + 5, e.flags);
  store_le32(h + 9, e.exptime);
  store_le64(h + 13, e.version);
  out->append(reinterpret_cast<const char*>(h), sizeof(h));
  out->append(e.key);
  out->append(e.value);
}

bool read_scan_page(std::string_view page, std::vector<ScanEntry>* out) {
  out->clear();
  const auto* p = reinterpret_cast<const uint8_t*>(page.data());
  std::size_t left = page.size();
  while (left > 0) {
    if (left < kScanEntryHeader) return false;
    ScanEntry e;
    const std::size_t klen = p[0];
    const uint32_t vlen = load_le32(p + 1);
    e.flags = load_le32(p + 5);
    e.exptime = load_le32(p + 9);
    e.version = load_le64(p + 13);
    if (klen + static_cast<uint64_t>(vlen) > left - kScanEntryHeader) return false;
    e.key = std::string_view(reinterpret_cast<const char*>(p + kScanEntryHeader), klen);
    e.value = std::string_view(reinterpret_cast<const char*>(p + kScanEntryHeader + klen), vlen);
    out->push_back(e);
    p += kScanEntryHeader + klen + vlen;
    left -= kScanEntryHeader + klen + vlen;
  }
  return true;
}

Result Reassembly::add(const Header& h, std::span<const uint8_t> payload) {
  if (!started_) {
    started_ = true;
    first_ = h;
    buf_.assign(h.msg_len, 0);
    have_.assign(h.frag_count, 0);
  } else if (h.request_id != first_.request_id || h.msg_len != first_.msg_len || h.frag_count != first_.frag_count ||
             h.type != first_.type) {
    return Result::kMalformed;
  }
  if (have_[h.frag_index] != 0) return received_ == buf_.size() && fragments_ == have_.size() ? Result::kOk : Result::kRetry;
  if (h.frag_offset + payload.size() > buf_.size()) return Result::kMalformed;
  if (!payload.empty()) std::memcpy(buf_.data() + h.frag_offset, payload.data(), payload.size());
  have_[h.frag_index] = 1;
  received_ += payload.size();
  ++fragments_;
  if (fragments_ == have_.size()) return received_ == buf_.size() ? Result::kOk : Result::kMalformed;
  return received_ > buf_.size() ? Result::kMalformed : Result::kRetry;
}

}  // namespace ferrite::proto
