// Cookie tests (server/cookie.h): the PRF is SipHash-2-4, the secret rotates
// with current + previous accepted, and the key-recovery attack of issue 15
// (which forges every cookie of the old XXH3-with-seed function from two
// cookies of one's own address) gets nothing from the real Engine::cookie_for.
//
// Thread safety: single-threaded tests, except RotationWhileReading (one
// rotating thread, readers on the test thread).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <random>
#include <thread>

#include "index/index.h"
#include "server/cookie.h"
#include "server/engine.h"
#include "tests/util/pool_fixture.h"

namespace ferrite::server {
namespace {

// The engine's 8-byte address of a peer: IPv4 << 16 | port (host order).
uint64_t addr_of(uint32_t ip, uint16_t port) { return (uint64_t{ip} << 16) | port; }
sockaddr_in peer(uint32_t ip, uint16_t port) {
  sockaddr_in p{};
  p.sin_family = AF_INET;
  p.sin_addr.s_addr = htonl(ip);
  p.sin_port = htons(port);
  return p;
}

// ---- The attack of issue 15, written from XXH3's public algorithm ----------
// For an 8-byte input XXH3-64 computes rrmxmx(rotl64(input, 32) ^ K, 8),
// where K depends only on the seed and XXH3's public default secret. Every
// step of rrmxmx is invertible, so one cookie from one's own address gives
// K (two candidates: the cookie's low bit is forced to 1), a second cookie
// picks the candidate, and K gives the cookie of every address.
constexpr uint64_t kMx2 = 0x9FB21C651E98DF25ULL;
uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t rrmxmx(uint64_t h, uint64_t len) {
  h ^= rotl(h, 49) ^ rotl(h, 24);
  h *= kMx2;
  h ^= (h >> 35) + len;
  h *= kMx2;
  return h ^ (h >> 28);
}
uint64_t inverse_mod_2_64(uint64_t a) {  // a odd; Newton: correct bits double per step
  uint64_t x = a;                        // a * a == 1 mod 8
  for (int i = 0; i < 5; ++i) x *= 2 - a * x;
  return x;
}
uint64_t unrrmxmx(uint64_t h, uint64_t len) {
  static const uint64_t inv = inverse_mod_2_64(kMx2);
  h ^= (h >> 28) ^ (h >> 56);  // undoes h ^= h >> 28
  h *= inv;
  h ^= (h >> 35) + len;  // its own inverse: bits 30..63 are unchanged by it
  h *= inv;
  // L = 1 + x^49 + x^24 over GF(2)[x]/(x^64 + 1): L^64 = 1, so L^-1 = L^63.
  for (int i = 0; i < 63; ++i) h ^= rotl(h, 49) ^ rotl(h, 24);
  return h;
}
uint64_t xxh3_input(uint64_t addr) { return rotl(addr, 32); }  // little-endian halves, swapped

// The cookie function on main before issue 15 (server/engine.cc).
uint64_t old_cookie(uint64_t addr, uint64_t seed) { return XXH3_64bits_withSeed(&addr, sizeof(addr), seed) | 1; }

struct Attack {
  bool key_found = false;
  uint64_t key = 0;
  uint64_t forge(uint64_t victim) const { return rrmxmx(xxh3_input(victim) ^ key, 8) | 1; }
};
// Two cookies seen from the attacker's own address, two source ports.
Attack recover_key(uint64_t a1, uint64_t c1, uint64_t a2, uint64_t c2) {
  Attack at;
  for (uint64_t raw : {c1, c1 & ~uint64_t{1}}) {
    const uint64_t k = unrrmxmx(raw, 8) ^ xxh3_input(a1);
    if ((rrmxmx(xxh3_input(a2) ^ k, 8) | 1) == c2) return Attack{true, k};
    if (!at.key_found) at.key = k;  // a guess, used if nothing fits
  }
  return at;
}

constexpr uint32_t kAttackerIp = 0x7f000005;  // 127.0.0.5

TEST(CookieAttack, RecoversTheKeyOfTheOldXxh3CookieAndForgesEveryVictim) {
  std::mt19937_64 rng(15);
  const uint64_t seed = rng() | 1;
  const uint64_t a1 = addr_of(kAttackerIp, 40000), a2 = addr_of(kAttackerIp, 40001);
  const Attack at = recover_key(a1, old_cookie(a1, seed), a2, old_cookie(a2, seed));
  ASSERT_TRUE(at.key_found);
  int forged = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t victim = addr_of(static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()));
    forged += at.forge(victim) == old_cookie(victim, seed);
  }
  EXPECT_EQ(forged, 1000);  // the attack works: the old cookie proved nothing
}

class EngineCookie : public testing::PoolIndexTest {
 protected:
  EngineCookie() : PoolIndexTest("cookie_test") {}
  void SetUp() override {
    create_pool();
    open_index({.workers = 1, .background_repair = false});
  }
};

TEST_F(EngineCookie, TheSameAttackForgesNothingAgainstTheRealCookie) {
  Engine engine(*idx_, EngineOptions{});
  const uint64_t a1 = addr_of(kAttackerIp, 40000), a2 = addr_of(kAttackerIp, 40001);
  const Attack at = recover_key(a1, engine.cookie_for(peer(kAttackerIp, 40000)), a2,
                                engine.cookie_for(peer(kAttackerIp, 40001)));
  EXPECT_FALSE(at.key_found);  // no XXH3 key explains two SipHash cookies
  std::mt19937_64 rng(15);
  int forged = 0, accepted = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t ip = static_cast<uint32_t>(rng());
    const uint16_t port = static_cast<uint16_t>(rng());
    const uint64_t guess = at.forge(addr_of(ip, port));
    forged += guess == engine.cookie_for(peer(ip, port));
    accepted += engine.TEST_cookies().accepts(addr_of(ip, port), guess);
  }
  EXPECT_EQ(forged, 0);
  EXPECT_EQ(accepted, 0);
}

TEST_F(EngineCookie, TwoEnginesHaveDifferentSecrets) {
  Engine e1(*idx_, EngineOptions{}), e2(*idx_, EngineOptions{});
  EXPECT_NE(e1.cookie_for(peer(kAttackerIp, 1)), e2.cookie_for(peer(kAttackerIp, 1)));
}

TEST(CookieKeys, PrfIsSipHash24) {
  // SipHash-2-4 reference vector (Aumasson & Bernstein, vectors_sip64[8]):
  // key 00..0f, message 00..07 -> 62 24 93 9a 79 f5 f5 93 (little-endian).
  CookieKeys::Key k;
  for (int i = 0; i < 16; ++i) k[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(CookieKeys::prf(k, 0x0706050403020100ULL), 0x93f5f5799a932462ULL | 1);
}

TEST(CookieKeys, CurrentAndPreviousAcceptedOlderRefused) {
  CookieKeys ck(std::chrono::seconds(60));
  const uint64_t a = addr_of(kAttackerIp, 7);
  const uint64_t c0 = ck.issue(a);
  EXPECT_NE(c0, 0u);
  EXPECT_TRUE(ck.accepts(a, c0));
  EXPECT_FALSE(ck.accepts(a + 1, c0));  // another port
  ck.rotate();
  const uint64_t c1 = ck.issue(a);
  EXPECT_NE(c1, c0);
  EXPECT_TRUE(ck.accepts(a, c1));
  EXPECT_TRUE(ck.accepts(a, c0));  // previous secret: still good
  ck.rotate();
  EXPECT_TRUE(ck.accepts(a, c1));
  EXPECT_FALSE(ck.accepts(a, c0));  // two rotations old: refused
  EXPECT_EQ(ck.rotations(), 2u);
}

TEST(CookieKeys, RotatesOncePerPeriod) {
  CookieKeys ck(std::chrono::seconds(10));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ck.maybe_rotate(t0 + std::chrono::seconds(5)));
  EXPECT_TRUE(ck.maybe_rotate(t0 + std::chrono::seconds(11)));
  EXPECT_FALSE(ck.maybe_rotate(t0 + std::chrono::seconds(15)));
  EXPECT_TRUE(ck.maybe_rotate(t0 + std::chrono::seconds(22)));
  EXPECT_EQ(ck.rotations(), 2u);
}

TEST(CookieKeys, RotationWhileReading) {
  // A cookie just issued is accepted unless two rotations happen between the
  // issue and the check (a reader preempted that long): those rounds are not
  // counted (rotations() is read before and after; one atomic, so the reads
  // are ordered). Every counted round must accept.
  CookieKeys ck(std::chrono::seconds(1));
  std::atomic<bool> stop{false};
  std::thread rot([&] {
    for (int i = 0; i < 200 && !stop.load(); ++i) {
      ck.rotate();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  int refused = 0, counted = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (uint64_t i = 0; i < 200000 && std::chrono::steady_clock::now() < deadline; ++i) {
    const uint64_t g0 = ck.rotations();
    const uint64_t c = ck.issue(i);
    const bool ok = ck.accepts(i, c);
    if (ck.rotations() - g0 >= 2) continue;
    ++counted;
    refused += !ok;
  }
  stop = true;
  rot.join();
  EXPECT_EQ(refused, 0);
  EXPECT_GT(counted, 1000);
}

}  // namespace
}  // namespace ferrite::server
