// ferritectl: command-line client for ferrited.
//
//   ferritectl [--server HOST:PORT] get KEY
//   ferritectl set KEY VALUE [--flags N] [--ttl SECONDS]
//   ferritectl del KEY | incr KEY [N] | decr KEY [N] | stats
//   ferritectl dump > FILE      (every live key with its flags and expiry)
//   ferritectl load FILE|-      (what dump wrote; client/dump_format.h)
//
// Exit codes: 0 ok; 1 the server answered with a failure (not found, not
// stored, ...); 2 usage or input error; 3 cannot reach the server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "client/client.h"
#include "client/ferritectl_dump.h"
#include "common/address.h"
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
  auto* dump = app.add_subcommand("dump", "print every live key, its flags and its expiry in the ferrite-dump format "
                                          "(escaped, lossless; docs/operations.md, \"Dump and load\")");
  auto* load = app.add_subcommand("load", "store every key of FILE, a ferrite-dump file (\"-\": standard input)");
  load->add_option("file", file, "FILE or -")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto addr = parse_host_port(server);
  if (!addr) {
    std::fprintf(stderr, "ferritectl: --server: %s\n", std::string(addr.status().message()).c_str());
    return 2;
  }
  client::ClientOptions opts;
  opts.timeout_ms = timeout_ms;
  auto c = client::Client::connect(addr->host, addr->port, opts);
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
  if (*dump) return client::run_dump(**c, stdout);
  if (*load) return client::run_load(**c, file);
  return 2;
}
