// corrupt_campaign: random single-bit flips in copies of a small pool, each
// copy opened in a child process (Pool::open as ferrited does it, then
// Index::open and a get of every key) and checked by the real ferrite-check
// (then --repair when it finds problems). Every run must end in a clean open,
// a repair, or a clear error: never a signal, a hang, or a value served with
// wrong bytes (issue 15).
//
//   corrupt_campaign FERRITE_CHECK [--seed N] [--runs N] [--seconds S] [--only REGION]
//
// Flip regions (round robin): "pooldesc" = libpmemobj's pool header and
// descriptor; "lanes" = the ulog headers and first entries of the lanes;
// "heap" = heap header, zone header and chunk headers; "runs" = the starts of
// the first 16 chunks (run headers and allocation bitmaps, index tables,
// log segment headers); "records" = the span holding our records. Deterministic for
// a seed (printed). Exit 0 when every run ended well, 1 otherwise.
//
// Bounds: at most --runs runs and --seconds of wall time; every child is
// waited for at most kChildTimeout and killed (SIGKILL, by PID) after.
// Single-threaded; children are forked and reaped one at a time.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "index/index.h"
#include "pmem/pool.h"

namespace {

using namespace ferrite;
constexpr auto kChildTimeout = std::chrono::seconds(20);
constexpr int kKeys = 300;
constexpr int kOpenOk = 0, kOpenError = 2, kWrongBytes = 3;

std::string key_of(int i) { return fmt::format("campaign-key-{:04}", i); }
std::string value_of(int i) { return std::string(40 + (i * 7) % 200, static_cast<char>('a' + i % 26)) + key_of(i); }

struct Outcome {
  bool exited = false;
  int code = 0;       // exit code when exited
  int sig = 0;        // terminating signal, or SIGKILL after a timeout
  bool hung = false;  // killed after kChildTimeout
};

Outcome wait_bounded(pid_t pid) {
  Outcome o;
  const auto deadline = std::chrono::steady_clock::now() + kChildTimeout;
  int ws = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &ws, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &ws, 0);
      o.hung = true;
      return o;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFEXITED(ws)) {
    o.exited = true;
    o.code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    o.sig = WTERMSIG(ws);
  }
  return o;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The open ferrited does (probe in a child, then open), then the index and a
// get of every key: a served value must be the one written.
Outcome open_in_child(const std::string& pool, const std::string& err_file) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) ::dup2(fd, 2);
    int rc = kOpenOk;
    {
      auto p = pmem::Pool::open(pool, {.probe_in_child = true});
      if (!p) {
        std::fprintf(stderr, "%s\n", p.status().to_string().c_str());
        ::_exit(kOpenError);
      }
      auto idx = index::Index::open(**p, {.workers = 1});
      if (!idx) {
        std::fprintf(stderr, "%s\n", idx.status().to_string().c_str());
        ::_exit(kOpenError);
      }
      for (int i = 0; i < kKeys; ++i) {
        std::string out;
        const std::string k = key_of(i);
        index::Op op = index::Op::get(k, &out);
        if ((*idx)->worker(0).execute_one(op) == ferrite::Result::kOk && out != value_of(i)) {
          std::fprintf(stderr, "key %s served wrong bytes\n", k.c_str());
          rc = kWrongBytes;
        }
      }
    }
    std::fflush(stderr);
    ::_exit(rc);
  }
  return wait_bounded(pid);
}

Outcome run_check(const std::string& exe, const std::vector<std::string>& args, const std::string& out_file) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return wait_bounded(pid);
}

bool make_base(const std::string& path) {
  auto p = pmem::Pool::create(path, 32u << 20, 2u << 20);
  if (!p) {
    std::fprintf(stderr, "create: %s\n", p.status().to_string().c_str());
    return false;
  }
  auto idx = index::Index::open(**p, {.workers = 1});
  if (!idx) return false;
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = key_of(i), v = value_of(i);
    index::Op op = index::Op::set(k, v);
    if ((*idx)->worker(0).execute_one(op) != ferrite::Result::kOk) return false;
  }
  return true;  // clean close: index, then pool
}

// A region picks flip offsets: uniformly in [lo, hi), or, with `stride`,
// in the first `span` bytes of one of the `count` units of `stride` bytes
// from lo (lane ulog headers and their first entries; chunk starts, where
// run headers and allocation bitmaps live).
struct Region {
  const char* name;
  uint64_t lo, hi;
  uint64_t stride = 0, count = 0, span = 0;
  uint64_t pick(std::mt19937_64& rng) const {
    if (stride == 0) return lo + rng() % (hi - lo);
    return lo + (rng() % count) * stride + rng() % span;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: corrupt_campaign FERRITE_CHECK [--seed N] [--runs N] [--seconds S]\n");
    return 2;
  }
  const std::string check = argv[1];
  uint64_t seed = 15;
  int runs = 160;
  int seconds = 45;
  std::string only;  // --only REGION: flip in that region only
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (a == "--only") only = argv[i + 1];
  }
  std::printf("corrupt_campaign: seed %llu, at most %d runs in %d s\n", static_cast<unsigned long long>(seed), runs,
              seconds);
  std::fflush(stdout);
  ::setenv("FERRITE_OPEN_PROBE_TIMEOUT_MS", "8000", 1);

  const char* tdir = std::getenv("FERRITE_TEST_DIR");
  char tmpl[256];
  std::snprintf(tmpl, sizeof(tmpl), "%s/ferrite-campaign-XXXXXX", tdir != nullptr ? tdir : "/dev/shm");
  if (::mkdtemp(tmpl) == nullptr) return 2;
  const std::string dir = tmpl;
  const std::string base = dir + "/base.pool", copy = dir + "/run.pool";
  const std::string err_file = dir + "/open.err", out_file = dir + "/check.out";
  auto cleanup = [&] { std::filesystem::remove_all(dir); };
  if (!make_base(base)) {
    cleanup();
    return 2;
  }

  // Regions from the base pool's bytes.
  std::string img = slurp(base);
  uint64_t heap_off = 0;
  std::memcpy(&heap_off, img.data() + 4096 + 1024 + 16, 8);
  const uint64_t data_start = heap_off + 1024 + 64 + 65528ull * 8;
  const auto first = img.find("campaign-key-");
  const auto last = img.rfind("campaign-key-");
  uint64_t lanes_off = 0, nlanes = 0;
  std::memcpy(&lanes_off, img.data() + 4096 + 1024, 8);
  std::memcpy(&nlanes, img.data() + 4096 + 1024 + 8, 8);
  // Lane k's ulogs start at +0, +256 and +960; flip in the first 1088
  // bytes of a lane (all three headers and the first entries).
  std::vector<Region> regions = {
      {"pooldesc", 0, 4096 + 2048},
      {"lanes", lanes_off, heap_off, 3072, nlanes, 1088},
      {"heap", heap_off, heap_off + 1024 + 64 + 64 * 8},
      {"runs", data_start, img.size(), 256u << 10, 16, 2048},
      {"records", first - 300, last + 64},
  };
  if (!only.empty()) std::erase_if(regions, [&](const Region& r) { return only != r.name; });
  if (regions.empty() || nlanes == 0 || lanes_off + nlanes * 3072 > heap_off) {
    std::fprintf(stderr, "base pool lanes not understood\n");
    cleanup();
    return 2;
  }
  if (first == std::string::npos || heap_off == 0 || heap_off >= img.size()) {
    std::fprintf(stderr, "base pool layout not understood\n");
    cleanup();
    return 2;
  }
  for (const auto& r : regions) {
    std::printf("  region %-8s [%#llx, %#llx)\n", r.name, static_cast<unsigned long long>(r.lo),
                static_cast<unsigned long long>(r.hi));
  }

  std::mt19937_64 rng(seed);
  std::map<std::string, int> tally;
  std::map<std::string, std::string> example;  // first message of each "error" outcome
  int bad = 0, done = 0;
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (int run = 0; run < runs && std::chrono::steady_clock::now() < t_end; ++run) {
    const Region& rg = regions[static_cast<std::size_t>(run) % regions.size()];
    const uint64_t off = rg.pick(rng);
    const int bit = static_cast<int>(rng() % 8);
    {
      std::string m = img;
      m[off] = static_cast<char>(m[off] ^ (1 << bit));
      std::ofstream(copy, std::ios::binary | std::ios::trunc).write(m.data(), static_cast<std::streamsize>(m.size()));
    }
    const std::string where = fmt::format("run {} {} offset {:#x} bit {}", run, rg.name, off, bit);
    auto verdict = [&](const std::string& step, const Outcome& o, bool ok, const std::string& kind,
                       const std::string& text) {
      const std::string t = fmt::format("{:8} {:6} {}", rg.name, step, ok ? kind : "FAIL " + kind);
      if (ok && kind == "error" && ++tally[t] == 1) {
        example[t] = text.substr(0, text.find('\n'));
      } else if (!ok || kind != "error") {
        ++tally[t];
      }
      if (!ok) {
        ++bad;
        std::printf("FAIL %s: %s %s (exit %d signal %d hung %d): %s\n", where.c_str(), step.c_str(), kind.c_str(),
                    o.code, o.sig, o.hung ? 1 : 0, text.substr(0, 400).c_str());
      }
    };

    // 1. ferrited's open path, in a child.
    Outcome o = open_in_child(copy, err_file);
    std::string txt = slurp(err_file);
    if (o.hung) {
      verdict("open", o, false, "hang", txt);
    } else if (!o.exited) {
      verdict("open", o, false, fmt::format("signal {}", o.sig), txt);
    } else if (o.code == kOpenOk) {
      verdict("open", o, true, "clean", txt);
    } else if (o.code == kOpenError && !txt.empty()) {
      verdict("open", o, true, "error", txt);
    } else {
      verdict("open", o, false, o.code == kWrongBytes ? "wrong-bytes" : fmt::format("exit {}", o.code), txt);
    }

    // 2. ferrite-check on the same copy, then --repair if it finds problems.
    o = run_check(check, {"--json", copy}, out_file);
    txt = slurp(out_file);
    const bool clear_error = o.exited && o.code == 2 && txt.find("\"error\"") != std::string::npos;
    if (o.hung || !o.exited) {
      verdict("check", o, false, o.hung ? "hang" : fmt::format("signal {}", o.sig), txt);
    } else if (o.code == 0 || clear_error) {
      verdict("check", o, true, o.code == 0 ? "ok" : "error", txt);
    } else if (o.code == 1) {
      verdict("check", o, true, "problems", txt);
      o = run_check(check, {"--repair", copy}, out_file);
      txt = slurp(out_file);
      if (o.hung || !o.exited) {
        verdict("repair", o, false, o.hung ? "hang" : fmt::format("signal {}", o.sig), txt);
      } else if (o.code == 0 || o.code == 1 || o.code == 3) {
        verdict("repair", o, true, o.code == 3 ? "repaired" : o.code == 0 ? "clean" : "unrepairable", txt);
      } else {
        verdict("repair", o, o.code == 2 && !txt.empty(), fmt::format("exit {}", o.code), txt);
      }
    } else {
      verdict("check", o, false, fmt::format("exit {}", o.code), txt);
    }
    ++done;
  }
  cleanup();
  std::printf("corrupt_campaign: seed %llu, %d runs, %d failed\n", static_cast<unsigned long long>(seed), done, bad);
  for (const auto& [k, n] : tally) std::printf("  %-40s %d\n", k.c_str(), n);
  for (const auto& [k, m] : example) std::printf("  e.g. %s: %s\n", k.c_str(), m.substr(0, 300).c_str());
  return bad == 0 && done > 0 ? 0 : 1;
}
