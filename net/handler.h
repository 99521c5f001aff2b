// The seam between net/ and everything above it: a backend receives bursts of
// UDP payloads and hands them to a PacketHandler, which fills a reply queue.
// net/ knows nothing of keys or protocols; the server's engine implements
// PacketHandler, tests implement a trivial echo.
//
// Thread safety: a backend calls on_burst() for worker w only from worker w's
// thread; the handler keeps per-worker state indexed by w.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ferrite::net {

struct Datagram {
  sockaddr_in peer{};                   // source (rx) or destination (tx)
  std::span<const uint8_t> payload;     // valid until on_burst() returns
};

// Replies produced during one burst. Bytes live in the queue's arena, which
// is reused burst after burst (no allocation in steady state); an arena grown
// past kKeptArena by a burst of large replies is freed, not kept.
class TxQueue {
 public:
  static constexpr std::size_t kKeptArena = 4u << 20;
  void clear() noexcept {
    arena_.clear();
    items_.clear();
    if (arena_.capacity() > kKeptArena) std::vector<uint8_t>().swap(arena_);
  }
  // Reserves len bytes for a datagram to peer; returns where to write them.
  uint8_t* add(const sockaddr_in& peer, std::size_t len) {
    items_.push_back(Item{peer, arena_.size(), len});
    arena_.resize(arena_.size() + len);
    return arena_.data() + items_.back().off;
  }
  void push(const sockaddr_in& peer, std::span<const uint8_t> bytes) {
    uint8_t* p = add(peer, bytes.size());
    if (!bytes.empty()) __builtin_memcpy(p, bytes.data(), bytes.size());
  }
  std::size_t size() const noexcept { return items_.size(); }
  const sockaddr_in& peer(std::size_t i) const noexcept { return items_[i].peer; }
  std::span<const uint8_t> bytes(std::size_t i) const noexcept { return {arena_.data() + items_[i].off, items_[i].len}; }

 private:
  struct Item {
    sockaddr_in peer;
    std::size_t off;
    std::size_t len;
  };
  std::vector<uint8_t> arena_;
  std::vector<Item> items_;
};

class PacketHandler {
 public:
  virtual ~PacketHandler() = default;
  // Handles one received burst on worker `worker`; replies go to out. Every
  // reply in out may be sent as soon as this returns.
  virtual void on_burst(unsigned worker, std::span<const Datagram> in, TxQueue& out) = 0;
  // Called when the worker's receive loop is idle (no packets this round):
  // a place for housekeeping (quiescent-state reports, timeouts).
  virtual void on_idle(unsigned worker) { (void)worker; }
};

}  // namespace ferrite::net
