// CookieKeys (see cookie.h): SipHash-2-4 cookies under a rotating secret.
// Concurrency contract in cookie.h (one rotating thread, any number of
// readers; labels R0/A0 below).
#include "server/cookie.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

namespace ferrite::server {

static_assert(CookieKeys::kKeyBytes == crypto_shorthash_KEYBYTES);
static_assert(crypto_shorthash_BYTES == 8);

CookieKeys::CookieKeys(std::chrono::seconds period)
    : period_(period < std::chrono::seconds(1) ? std::chrono::seconds(1) : period),
      last_rotation_(std::chrono::steady_clock::now()) {
  // randombytes needs an initialised library; sodium_init is idempotent and
  // thread-safe. It fails only when no entropy source can be opened, and a
  // predictable secret is exactly what this class exists to prevent.
  if (sodium_init() < 0) std::abort();
  store_random(0);
  store_random(kSlots - 1);  // "previous" of generation 0: random too, never all-zero
}

uint64_t CookieKeys::prf(const Key& key, uint64_t addr) noexcept {
  uint8_t in[8], out[8];
  for (int i = 0; i < 8; ++i) in[i] = static_cast<uint8_t>(addr >> (8 * i));
  crypto_shorthash(out, in, sizeof(in), key.data());
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h |= uint64_t{out[i]} << (8 * i);
  return h | 1;  // never 0 ("no cookie")
}

CookieKeys::Key CookieKeys::load(uint64_t gen) const noexcept {
  Key k;
  const Slot& s = slots_[gen % kSlots];
  for (std::size_t i = 0; i < s.words.size(); ++i) {
    const uint64_t w = s.words[i].load(std::memory_order_relaxed);  // ordered by A0 (invariant 1)
    std::memcpy(k.data() + 8 * i, &w, 8);
  }
  return k;
}

void CookieKeys::store_random(uint64_t gen) noexcept {
  Key k;
  randombytes_buf(k.data(), k.size());
  Slot& s = slots_[gen % kSlots];
  for (std::size_t i = 0; i < s.words.size(); ++i) {
    uint64_t w;
    std::memcpy(&w, k.data() + 8 * i, 8);
    s.words[i].store(w, std::memory_order_relaxed);  // published by R0
  }
  sodium_memzero(k.data(), k.size());
}

uint64_t CookieKeys::issue(uint64_t addr) const noexcept {
  // A0: pairs with R0 in rotate(): the current slot's words are the ones
  // rotate() wrote before making this generation current.
  const uint64_t g = gen_.load(std::memory_order_acquire);
  return prf(load(g), addr);
}

bool CookieKeys::accepts(uint64_t addr, uint64_t cookie) const noexcept {
  const uint64_t g = gen_.load(std::memory_order_acquire);  // A0 (as in issue)
  if (prf(load(g), addr) == cookie) return true;
  return prf(load(g + kSlots - 1), addr) == cookie;  // the previous secret
}

void CookieKeys::rotate() noexcept {
  const uint64_t g = gen_.load(std::memory_order_relaxed);  // only this thread writes gen_
  store_random(g + 1);
  // R0: pairs with A0 in issue()/accepts(): a reader that sees g + 1 sees
  // the whole new secret.
  gen_.store(g + 1, std::memory_order_release);
}

bool CookieKeys::maybe_rotate(std::chrono::steady_clock::time_point now) noexcept {
  if (now - last_rotation_ < period_) return false;
  rotate();
  last_rotation_ = now;
  return true;
}

}  // namespace ferrite::server
