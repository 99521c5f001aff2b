// ferritectl: command-line client for ferrited.
//
//   ferritectl [--server HOST:PORT] get KEY
//   ferritectl set KEY VALUE [--flags N] [--ttl SECONDS]
//   ferritectl del KEY | incr KEY [N] | decr KEY [N] | stats
//   ferritectl load FILE        (lines "key<TAB>value" or "key value"; progress bar)
//   ferritectl dump             (every live key as "key<TAB>value" lines)
//
// Exit codes: 0 ok; 1 the server answered with a failure (not found, not
// stored, ...); 2 usage or input error; 3 cannot reach the server.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "client/client.h"
#include "common/version.h"

using namespace ferrite;

namespace {

int transport_error(const Status& s) {
  std::fprintf(stderr, "ferritectl: %s\n", s.to_string().c_str());
  return 3;
}

int result(proto::OpStatus s, const std::string& key) {
  if (s == proto::OpStatus::kOk) return 0;
  std::fprintf(stderr, "ferritectl: %s: %s\n", key.c_str(), std::string(client::status_name(s)).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferritectl: talk to a ferrited server", "ferritectl"};
  std::string server = "127.0.0.1:11311";
  int timeout_ms = 200;
  app.add_option("-s,--server", server, "server address HOST:PORT")->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "per-attempt timeout")->capture_default_str();
  app.set_version_flag("--version", std::string("ferritectl ") + kVersion);
  app.require_subcommand(1);
  std::string key, value, file;
  uint32_t flags = 0, ttl = 0;
  uint64_t delta = 1;
  auto* get = app.add_subcommand("get", "print the value of KEY");
  get->add_option("key", key)->required();
  auto* set = app.add_subcommand("set", "store VALUE under KEY");
  set->add_option("key", key)->required();
  set->add_option("value", value)->required();
  set->add_option("--flags", flags, "client flags");
  set->add_option("--ttl", ttl, "expire after SECONDS (0: never)");
  auto* del = app.add_subcommand("del", "delete KEY");
  del->add_option("key", key)->required();
  auto* incr = app.add_subcommand("incr", "add N (default 1) to a decimal value");
  incr->add_option("key", key)->required();
  incr->add_option("n", delta);
  auto* decr = app.add_subcommand("decr", "subtract N (default 1), floor 0");
  decr->add_option("key", key)->required();
  decr->add_option("n", delta);
  auto* stats = app.add_subcommand("stats", "print server statistics");
  auto* dump = app.add_subcommand("dump", "print every live key as 'key<TAB>value' lines (the input format of load)");
  auto* load = app.add_subcommand("load", "store every 'key value' line of FILE");
  load->add_option("file", file)->required()->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto colon = server.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "ferritectl: --server must be HOST:PORT, got \"%s\"\n", server.c_str());
    return 2;
  }
  int port = 0;
  try {
    port = std::stoi(server.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "ferritectl: bad port in \"%s\"\n", server.c_str());
    return 2;
  }
  client::ClientOptions opts;
  opts.timeout_ms = timeout_ms;
  auto c = client::Client::connect(server.substr(0, colon), static_cast<uint16_t>(port), opts);
  if (!c) return transport_error(c.status());

  if (*get) {
    client::Reply r;
    auto s = (*c)->get(key, &r);
    if (!s) return transport_error(s.status());
    if (*s == proto::OpStatus::kOk) std::cout << r.value << "\n";
    return result(*s, key);
  }
  if (*set) {
    auto s = (*c)->set(key, value, flags, ttl);
    if (!s) return transport_error(s.status());
    return result(*s, key);
  }
  if (*del) {
    auto s = (*c)->del(key);
    if (!s) return transport_error(s.status());
    return result(*s, key);
  }
  if (incr->parsed() || decr->parsed()) {
    uint64_t v = 0;
    auto s = (*c)->incr(key, delta, &v, decr->parsed());
    if (!s) return transport_error(s.status());
    if (*s == proto::OpStatus::kOk) std::cout << v << "\n";
    return result(*s, key);
  }
  if (*stats) {
    auto s = (*c)->stats();
    if (!s) return transport_error(s.status());
    std::cout << *s;
    return 0;
  }
  if (*dump) {
    uint64_t cursor = 0, next = 0, n = 0;
    bool done = false;
    std::string page;
    std::vector<proto::ScanEntry> entries;
    while (!done) {
      Status s = (*c)->scan(cursor, &page, &entries, &next, &done);
      if (!s.is_ok()) return transport_error(s);
      for (const auto& e : entries) {
        std::cout.write(e.key.data(), static_cast<std::streamsize>(e.key.size()));
        std::cout.put('\t');
        std::cout.write(e.value.data(), static_cast<std::streamsize>(e.value.size()));
        std::cout.put('\n');
        ++n;
      }
      cursor = next;
    }
    std::cout.flush();
    std::fprintf(stderr, "dumped %llu keys\n", static_cast<unsigned long long>(n));
    return 0;
  }
  if (*load) {
    std::ifstream in(file);
    std::vector<std::pair<std::string, std::string>> kv;
    std::string line;
    std::size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      auto sep = line.find_first_of("\t ");
      if (sep == std::string::npos || sep == 0) {
        std::fprintf(stderr, "ferritectl: %s:%zu: expected \"key value\"\n", file.c_str(), lineno);
        return 2;
      }
      kv.emplace_back(line.substr(0, sep), line.substr(sep + 1));
    }
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    std::size_t done = 0, failed = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < kv.size();) {
      std::vector<proto::RequestOp> batch;
      std::size_t bytes = 0;
      for (; i < kv.size() && batch.size() < 64 && bytes < 60000; ++i) {
        proto::RequestOp op;
        op.opcode = proto::Opcode::kSet;
        op.key = kv[i].first;
        op.value = kv[i].second;
        bytes += op.key.size() + op.value.size() + proto::kOpHeaderSize;
        batch.push_back(op);
      }
      std::vector<client::Reply> replies;
      Status s = (*c)->execute(batch, &replies);
      if (!s.is_ok()) return transport_error(s);
      for (const auto& r : replies) failed += r.status != proto::OpStatus::kOk;
      done += batch.size();
      if (tty || done == kv.size()) {
        const int width = 40;
        const int filled = kv.empty() ? width : static_cast<int>(width * done / kv.size());
        std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu", filled, "########################################", width - filled, "",
                     done, kv.size());
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\nloaded %zu keys in %.2f s (%zu failed)\n", done - failed, secs, failed);
    return failed == 0 ? 0 : 1;
  }
  return 2;
}
