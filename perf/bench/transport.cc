// Kernel UDP transport (see transport.h).
#include "perf/bench/transport.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferrite::bench {

namespace {

constexpr std::size_t kRxBuf = 2048;  // replies of the bench's workloads fit; longer ones are truncated and counted

class KernelUdp final : public Transport {
 public:
  explicit KernelUdp(const KernelUdpOptions& o) : burst_(o.burst) {}
  ~KernelUdp() override {
    for (int fd : fds_) ::close(fd);
  }

  Status open(const KernelUdpOptions& o) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(o.port);
    if (::inet_pton(AF_INET, o.server.c_str(), &sa.sin_addr) != 1) {
      return Status::invalid_argument(fmt::format("\"{}\" is not an IPv4 address", o.server));
    }
    for (unsigned f = 0; f < o.flows; ++f) {
      int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) return Status::io_error(fmt::format("socket(): {}", std::strerror(errno)));
      fds_.push_back(fd);
      int bytes = 8 << 20;
      if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
      }
      if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
      }
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
        return Status::io_error(fmt::format("connect {}:{}: {}", o.server, o.port, std::strerror(errno)));
      }
      pfds_.push_back(pollfd{fd, POLLIN, 0});
    }
    rxbuf_.resize(burst_ * kRxBuf);
    rxmsg_.resize(burst_);
    rxiov_.resize(burst_);
    txmsg_.resize(burst_);
    out_.resize(burst_);
    return Status::ok();
  }

  unsigned flows() const noexcept override { return static_cast<unsigned>(fds_.size()); }

  std::size_t send(unsigned flow, std::span<const iovec> d) override {
    std::size_t sent = 0;
    while (sent < d.size()) {
      const std::size_t m = std::min(d.size() - sent, burst_);
      for (std::size_t i = 0; i < m; ++i) {
        txmsg_[i] = mmsghdr{};
        txmsg_[i].msg_hdr.msg_iov = const_cast<iovec*>(&d[sent + i]);
        txmsg_[i].msg_hdr.msg_iovlen = 1;
      }
      int k = ::sendmmsg(fds_[flow], txmsg_.data(), static_cast<unsigned>(m), 0);
      if (k <= 0) {
        if (k < 0 && errno == EINTR) continue;
        break;  // EAGAIN / ECONNREFUSED: the caller counts the rest as lost
      }
      sent += static_cast<std::size_t>(k);
    }
    return sent;
  }

  std::span<const RxDatagram> recv(std::size_t max) override {
    std::size_t got = 0;
    max = std::min(max, burst_);
    const unsigned nf = flows();
    for (unsigned tried = 0; tried < nf && got < max; ++tried) {
      const unsigned f = next_rx_;
      next_rx_ = (next_rx_ + 1) % nf;
      const std::size_t want = max - got;
      for (std::size_t i = 0; i < want; ++i) {
        rxiov_[i] = iovec{rxbuf_.data() + (got + i) * kRxBuf, kRxBuf};
        rxmsg_[i] = mmsghdr{};
        rxmsg_[i].msg_hdr.msg_iov = &rxiov_[i];
        rxmsg_[i].msg_hdr.msg_iovlen = 1;
      }
      int n = ::recvmmsg(fds_[f], rxmsg_.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
      for (int i = 0; i < n; ++i) {
        out_[got].flow = f;
        const std::size_t len = (rxmsg_[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : rxmsg_[i].msg_len;  // 0: dropped
        out_[got].bytes = std::span<const uint8_t>(static_cast<const uint8_t*>(rxiov_[i].iov_base), len);
        ++got;
      }
    }
    return std::span<const RxDatagram>(out_.data(), got);
  }

  void wait(int timeout_us) override {
    timespec ts{timeout_us / 1000000, static_cast<long>(timeout_us % 1000000) * 1000};
    (void)::ppoll(pfds_.data(), pfds_.size(), &ts, nullptr);
  }

 private:
  std::size_t burst_;
  std::vector<int> fds_;
  std::vector<pollfd> pfds_;
  std::vector<uint8_t> rxbuf_;
  std::vector<mmsghdr> rxmsg_;
  std::vector<iovec> rxiov_;
  std::vector<mmsghdr> txmsg_;
  std::vector<RxDatagram> out_;
  unsigned next_rx_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Transport>> make_kernel_udp_transport(const KernelUdpOptions& o) {
  if (o.flows == 0 || o.flows > 4096) return Status::invalid_argument("flows must be 1..4096");
  if (o.burst == 0) return Status::invalid_argument("burst must be >= 1");
  auto t = std::make_unique<KernelUdp>(o);
  FERRITE_RETURN_IF_ERROR(t->open(o));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace ferrite::bench
