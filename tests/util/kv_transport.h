// Test helper: one interface over the ways a test talks to a Ferrite server,
// so one scenario list (tests/util/scenarios.h) runs against each of them:
//   NativeTransport    the client library (native protocol over kernel UDP,
//                      or the DPDK backend: the client does not care),
//   McTransport        memcached's text protocol, over TCP (McTcpWire) or
//                      UDP with its 8-byte frame header (McUdpWire).
// Ops are proto::RequestOp; replies are read back into OpReply with the
// native status each memcached reply line stands for (NOT_STORED of an add
// is kExists, EXISTS of a cas is kCasMismatch, and so on).
//
// Thread safety: a transport and its wire belong to one test thread.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "proto/memcached.h"
#include "proto/native.h"
#include "tests/util/loopback.h"

namespace ferrite::testing {

// One op's outcome, whatever carried it.
struct OpReply {
  proto::OpStatus status = proto::OpStatus::kOk;
  std::string value;
  uint32_t flags = 0;
  uint64_t version = 0;
};

class KvTransport {
 public:
  virtual ~KvTransport() = default;
  // Runs ops in order (as one batch where the protocol has batches); false
  // if the transport failed (no reply, unreadable reply).
  virtual bool run(std::span<const proto::RequestOp> ops, std::vector<OpReply>* out) = 0;
  // The largest value one set can carry here.
  virtual std::size_t max_value() const = 0;
  // Every key and value stored (native scan); false where there is no scan.
  virtual bool scan_all(std::map<std::string, std::string>* out) = 0;
};

inline proto::RequestOp op(proto::Opcode c, std::string_view k, std::string_view v = {}, uint64_t arg = 0,
                           uint32_t flags = 0) {
  proto::RequestOp o;
  o.opcode = c;
  o.key = k;
  o.value = v;
  o.arg = arg;
  o.client_flags = flags;
  return o;
}

class NativeTransport final : public KvTransport {
 public:
  explicit NativeTransport(client::Client* c) : c_(c) {}
  bool run(std::span<const proto::RequestOp> ops, std::vector<OpReply>* out) override {
    std::vector<client::Reply> r;
    if (!c_->execute(ops, &r).is_ok() || r.size() != ops.size()) return false;
    out->clear();
    for (auto& x : r) out->push_back(OpReply{x.status, std::move(x.value), x.flags, x.version});
    return true;
  }
  std::size_t max_value() const override { return proto::kMaxValue; }
  bool scan_all(std::map<std::string, std::string>* out) override {
    std::string page;
    std::vector<proto::ScanEntry> entries;
    uint64_t cursor = 0;
    bool done = false;
    for (int pages = 0; !done && pages < 10000; ++pages) {
      if (!c_->scan(cursor, &page, &entries, &cursor, &done).is_ok()) return false;
      for (const auto& e : entries) (*out)[std::string(e.key)] = std::string(e.value);
    }
    return done;
  }

 private:
  client::Client* c_;
};

// A connected socket that carries memcached requests. exchange() sends one
// and returns its whole reply ("" on timeout); complete(bytes) tells when the
// reply bytes so far are a whole reply.
class McWire {
 public:
  virtual ~McWire() {
    if (fd_ >= 0) ::close(fd_);
  }
  McWire(const McWire&) = delete;
  McWire& operator=(const McWire&) = delete;
  bool ok() const { return fd_ >= 0; }
  virtual std::string exchange(const std::string& request, bool (*complete)(std::string_view)) = 0;
  virtual std::size_t max_value() const = 0;

 protected:
  explicit McWire(int fd) : fd_(fd) {}
  int fd_;
};

inline bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// memcached over one TCP connection.
class McTcpWire final : public McWire {
 public:
  McTcpWire(uint32_t ip_be, uint16_t port) : McWire(connect_socket(SOCK_STREAM, ip_be, port)) {}
  std::string exchange(const std::string& req, bool (*complete)(std::string_view)) override {
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return "";
    std::string r;
    char buf[65536];
    while (!complete(r)) {
      if (!wait_readable(fd_, 5000)) return "";
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return "";
      r.append(buf, static_cast<std::size_t>(n));
    }
    return r;
  }
  std::size_t max_value() const override { return std::size_t{1} << 20; }
};

// memcached over UDP: one request datagram with the frame header, the reply
// joined from its datagrams in sequence order.
class McUdpWire final : public McWire {
 public:
  McUdpWire(uint32_t ip_be, uint16_t port) : McWire(connect_socket(SOCK_DGRAM, ip_be, port)) {}
  std::string exchange(const std::string& req, bool (*complete)(std::string_view)) override {
    const uint16_t id = ++request_id_;
    std::string d(proto::mc::kUdpHeaderSize, '\0');
    proto::mc::encode_udp_header({id, 0, 1, 0}, reinterpret_cast<uint8_t*>(d.data()));
    d += req;
    if (::send(fd_, d.data(), d.size(), 0) != static_cast<ssize_t>(d.size())) return "";
    std::map<uint16_t, std::string> parts;
    uint16_t count = 1;
    char buf[2048];
    while (parts.size() < count) {
      if (!wait_readable(fd_, 2000)) return "";
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      proto::mc::UdpHeader h;
      if (n <= 0 || !proto::mc::decode_udp_header(std::string_view(buf, static_cast<std::size_t>(n)), &h)) return "";
      if (h.request_id != id) continue;  // a late reply to an earlier request
      count = h.count;
      parts[h.seq] = std::string(buf, static_cast<std::size_t>(n)).substr(proto::mc::kUdpHeaderSize);
    }
    std::string r;
    for (auto& [seq, p] : parts) r += p;
    return complete(r) ? r : "";
  }
  // A request is one datagram: the command line and the value in 1400 bytes.
  std::size_t max_value() const override { return 1024; }

 private:
  uint16_t request_id_ = 0;
};

// The native ops in memcached's text commands.
class McTransport final : public KvTransport {
 public:
  explicit McTransport(McWire* wire) : w_(wire) {}
  bool run(std::span<const proto::RequestOp> ops, std::vector<OpReply>* out) override;
  std::size_t max_value() const override { return w_->max_value(); }
  bool scan_all(std::map<std::string, std::string>*) override { return false; }

 private:
  McWire* w_;
};

namespace mc_reply {
// A one-line reply is whole at its "\r\n".
inline bool line(std::string_view r) { return r.find("\r\n") != std::string_view::npos; }
// A gets reply: "END\r\n", or one VALUE line, its data and "END\r\n", or an error line.
inline bool value(std::string_view r) {
  if (!r.starts_with("VALUE ")) return line(r);
  const std::size_t eol = r.find("\r\n");
  if (eol == std::string_view::npos) return false;
  // VALUE <key> <flags> <bytes> <cas>
  std::string_view h = r.substr(0, eol);
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) pos = h.find(' ', pos + 1);
  const std::size_t bytes = std::stoull(std::string(h.substr(pos + 1)));
  return r.size() >= eol + 2 + bytes + 2 + 5;
}
}  // namespace mc_reply

inline bool McTransport::run(std::span<const proto::RequestOp> ops, std::vector<OpReply>* out) {
  using proto::Opcode;
  using proto::OpStatus;
  out->clear();
  for (const proto::RequestOp& o : ops) {
    const std::string key(o.key);
    const std::string block = " " + std::to_string(o.client_flags) + " " + std::to_string(o.exptime) + " " +
                              std::to_string(o.value.size());
    std::string req;
    const char* store = nullptr;
    switch (o.opcode) {
      case Opcode::kSet: store = "set"; break;
      case Opcode::kAdd: store = "add"; break;
      case Opcode::kReplace: store = "replace"; break;
      case Opcode::kAppend: store = "append"; break;
      case Opcode::kPrepend: store = "prepend"; break;
      case Opcode::kCas: req = "cas " + key + block + " " + std::to_string(o.arg) + "\r\n"; break;
      case Opcode::kGet: req = "gets " + key + "\r\n"; break;
      case Opcode::kIncr: req = "incr " + key + " " + std::to_string(o.arg) + "\r\n"; break;
      case Opcode::kDecr: req = "decr " + key + " " + std::to_string(o.arg) + "\r\n"; break;
      case Opcode::kTouch: req = "touch " + key + " " + std::to_string(o.exptime) + "\r\n"; break;
      case Opcode::kDel: req = "delete " + key + "\r\n"; break;
      case Opcode::kNoop: req = "mn\r\n"; break;
      default: return false;  // stats, scan: no memcached equivalent here
    }
    if (store != nullptr) req = std::string(store) + " " + key + block + "\r\n";
    if (store != nullptr || o.opcode == Opcode::kCas) req += std::string(o.value) + "\r\n";
    const bool is_get = o.opcode == Opcode::kGet;
    const std::string r = w_->exchange(req, is_get ? mc_reply::value : mc_reply::line);
    if (r.empty()) return false;
    OpReply x;
    const std::string first = r.substr(0, r.find("\r\n"));
    if (is_get && first.starts_with("VALUE ")) {
      // VALUE <key> <flags> <bytes> <cas>
      char k[256];
      unsigned long long flags = 0, bytes = 0, cas = 0;
      if (std::sscanf(first.c_str(), "VALUE %255s %llu %llu %llu", k, &flags, &bytes, &cas) != 4) return false;
      x.flags = static_cast<uint32_t>(flags);
      x.version = cas;
      x.value = r.substr(first.size() + 2, bytes);
    } else if (is_get && first == "END") {
      x.status = OpStatus::kNotFound;
    } else if (first == "STORED" || first == "DELETED" || first == "TOUCHED" || first == "MN") {
      x.status = OpStatus::kOk;
    } else if (first == "NOT_STORED") {
      x.status = o.opcode == Opcode::kAdd ? OpStatus::kExists : OpStatus::kNotStored;
    } else if (first == "EXISTS") {
      x.status = OpStatus::kCasMismatch;
    } else if (first == "NOT_FOUND") {
      x.status = OpStatus::kNotFound;
    } else if ((o.opcode == Opcode::kIncr || o.opcode == Opcode::kDecr) && !first.empty() &&
               first.find_first_not_of("0123456789") == std::string::npos) {
      x.value = first;
    } else if (first.starts_with("CLIENT_ERROR cannot increment or decrement non-numeric value")) {
      x.status = OpStatus::kNotNumeric;
    } else if (first.starts_with("SERVER_ERROR object too large")) {
      x.status = OpStatus::kTooLarge;
    } else if (first.starts_with("SERVER_ERROR out of memory")) {
      x.status = OpStatus::kOutOfMemory;
    } else {
      x.status = OpStatus::kMalformed;  // any other error line
      x.value = first;
    }
    out->push_back(std::move(x));
  }
  return true;
}

}  // namespace ferrite::testing
