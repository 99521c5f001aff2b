// Client (see client.h).
#include "client/client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

namespace ferrite::client {

std::string_view status_name(proto::OpStatus s) noexcept {
  switch (s) {
    case proto::OpStatus::kOk: return "ok";
    case proto::OpStatus::kNotFound: return "not found";
    case proto::OpStatus::kExists: return "exists";
    case proto::OpStatus::kNotStored: return "not stored";
    case proto::OpStatus::kCasMismatch: return "cas mismatch";
    case proto::OpStatus::kOutOfMemory: return "out of memory";
    case proto::OpStatus::kTooLarge: return "too large";
    case proto::OpStatus::kBadKey: return "bad key";
    case proto::OpStatus::kNotNumeric: return "not numeric";
    case proto::OpStatus::kMalformed: return "malformed";
    case proto::OpStatus::kUnknownOpcode: return "unknown opcode";
  }
  return "unknown status";
}

StatusOr<std::unique_ptr<Client>> Client::connect(const std::string& host, uint16_t port, const ClientOptions& opts) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Status::invalid_argument(fmt::format("cannot resolve {}: {}", host, gai_strerror(rc)));
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return Status::io_error(fmt::format("socket(): {}", std::strerror(errno)));
  }
  // A 1 MiB value comes back as ~730 datagrams in one burst: ask for a
  // receive buffer that holds them. SO_RCVBUFFORCE works for root; others get
  // what net.core.rmem_max allows (raise it for big values, see
  // docs/operations.md), and lost fragments cost a retry.
  int rcvbuf = 16 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  // connect(): the kernel then delivers only the server's datagrams to us.
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int err = errno;
    ::freeaddrinfo(res);
    ::close(fd);
    return Status::io_error(fmt::format("cannot reach {}:{}: {}", host, port, std::strerror(err)));
  }
  ::freeaddrinfo(res);
  std::unique_ptr<Client> c(new Client(fd, opts));
  c->next_id_ = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  c->rxbuf_.resize(proto::kMaxDatagram);
  Status s = c->handshake();
  if (!s.is_ok()) return s.with_context(fmt::format("ferrited at {}:{}", host, port));
  return c;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Status Client::handshake() {
  std::vector<uint8_t> ignored;
  // A hello is answered with a cookie datagram; round_trip() stores it.
  return round_trip(proto::MsgType::kHello, {}, &ignored);
}

Status Client::round_trip(proto::MsgType type, std::span<const uint8_t> body, std::vector<uint8_t>* resp) {
  proto::Header h;
  h.type = type;
  h.request_id = next_id_++;
  int cookie_refreshes = 0;
  for (int attempt = 0; attempt < opts_.attempts; ++attempt) {
    if (attempt > 0) ++retries_;
    h.cookie = cookie_;
    std::size_t n = proto::fragment(h, body, opts_.max_datagram, &scratch_, [&](std::span<const uint8_t> dg) {
      (void)::send(fd_, dg.data(), dg.size(), 0);
    });
    if (n == 0) return Status::invalid_argument("request too large for one message (limit 2 MiB)");
    proto::Reassembly re;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.timeout_ms);
    bool resend = false;
    while (!resend) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t got = ::recv(fd_, rxbuf_.data(), rxbuf_.size(), 0);
      if (got <= 0) continue;  // e.g. ECONNREFUSED from an ICMP port-unreachable: keep waiting
      proto::Header rh;
      std::span<const uint8_t> payload;
      if (proto::decode_header(std::span<const uint8_t>(rxbuf_.data(), static_cast<std::size_t>(got)), &rh, &payload) !=
              Result::kOk ||
          rh.request_id != h.request_id) {
        continue;  // stale reply of an earlier attempt or garbage
      }
      switch (rh.type) {
        case proto::MsgType::kCookie:
          cookie_ = rh.cookie;
          if (type == proto::MsgType::kHello) return Status::ok();
          resend = true;  // the server did not know us: same id, now with the cookie
          break;
        case proto::MsgType::kError:
          return Status::invalid_argument("server could not decode the request (error reply)");
        case proto::MsgType::kResponse: {
          Result r = re.add(rh, payload);
          if (r == Result::kOk) {
            resp->assign(re.body().begin(), re.body().end());
            return Status::ok();
          }
          if (r == Result::kMalformed) return Status::corruption("inconsistent response fragments");
          break;
        }
        default:
          break;
      }
    }
    // A cookie refresh is not a failed attempt, but it may happen only twice
    // per request (a server that never accepts our cookie is broken).
    if (resend && ++cookie_refreshes <= 2) --attempt;
  }
  return Status::io_error(fmt::format("no reply after {} attempts of {} ms", opts_.attempts, opts_.timeout_ms));
}

Status Client::execute(std::span<const proto::RequestOp> ops, std::vector<Reply>* replies) {
  std::vector<uint8_t> body;
  for (const auto& op : ops) proto::append_request_op(&body, op);
  std::vector<uint8_t> resp;
  FERRITE_RETURN_IF_ERROR(round_trip(proto::MsgType::kRequest, body, &resp));
  replies->clear();
  proto::ResponseReader rd(resp);
  proto::ResponseOp rop;
  Result r;
  while ((r = rd.next(&rop)) == Result::kOk) {
    Reply rep;
    rep.status = rop.status;
    rep.value.assign(rop.value);
    rep.flags = rop.client_flags;
    rep.version = rop.version;
    replies->push_back(std::move(rep));
  }
  if (r == Result::kMalformed) return Status::corruption("malformed response body");
  return Status::ok();
}

namespace {
proto::RequestOp make(proto::Opcode c, std::string_view key, std::string_view value = {}, uint32_t flags = 0,
                      uint32_t exptime = 0, uint64_t arg = 0) {
  proto::RequestOp op;
  op.opcode = c;
  op.key = key;
  op.value = value;
  op.client_flags = flags;
  op.exptime = exptime;
  op.arg = arg;
  return op;
}
}  // namespace

StatusOr<proto::OpStatus> Client::get(std::string_view key, Reply* out) {
  auto op = make(proto::Opcode::kGet, key);
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1) return Status::corruption("expected one reply");
  *out = std::move(r[0]);
  return out->status;
}

StatusOr<proto::OpStatus> Client::set(std::string_view key, std::string_view value, uint32_t flags, uint32_t exptime) {
  auto op = make(proto::Opcode::kSet, key, value, flags, exptime);
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1) return Status::corruption("expected one reply");
  return r[0].status;
}

StatusOr<proto::OpStatus> Client::del(std::string_view key) {
  auto op = make(proto::Opcode::kDel, key);
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1) return Status::corruption("expected one reply");
  return r[0].status;
}

StatusOr<proto::OpStatus> Client::incr(std::string_view key, uint64_t delta, uint64_t* value, bool decr) {
  auto op = make(decr ? proto::Opcode::kDecr : proto::Opcode::kIncr, key, {}, 0, 0, delta);
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1) return Status::corruption("expected one reply");
  if (r[0].status == proto::OpStatus::kOk && value != nullptr) *value = std::stoull(r[0].value);
  return r[0].status;
}

StatusOr<std::string> Client::stats() {
  auto op = make(proto::Opcode::kStats, {});
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1) return Status::corruption("expected one reply");
  return r[0].value;
}

Status Client::scan(uint64_t cursor, std::string* page_storage, std::vector<proto::ScanEntry>* entries, uint64_t* next,
                    bool* done) {
  auto op = make(proto::Opcode::kScan, {}, {}, 0, 0, cursor);
  std::vector<Reply> r;
  FERRITE_RETURN_IF_ERROR(execute(std::span(&op, 1), &r));
  if (r.size() != 1 || r[0].status != proto::OpStatus::kOk) return Status::corruption("scan: unexpected reply");
  *page_storage = std::move(r[0].value);
  if (!proto::read_scan_page(*page_storage, entries)) return Status::corruption("scan: malformed page");
  *next = r[0].version;
  *done = r[0].flags == proto::kScanDone;
  return Status::ok();
}

Status Client::TEST_send_raw(std::span<const uint8_t> bytes) {
  if (::send(fd_, bytes.data(), bytes.size(), 0) < 0) return Status::io_error(std::strerror(errno));
  return Status::ok();
}

StatusOr<std::vector<uint8_t>> Client::TEST_recv_raw(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return Status::not_found("no datagram");
  ssize_t got = ::recv(fd_, rxbuf_.data(), rxbuf_.size(), 0);
  if (got < 0) return Status::io_error(std::strerror(errno));
  return std::vector<uint8_t>(rxbuf_.begin(), rxbuf_.begin() + got);
}

}  // namespace ferrite::client
