// ferrite-crashtest: helpers shared by the in-process and server runners
// (see crashtest.h). Single-threaded: called by the campaign thread only.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "recovery/check.h"
#include "recovery/crashtest.h"

namespace ferrite::recovery::crashtest {

const char* to_string(Mode m) noexcept { return m == Mode::kInProcess ? "inprocess" : "server"; }

const char* to_string(Pf p) noexcept {
  switch (p) {
    case Pf::kOff: return "off";
    case Pf::kFenced: return "fenced";
    case Pf::kRandom: return "random";
  }
  return "?";
}

const char* to_string(SpaceMode s) noexcept {
  switch (s) {
    case SpaceMode::kOff: return "off";
    case SpaceMode::kError: return "error";
    case SpaceMode::kEvict: return "evict";
  }
  return "?";
}

uint64_t record_bytes(uint32_t id, uint64_t seq, const Options& o) {
  const std::size_t klen = campaign_key(id).size();
  return (24 + klen + campaign_value_size(id, seq, o.value_min, o.value_max) + 7) / 8 * 8;
}

uint64_t acked_set_bytes(const std::vector<JRecord>& recs, const Options& o) {
  uint64_t n = 0;
  for (const JRecord& r : recs) {
    if (r.type == JType::kAck && r.op == JOp::kSet) n += record_bytes(r.key, r.seq, o);
  }
  return n;
}

double ms_since(uint64_t t0_ns) noexcept { return static_cast<double>(mono_now_ns() - t0_ns) / 1e6; }

namespace {

bool copy_file(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY);
  if (in < 0) return false;
  int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  bool ok = fd >= 0;
  if (ok) {
    char buf[1 << 16];
    ssize_t n;
    while (ok && (n = ::read(in, buf, sizeof(buf))) > 0) ok = ::write(fd, buf, static_cast<std::size_t>(n)) == n;
    ::close(fd);
  }
  ::close(in);
  return ok;
}

}  // namespace

void run_checker(const std::string& path, const Options& o, CycleOutcome* out) {
  // --keep: the crash image as the checker sees it, before anything opens it
  // (libpmemobj's recovery, the index's crash repair) and changes it.
  if (o.keep && !copy_file(path, path + ".crash")) out->check_examples.push_back("could not copy the crash image");
  auto r = check_pool(path);
  if (!r) {
    out->recovery_error = "ferrite-check cannot open the crashed pool: " + r.status().to_string();
    return;
  }
  // Leaks (orphaned objects of an interrupted split, a dead log segment) are
  // legal right after a crash; corruption never is. Problems beyond the
  // listed ones count as corruption (the report lists kMaxListed).
  uint64_t leaks = 0;
  std::map<std::string, uint64_t> classes;
  for (const Problem& p : r->problems) {
    if (p.kind == ProblemKind::kLeak) {
      ++leaks;
      out->leak_bytes += p.bytes;
      ++classes[p.cls];
      continue;
    }
    if (out->check_examples.size() < 5) out->check_examples.push_back(fmt::format("{} at {}: {}", p.cls, p.where, p.what));
  }
  out->check_leaks = leaks;
  out->check_problems = r->problem_count - leaks;
  out->leak_classes.assign(classes.begin(), classes.end());
}

void recheck_leaks(const std::string& path, CycleOutcome* out) {
  auto r = check_pool(path);
  if (!r) {
    out->recovery_error = "ferrite-check cannot open the recovered pool: " + r.status().to_string();
    return;
  }
  out->leaks_after_recovery = r->problem_count;
  for (const Problem& p : r->problems) {
    if (out->check_examples.size() >= 10) break;
    out->check_examples.push_back(fmt::format("after recovery: {} at {}: {}", p.cls, p.where, p.what));
  }
}

Status crash_image_and_check(const std::string& shadow, const std::string& pool, const Options& o,
                             bool power_failed, uint64_t seed, const std::vector<JRecord>& recs,
                             std::mt19937_64& rng, uint64_t t_check, CycleOutcome* out) {
  if (power_failed) FERRITE_RETURN_IF_ERROR(finish_power_failure(shadow, pool, o.pf, seed ^ 0x9f));
  if (o.corrupt_acked) {
    auto k = corrupt_one_acked(pool, recs, o, rng);
    if (!k) return k.status();
    out->corrupted_key = *k;
  }
  run_checker(pool, o, out);
  out->check_ms = ms_since(t_check);
  return Status::ok();
}

Status finish_power_failure(const std::string& shadow, const std::string& pool, Pf pf, uint64_t seed) {
  FERRITE_RETURN_IF_ERROR(PowerFailSim::finish_after_kill(shadow, pf_mode(pf), seed));
  if (::rename(shadow.c_str(), pool.c_str()) != 0) {
    return Status::io_error(fmt::format("rename {} over {}: {}", shadow, pool, std::strerror(errno)));
  }
  return Status::ok();
}

StatusOr<std::string> corrupt_one_acked(const std::string& pool, const std::vector<JRecord>& recs, const Options& o,
                                        std::mt19937_64& rng) {
  struct Last {
    JOp op;
    uint64_t seq;
    bool acked;
  };
  std::unordered_map<uint32_t, Last> last;
  for (const JRecord& r : recs) {
    if (r.type == JType::kIssue) {
      last[r.key] = {r.op, r.seq, false};
    } else {
      auto it = last.find(r.key);
      if (it != last.end() && it->second.seq == r.seq) it->second.acked = true;
    }
  }
  std::vector<std::pair<uint32_t, uint64_t>> cands;
  for (const auto& [key, l] : last) {
    if (l.op == JOp::kSet && l.acked) cands.emplace_back(key, l.seq);
  }
  if (cands.empty()) return std::string();
  const auto [key, seq] = cands[rng() % cands.size()];
  const std::string value = campaign_value(key, seq, o.value_min, o.value_max);

  int fd = ::open(pool.c_str(), O_RDWR);
  if (fd < 0) return Status::io_error(fmt::format("corrupt: open {}: {}", pool, std::strerror(errno)));
  struct stat st {};
  ::fstat(fd, &st);
  const auto len = static_cast<std::size_t>(st.st_size);
  void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return Status::io_error(fmt::format("corrupt: mmap {}: {}", pool, std::strerror(errno)));
  char* base = static_cast<char*>(m);
  uint64_t hits = 0;
  for (std::size_t at = 0; at + value.size() <= len && hits < 16;) {
    void* p = ::memmem(base + at, len - at, value.data(), value.size());
    if (p == nullptr) break;
    char* c = static_cast<char*>(p);
    c[value.size() - 1] ^= 0x20;  // the value's last byte: its filler (or its header's ':')
    ++hits;
    at = static_cast<std::size_t>(c - base) + value.size();
  }
  ::msync(m, len, MS_SYNC);
  ::munmap(m, len);
  if (hits == 0) return std::string();  // e.g. the record never reached the image (power failure)
  return campaign_key(key);
}

void pick_keys(std::mt19937_64& rng, uint32_t keys, unsigned t, unsigned n, std::size_t want,
               std::vector<uint32_t>* out) {
  out->clear();
  const uint32_t owned = keys > t ? (keys - t + n - 1) / n : 0;
  if (owned == 0) return;
  if (want > owned) want = owned;
  // want <= 32: a linear duplicate check is cheaper than a set.
  for (unsigned tries = 0; out->size() < want && tries < 4 * want + 64; ++tries) {
    const uint32_t id = t + static_cast<uint32_t>(rng() % owned) * n;
    bool dup = false;
    for (uint32_t x : *out) dup |= x == id;
    if (!dup) out->push_back(id);
  }
}

bool reap(pid_t pid, int* exit_code) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      *exit_code = -1;
      return false;
    }
  }
  if (WIFSIGNALED(st)) {
    *exit_code = 128 + WTERMSIG(st);
    return WTERMSIG(st) == SIGKILL;
  }
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return false;
}

Status Runner::note_preload_verified(const CycleOutcome& c) {
  if (!c.ok()) {
    std::string why = c.recovery_error;
    for (const std::string& e : c.verify.examples) why += (why.empty() ? "" : "; ") + e;
    return Status::internal(fmt::format("the preload did not verify (lost {}, torn {}, unexpected {}): {}",
                                        c.verify.lost, c.verify.torn, c.verify.unexpected, why));
  }
  preload_.present = c.keys_present;
  preload_.absent_evictable = c.verify.absent_evictable;
  return Status::ok();
}

}  // namespace ferrite::recovery::crashtest
