// Kernel UDP backend (see kernel_backend.h).
#include "net/kernel_backend.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "net/port_claim.h"

namespace ferrite::net {

StatusOr<std::unique_ptr<KernelBackend>> KernelBackend::create(const KernelBackendOptions& opts,
                                                               PacketHandler& handler) {
  if (opts.workers == 0 || opts.workers > 64) return Status::invalid_argument("workers must be 1..64");
  std::unique_ptr<KernelBackend> b(new KernelBackend(opts, handler));
  // Port exclusivity (net/port_claim.h, I1): the group's first socket is
  // bound under the port's bind lock, after a probe without SO_REUSEPORT
  // showed nobody serves the port. Port 0 is first resolved with a plain
  // socket: an ephemeral pick WITH SO_REUSEPORT may land in another
  // process's group of the same user.
  uint16_t port = opts.port;
  UdpSocket pick;
  if (port == 0) {
    auto s = UdpSocket::bind(opts.bind, 0, /*reuseport=*/false);
    if (!s) return s.status();
    port = s->local_port();
    pick = std::move(s).value();
  }
  auto lock = PortBindLock::acquire(PortProto::kUdp, port, opts.role);
  if (!lock) return lock.status();
  pick = UdpSocket();  // released under the lock; the probe takes its place
  if (Status st = probe_port_free(PortProto::kUdp, opts.bind, port, opts.role); !st.is_ok()) return st;
  for (unsigned w = 0; w < opts.workers; ++w) {
    auto s = UdpSocket::bind(opts.bind, port, /*reuseport=*/true);
    if (!s) return s.status().with_context(opts.role);
    // Room for bursts of fragments (a 1 MiB value is ~730 datagrams): root
    // may exceed net.core.rmem_max with SO_RCVBUFFORCE; others get the max.
    int bytes = 32 << 20;
    if (::setsockopt(s->fd(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0) {
      (void)::setsockopt(s->fd(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    }
    b->socks_.push_back(std::move(s).value());
  }
  b->port_ = port;
  b->stats_.reset(new KernelWorkerStats[opts.workers]);
  return b;
}

KernelBackend::~KernelBackend() { stop(); }

void KernelBackend::start() {
  stop_.store(false, std::memory_order_relaxed);
  for (unsigned w = 0; w < socks_.size(); ++w) threads_.emplace_back([this, w] { run(w); });
}

void KernelBackend::stop() {
  stop_.store(true, std::memory_order_relaxed);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void KernelBackend::run(unsigned w) {
  if (opts_.pin_cores) {
    cpu_set_t set;
    CPU_ZERO(&set);
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    CPU_SET(static_cast<int>(w % static_cast<unsigned>(ncpu > 0 ? ncpu : 1)), &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  const int fd = socks_[w].fd();
  const unsigned burst = opts_.burst;
  constexpr std::size_t kBuf = 65536;  // any UDP datagram fits
  std::vector<uint8_t> bufs(static_cast<std::size_t>(burst) * kBuf);
  std::vector<mmsghdr> rx(burst);
  std::vector<iovec> iov(burst);
  std::vector<sockaddr_in> peers(burst);
  std::vector<Datagram> in(burst);
  TxQueue out;
  std::vector<mmsghdr> tx;
  std::vector<iovec> txiov;
  KernelWorkerStats& st = stats_[w];
  pollfd pfd{fd, POLLIN, 0};

  while (!stop_.load(std::memory_order_relaxed)) {
    for (unsigned i = 0; i < burst; ++i) {
      iov[i] = iovec{bufs.data() + i * kBuf, kBuf};
      rx[i].msg_hdr = msghdr{};
      rx[i].msg_hdr.msg_name = &peers[i];
      rx[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      rx[i].msg_hdr.msg_iov = &iov[i];
      rx[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(fd, rx.data(), burst, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      handler_.on_idle(w);
      (void)::poll(&pfd, 1, opts_.poll_timeout_ms);
      continue;
    }
    st.bursts.fetch_add(1, std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
      if (rx[i].msg_hdr.msg_flags & MSG_TRUNC) st.rx_truncated.fetch_add(1, std::memory_order_relaxed);
      in[i].peer = peers[i];
      in[i].payload = std::span<const uint8_t>(bufs.data() + static_cast<std::size_t>(i) * kBuf, rx[i].msg_len);
      st.rx_bytes.fetch_add(rx[i].msg_len, std::memory_order_relaxed);
    }
    st.rx_packets.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    out.clear();
    handler_.on_burst(w, std::span<const Datagram>(in.data(), static_cast<std::size_t>(n)), out);
    // Replies leave only now: on_burst() returned, so their effects are durable.
    std::size_t sent = 0;
    while (sent < out.size()) {
      const std::size_t m = std::min<std::size_t>(out.size() - sent, 64);
      tx.assign(m, mmsghdr{});
      txiov.resize(m);
      for (std::size_t i = 0; i < m; ++i) {
        auto b = out.bytes(sent + i);
        txiov[i] = iovec{const_cast<uint8_t*>(b.data()), b.size()};
        tx[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&out.peer(sent + i));
        tx[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        tx[i].msg_hdr.msg_iov = &txiov[i];
        tx[i].msg_hdr.msg_iovlen = 1;
      }
      int k = ::sendmmsg(fd, tx.data(), static_cast<unsigned>(m), 0);
      if (k <= 0) {
        // Counted and dropped: UDP gives no delivery promise, the client retries.
        st.tx_errors.fetch_add(1, std::memory_order_relaxed);
        k = 1;
      } else {
        for (int i = 0; i < k; ++i) st.tx_bytes.fetch_add(txiov[static_cast<std::size_t>(i)].iov_len, std::memory_order_relaxed);
        st.tx_packets.fetch_add(static_cast<uint64_t>(k), std::memory_order_relaxed);
      }
      sent += static_cast<std::size_t>(k);
    }
  }
}

void KernelBackend::add_stats(stats::Registry& reg) const {
  using W = KernelWorkerStats;
  const stats::Workers<W> w{[this] { return std::size_t{workers()}; },
                            [this](std::size_t i) -> const W& { return stats_[i]; }};
  for (std::size_t i = 0; i < workers(); ++i) {
    const std::string p = "worker" + std::to_string(i);
    reg.counter(p + "_rx_packets", "datagrams this worker received", [w, i] { return w.of(i, &W::rx_packets); });
    reg.counter(p + "_tx_packets", "datagrams this worker sent", [w, i] { return w.of(i, &W::tx_packets); });
    reg.counter(p + "_tx_errors", "datagrams sendmmsg could not send", [w, i] { return w.of(i, &W::tx_errors); });
  }
}

}  // namespace ferrite::net
