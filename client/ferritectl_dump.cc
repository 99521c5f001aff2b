// ferritectl dump / load (see ferritectl_dump.h).
#include "client/ferritectl_dump.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <vector>

#include "client/dump_format.h"

namespace ferrite::client {
namespace {

using Clock = std::chrono::steady_clock;

// The progress line: redrawn at most every 200 ms, on a terminal only.
class Progress {
 public:
  explicit Progress(const char* verb) : verb_(verb), tty_(::isatty(STDERR_FILENO) != 0) {}
  void add(uint64_t keys, uint64_t bytes) {
    keys_ += keys;
    bytes_ += bytes;
    if (!tty_) return;
    const Clock::time_point now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    draw();
  }
  // Ends the progress line (a terminal) and prints the summary.
  void finish(const std::string& extra) {
    if (tty_) {
      draw();
      std::fputc('\n', stderr);
    }
    std::fprintf(stderr, "%s %llu keys (%.1f MiB) in %.2f s%s\n", verb_, static_cast<unsigned long long>(keys_),
                 static_cast<double>(bytes_) / (1 << 20), seconds(), extra.c_str());
  }
  uint64_t keys() const noexcept { return keys_; }

 private:
  double seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }
  void draw() const {
    const double s = std::max(seconds(), 1e-3);
    std::fprintf(stderr, "\r%s %llu keys, %.1f MiB, %.0f keys/s, %.1f MiB/s\033[K", verb_,
                 static_cast<unsigned long long>(keys_), static_cast<double>(bytes_) / (1 << 20),
                 static_cast<double>(keys_) / s, static_cast<double>(bytes_) / (1 << 20) / s);
  }
  const char* verb_;
  const bool tty_;
  const Clock::time_point t0_ = Clock::now();
  Clock::time_point last_ = t0_;
  uint64_t keys_ = 0, bytes_ = 0;
};

int transport_error(const Status& s) {
  std::fprintf(stderr, "ferritectl: %s\n", s.to_string().c_str());
  return 3;
}

// A batch of parsed lines on its way to the server.
struct Batch {
  static constexpr std::size_t kMaxOps = 64, kMaxBytes = 60000;
  std::vector<dump::Record> recs{kMaxOps};
  std::vector<std::size_t> lines = std::vector<std::size_t>(kMaxOps);
  std::size_t n = 0, bytes = 0;
  bool full() const noexcept { return n == kMaxOps || bytes >= kMaxBytes; }
};

// Sends the batch as one message; counts (and reports the first few of)
// keys the server did not store.
Status send(Client& c, const std::string& path, Batch& b, uint64_t* failed) {
  std::vector<proto::RequestOp> ops(b.n);
  for (std::size_t i = 0; i < b.n; ++i) {
    ops[i].opcode = proto::Opcode::kSet;
    ops[i].key = b.recs[i].key;
    ops[i].value = b.recs[i].value;
    ops[i].client_flags = b.recs[i].flags;
    ops[i].exptime = b.recs[i].exptime;
  }
  std::vector<Reply> replies;
  FERRITE_RETURN_IF_ERROR(c.execute(ops, &replies));
  if (replies.size() != b.n) return Status::corruption("the server answered a load batch with too few replies");
  for (std::size_t i = 0; i < b.n; ++i) {
    if (replies[i].status == proto::OpStatus::kOk) continue;
    if (++*failed <= 10) {
      std::fprintf(stderr, "ferritectl: %s:%zu: not stored: %s\n", path.c_str(), b.lines[i],
                   std::string(status_name(replies[i].status)).c_str());
    }
  }
  b.n = b.bytes = 0;
  return Status::ok();
}

}  // namespace

int run_dump(Client& c, std::FILE* out) {
  Progress progress("dumped");
  std::string page, buf(dump::kHeader);
  buf.push_back('\n');
  std::vector<proto::ScanEntry> entries;
  uint64_t cursor = 0, next = 0;
  bool done = false;
  while (!done) {
    Status s = c.scan(cursor, &page, &entries, &next, &done);
    if (!s.is_ok()) return transport_error(s);
    uint64_t bytes = 0;
    for (const proto::ScanEntry& e : entries) {
      dump::append_record(&buf, e.key, e.value, e.flags, e.exptime);
      bytes += e.key.size() + e.value.size();
    }
    if (std::fwrite(buf.data(), 1, buf.size(), out) != buf.size()) {
      std::fprintf(stderr, "ferritectl: dump: write error: %s\n", std::strerror(errno));
      return 2;
    }
    buf.clear();
    progress.add(entries.size(), bytes);
    cursor = next;
  }
  if (std::fflush(out) != 0) {
    std::fprintf(stderr, "ferritectl: dump: write error: %s\n", std::strerror(errno));
    return 2;
  }
  progress.finish("");
  return 0;
}

int run_load(Client& c, const std::string& path) {
  std::ifstream file;
  if (path != "-") file.open(path, std::ios::binary);
  std::istream& in = path == "-" ? std::cin : file;
  if (!in) {
    std::fprintf(stderr, "ferritectl: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    return 2;
  }
  std::string line;
  if (!std::getline(in, line)) {
    std::fprintf(stderr, "ferritectl: %s: empty, expected the header line \"ferrite-dump<TAB>1\"\n", path.c_str());
    return 2;
  }
  if (Status h = dump::check_header(line); !h.is_ok()) {
    std::fprintf(stderr, "ferritectl: %s:1: %s\n", path.c_str(), std::string(h.message()).c_str());
    return 2;
  }
  Progress progress("loaded");
  Batch b;
  uint64_t failed = 0, expired = 0;
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  for (std::size_t lineno = 2; std::getline(in, line); ++lineno) {
    dump::Record& r = b.recs[b.n];
    if (Status s = dump::parse_record(line, &r); !s.is_ok()) {
      std::fprintf(stderr, "ferritectl: %s:%zu: %s (the lines before it were loaded)\n", path.c_str(), lineno,
                   std::string(s.message()).c_str());
      if (b.n > 0) (void)send(c, path, b, &failed);
      return 2;
    }
    // An expiry already past: the key would be gone at once (and an exptime
    // under 30 days would be read by the server as relative).
    if (r.exptime != 0 && r.exptime <= now) {
      ++expired;
      continue;
    }
    b.lines[b.n++] = lineno;
    b.bytes += r.key.size() + r.value.size() + proto::kOpHeaderSize;
    progress.add(1, r.key.size() + r.value.size());
    if (b.full()) {
      if (Status s = send(c, path, b, &failed); !s.is_ok()) return transport_error(s);
    }
  }
  if (in.bad()) {
    std::fprintf(stderr, "ferritectl: %s: read error\n", path.c_str());
    return 2;
  }
  if (b.n > 0) {
    if (Status s = send(c, path, b, &failed); !s.is_ok()) return transport_error(s);
  }
  progress.finish(fmt::format("; {} already expired, skipped; {} not stored", expired, failed));
  return failed == 0 ? 0 : 1;
}

}  // namespace ferrite::client
