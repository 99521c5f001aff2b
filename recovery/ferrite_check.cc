// ferrite-check: offline consistency check (and repair) of a Ferrite pool file.
//   ferrite-check [--repair] [--json | --quiet] POOL_FILE
// ferrited must not be running on the pool (libpmemobj's lock refuses a
// second opener; that is exit 2). The exit-code contract is in kExitCodes
// below, in --help and in docs/operations.md ("Checking a pool").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "common/version.h"
#include "recovery/check.h"

namespace {

constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0  consistent (crash leftovers such as dirty or moved slot bits are allowed;\n"
    "     with --repair they are cleared)\n"
    "  1  problems found (without --repair), or problems left after --repair\n"
    "  2  usage error, or the pool cannot be opened: missing, permission denied,\n"
    "     in use by a running server, wrong layout, newer version, truncated or\n"
    "     corrupt, including libpmemobj metadata that crashes or hangs libpmemobj\n"
    "     (opened first in a child process; the message says which)\n"
    "  3  problems found and all of them repaired (a second check exits 0)\n";

void print(bool quiet, const std::string& s) {
  if (!quiet) std::fputs(s.c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferrite-check: offline consistency check of a Ferrite pool file", "ferrite-check"};
  std::string path;
  bool repair = false, json = false, quiet = false;
  app.add_option("pool", path, "the pool file (ferrited stopped)")->required();
  app.add_flag("--repair", repair,
               "open read-write and repair what can be repaired without losing acknowledged data, then check "
               "again");
  auto* j = app.add_flag("--json", json, "print the report as one JSON object");
  app.add_flag("-q,--quiet", quiet, "print nothing; the exit code is the answer")->excludes(j);
  app.footer(kExitCodes);
  const std::string version = std::string("ferrite-check ") + ferrite::kVersion;
  app.set_version_flag("--version", version);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::printf("%s\n", version.c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    if (!quiet) std::fprintf(stderr, "ferrite-check: %s (see --help)\n", e.what());
    return 2;
  }

  using namespace ferrite::recovery;
  auto fail = [&](const ferrite::Status& s) {
    if (json) {
      print(quiet, "{\"error\":\"" + json_escape(s.to_string()) + "\",\"exit_code\":2}\n");
    } else if (!quiet) {
      std::fprintf(stderr, "ferrite-check: %s\n", s.to_string().c_str());
    }
    return 2;
  };
  if (repair) {
    auto r = repair_pool(path);
    if (!r) return fail(r.status());
    print(quiet, json ? to_json(*r) + "\n" : to_string(*r));
    return exit_code(*r);
  }
  auto r = check_pool(path);
  if (!r) return fail(r.status());
  print(quiet, json ? to_json(*r) + "\n" : to_string(*r));
  return exit_code(*r);
}
