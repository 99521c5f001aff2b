// Ferrite's C++ client library for the native protocol.
//
//   auto c = client::Client::connect("127.0.0.1", 11311);
//   client::Reply r;
//   (*c)->set("k", "v");                       // durable when it returns kOk
//   (*c)->get("k", &r);                        // r.value == "v"
//   std::vector<proto::RequestOp> batch = ...; // many ops, one round trip
//   std::vector<client::Reply> replies;
//   (*c)->execute(batch, &replies);
//
// Each call is one message with a fresh 64-bit request id; on timeout the
// same message (same id) is resent, so a retried write is applied once (the
// server answers duplicates from memory). The cookie handshake (anti-
// amplification, docs/protocol.md) is done on connect and redone whenever
// the server asks.
//
// Thread safety: a Client is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/native.h"

namespace ferrite::client {

struct ClientOptions {
  int timeout_ms = 200;       // per attempt
  int attempts = 6;           // first try + retries
  std::size_t max_datagram = proto::kDefaultDatagram;
};

struct Reply {
  proto::OpStatus status = proto::OpStatus::kOk;
  std::string value;
  uint32_t flags = 0;
  uint64_t version = 0;
};

std::string_view status_name(proto::OpStatus s) noexcept;

class Client {
 public:
  static StatusOr<std::unique_ptr<Client>> connect(const std::string& host, uint16_t port,
                                                   const ClientOptions& opts = {});
  ~Client();

  // Sends ops as one message and waits for every reply (quiet ops that
  // succeed produce none; replies carry their op index). Status is not OK
  // only for transport failures (timeout after all attempts, error reply).
  Status execute(std::span<const proto::RequestOp> ops, std::vector<Reply>* replies);

  // One-op conveniences; the Status covers transport, the proto::OpStatus
  // result is returned through *out (or as the return for writes).
  StatusOr<proto::OpStatus> get(std::string_view key, Reply* out);
  StatusOr<proto::OpStatus> set(std::string_view key, std::string_view value, uint32_t flags = 0, uint32_t exptime = 0);
  StatusOr<proto::OpStatus> del(std::string_view key);
  StatusOr<proto::OpStatus> incr(std::string_view key, uint64_t delta, uint64_t* value, bool decr = false);
  StatusOr<std::string> stats();
  // One page of a dump starting at cursor (0 = the beginning). Entries view
  // page_storage. *next is the cursor of the next page; *done once the last
  // page has been returned.
  Status scan(uint64_t cursor, std::string* page_storage, std::vector<proto::ScanEntry>* entries, uint64_t* next,
              bool* done);

  uint64_t retries() const noexcept { return retries_; }
  uint64_t cookie() const noexcept { return cookie_; }
  // Test hook: send raw bytes to the server (for malformed-input tests).
  Status TEST_send_raw(std::span<const uint8_t> bytes);
  // Test hook: wait up to timeout for any datagram; returns its bytes.
  StatusOr<std::vector<uint8_t>> TEST_recv_raw(int timeout_ms);

 private:
  Client(int fd, const ClientOptions& opts) : fd_(fd), opts_(opts) {}
  Status handshake();
  Status round_trip(proto::MsgType type, std::span<const uint8_t> body, std::vector<uint8_t>* resp_body);

  int fd_;
  ClientOptions opts_;
  uint64_t cookie_ = 0;
  uint64_t next_id_ = 0;
  uint64_t retries_ = 0;
  std::vector<uint8_t> scratch_;
  std::vector<uint8_t> rxbuf_;
};

}  // namespace ferrite::client
