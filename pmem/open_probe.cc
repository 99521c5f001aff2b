// probe_open (see open_probe.h). Child exit codes: kChildOk, kChildOpenFailed,
// kChildWalkUnbounded; anything else (a signal, an unexpected code, the
// timeout) means the pool is not safe to open in this process.
#include "pmem/open_probe.h"

#include <libpmemobj.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "pmem/layout.h"

namespace ferrite::pmem {
namespace {

constexpr int kChildOk = 0;
constexpr int kChildOpenFailed = 10;
constexpr int kChildWalkUnbounded = 11;
constexpr auto kPoll = std::chrono::milliseconds(5);

[[noreturn]] void child(const std::string& path, std::size_t file_size) {
  // A crash must end the child by its signal, whatever handler this process
  // inherited (a sanitizer's, which would print and exit 1, or a library's):
  // the parent reports a signal as "libpmemobj crashed opening it".
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) (void)::sigaction(sig, &dfl, nullptr);
  PMEMobjpool* pop = pmemobj_open(path.c_str(), kLayoutName);
  if (pop == nullptr) ::_exit(kChildOpenFailed);
  // Every object has at least a 16-byte header and a 64-byte unit; more
  // objects than that is a cycle in a corrupt heap, not a pool.
  const std::size_t bound = file_size / 64 + 16;
  std::size_t n = 0;
  for (PMEMoid o = pmemobj_first(pop); !OID_IS_NULL(o); o = pmemobj_next(o)) {
    if (++n > bound) ::_exit(kChildWalkUnbounded);
  }
  pmemobj_close(pop);
  ::_exit(kChildOk);
}

std::string advice(const std::string& path) {
  // ferrite-check opens through the same probe: its --repair cannot fix
  // libpmemobj's own metadata, so the honest advice is the backup.
  return fmt::format("restore {} from a backup (ferrite-check --repair cannot repair libpmemobj's own metadata)",
                     path);
}

}  // namespace

std::chrono::milliseconds probe_timeout_from_env() {
  if (const char* e = std::getenv("FERRITE_OPEN_PROBE_TIMEOUT_MS"); e != nullptr && *e != '\0') {
    char* end = nullptr;
    const long long v = std::strtoll(e, &end, 10);
    if (end != nullptr && *end == '\0' && v > 0) return std::chrono::milliseconds(v);
  }
  return kDefaultProbeTimeout;
}

Status probe_open(const std::string& path, std::chrono::milliseconds timeout) {
  struct stat st {};
  const std::size_t file_size = ::stat(path.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
  const pid_t pid = ::fork();
  if (pid < 0) {
    return Status::io_error(fmt::format("cannot open pool {}: fork for the trial open failed: {}", path,
                                        std::strerror(errno)));
  }
  if (pid == 0) child(path, file_size);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int ws = 0;
  for (;;) {  // bounded by the deadline
    const pid_t r = ::waitpid(pid, &ws, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      return Status::internal(fmt::format("trial open of pool {}: waitpid: {}", path, std::strerror(errno)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
      }
      return Status::corruption(fmt::format(
          "pool {} is corrupt: libpmemobj hung opening or walking it (no answer in {} ms); {}", path,
          timeout.count(), advice(path)));
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (WIFSIGNALED(ws)) {
    const int sig = WTERMSIG(ws);
    return Status::corruption(fmt::format("pool {} is corrupt: libpmemobj crashed opening it (signal {}, {}); {}",
                                          path, sig, ::strsignal(sig), advice(path)));
  }
  const int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  switch (code) {
    case kChildOk:
    case kChildOpenFailed: return Status::ok();
    case kChildWalkUnbounded:
      return Status::corruption(fmt::format(
          "pool {} is corrupt: libpmemobj's object list has more entries than the file can hold (a loop); {}", path,
          advice(path)));
    default:
      return Status::corruption(
          fmt::format("pool {} is corrupt: the trial open ended with exit code {}; {}", path, code, advice(path)));
  }
}

}  // namespace ferrite::pmem
