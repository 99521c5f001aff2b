// CookieKeys: the anti-amplification cookie (docs/protocol.md, "Cookies").
// A cookie is SipHash-2-4 (libsodium's crypto_shorthash, a keyed PRF) of the
// peer's 8-byte address (IPv4 << 16 | port) under a 16-byte random secret.
// Without the secret, cookies seen for one's own addresses say nothing about
// another address's cookie (the old XXH3-with-seed cookie could be inverted:
// issue 15). The secret rotates every `period`; a cookie under the current
// or the previous secret is accepted, so a client that sends at least once
// per period never sees a cookie refresh, and a cookie stops working at most
// 2 periods after it was issued.
//
// Thread safety: issue()/accepts() may be called from any number of threads
// (the workers) concurrently with rotate()/maybe_rotate(), which have ONE
// caller at a time (the housekeeping thread; tests).
// Invariants:
//   1. gen_ only grows; slot gen_ % kSlots holds the current secret, slot
//      (gen_ - 1) % kSlots the previous one, both fully written before gen_
//      made them current (R0/A0).
//   2. rotate() writes slot (gen_ + 1) % kSlots, which a reader that loaded
//      gen_ = g reads only if it loaded g - 2 or g - 3 and is still running:
//      stalled for 2 rotations (>= 2 s). Such a reader may see a torn key and
//      computes a wrong cookie: the datagram is answered with a fresh cookie,
//      never accepted wrongly except with probability 2^-64. The key words
//      are relaxed atomics, so this race is benign and defined.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace ferrite::server {

class CookieKeys {
 public:
  static constexpr std::size_t kKeyBytes = 16;  // crypto_shorthash_KEYBYTES (checked in cookie.cc)
  using Key = std::array<uint8_t, kKeyBytes>;

  // A random first secret (libsodium's randombytes). period >= 1 s.
  explicit CookieKeys(std::chrono::seconds period = std::chrono::seconds(600));

  // The cookie for addr under the current secret; never 0 ("no cookie").
  uint64_t issue(uint64_t addr) const noexcept;
  // True when cookie is addr's cookie under the current or the previous secret.
  bool accepts(uint64_t addr, uint64_t cookie) const noexcept;

  // Housekeeping: rotates when a period has passed since the last rotation
  // (or construction); true if it rotated. One caller at a time.
  bool maybe_rotate(std::chrono::steady_clock::time_point now) noexcept;
  // A new random secret now; the current one becomes the previous one.
  void rotate() noexcept;
  uint64_t rotations() const noexcept { return gen_.load(std::memory_order_relaxed); }
  std::chrono::seconds period() const noexcept { return period_; }

  // The PRF itself: SipHash-2-4(key, little-endian addr), low bit set.
  static uint64_t prf(const Key& key, uint64_t addr) noexcept;

 private:
  static constexpr uint64_t kSlots = 4;
  struct Slot {
    std::array<std::atomic<uint64_t>, kKeyBytes / 8> words{};  // written by rotate(), read racily (invariant 2)
  };
  Key load(uint64_t gen) const noexcept;
  void store_random(uint64_t gen) noexcept;

  std::array<Slot, kSlots> slots_;
  std::atomic<uint64_t> gen_{0};  // written by rotate() (R0), read by every issue/accepts (A0)
  std::chrono::seconds period_;
  std::chrono::steady_clock::time_point last_rotation_;  // rotate()'s caller only
};

}  // namespace ferrite::server
