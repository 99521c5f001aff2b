// ferrited's command line (config_from_args in config.h), parsed with CLI11:
// --config, --set section.key=value, the shortcut options that set one key
// each (among them memcached's -p -U -l -t -m -c -v -M), --print-config,
// --help (whose footer is the man page's extra sections) and --version. The
// overrides are written into the config file's TOML table, which is then
// validated as one by config.cc's rules (config_internal.h): a flag's value
// is never converted or checked here by other rules.
//
// Thread safety: pure functions.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <climits>
#include <deque>
#include <map>
#include <memory>
#include <toml++/toml.h>

#include "common/version.h"
#include "server/config.h"
#include "server/config_internal.h"

namespace ferrite::server {
namespace {

// "1GiB" for 1 << 30: the largest binary unit that divides the size.
std::string size_text(uint64_t n) {
  static const std::pair<const char*, unsigned> kUnits[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
  for (const auto& [name, shift] : kUnits) {
    if (n != 0 && n % (uint64_t{1} << shift) == 0) return fmt::format("{}{}", n >> shift, name);
  }
  return std::to_string(n);
}

// The text after the options in --help (and so in the man page, whose
// sections help2man makes from the "Title:" lines).
constexpr const char* kHelpFooter = R"(Configuration:
  Every key of the config file can be set with --set section.key=value (the
  value is TOML; a bare word is a string). The shortcut options above set one
  key each; their defaults are those of the embedded configs/default.toml.
  --print-config prints every key with its effective value, so
  `ferrited --print-config` lists all defaults. See docs/operations.md.
  memcached's -p -U -l -t -m -c -v -M set the keys named above
  (docs/memcached.md, "Command-line flags"); the config file is --config.

Environment:
  PMEM_IS_PMEM_FORCE=1  treat the pool file as persistent memory (cache-line
                        flushes instead of msync): needed for speed on a tmpfs
                        (/dev/shm) or in tests; unnecessary on real pmem (a DAX
                        file system), where libpmem detects it.
  NOTIFY_SOCKET         set by systemd for a Type=notify unit: ferrited sends
                        READY=1 once every port serves, STOPPING=1 on shutdown.

Signals:
  SIGTERM, SIGINT, SIGQUIT  stop gracefully (the pool is closed cleanly)
  SIGHUP                    logged and ignored
  SIGUSR1                   log the counters

Exit status:
  0 after a clean stop; 1 if the server could not start or failed (the
  message says why); 2 for a usage or configuration error.
)";

// A shortcut option: sets one key from the text given on the command line.
// The text is converted here (never by CLI11), so every bad value is
// reported as "FLAG VALUE: <the key's own message>".
struct Shortcut {
  enum Kind { kInt, kStr, kMiB } kind;
  std::string key;
  std::string label;  // "-p/--memcached-tcp-port"
  CLI::Option* opt = nullptr;
  std::string raw;    // bound to the option
};

// The option's text as the key's TOML value, checked with the key's own rule.
StatusOr<std::unique_ptr<toml::node>> shortcut_value(const Shortcut& s) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(fmt::format("command line: {} \"{}\": {} (see --help)", s.label, s.raw, why));
  };
  std::unique_ptr<toml::node> n;
  if (s.kind == Shortcut::kStr) {
    n = std::make_unique<toml::value<std::string>>(s.raw);
  } else {
    int64_t v = 0;
    const char* end = s.raw.data() + s.raw.size();
    auto [ptr, ec] = std::from_chars(s.raw.data(), end, v);
    if (s.raw.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      return bad(s.kind == Shortcut::kMiB ? "not a whole number of megabytes"
                 : s.key == "server.max_connections" ? "not an integer (the config file is given with --config)"
                                                      : "not an integer");
    }
    if (ec == std::errc::result_out_of_range) v = s.raw[0] == '-' ? INT64_MIN : INT64_MAX;
    if (s.kind == Shortcut::kMiB) {
      if (v < 0) return bad("not a whole number of megabytes");
      v = v > (INT64_MAX >> 20) ? INT64_MAX : v << 20;
    }
    n = std::make_unique<toml::value<int64_t>>(v);
  }
  Status st = config_detail::check_value(s.key, *n, "command-line flags");
  if (!st.is_ok()) return bad(st.message());
  return n;
}

// What the command line sets besides the config file.
struct Overrides {
  std::vector<std::string> sets;     // --set section.key=value
  std::deque<Shortcut> shortcuts;    // a deque: the options hold references to its elements
  int verbose = 0;                   // -v count
  bool no_evict = false, evict = false;
};

// Writes the overrides into the config file's table t, which is then
// validated as one: --set first, then the shortcuts (a flag beats --set).
// *any: whether anything was overridden.
Status apply_overrides(toml::table& t, const Overrides& o, bool* any) {
  auto put_node = [&](const std::string& dotted, const toml::node& value) -> Status {
    auto dot = dotted.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == dotted.size()) {
      return Status::invalid_argument(fmt::format("--set {}: expected section.key=value", dotted));
    }
    const std::string sec = dotted.substr(0, dot), key = dotted.substr(dot + 1);
    if (!t.contains(sec)) t.insert(sec, toml::table{});
    toml::table* st = t[sec].as_table();
    if (st == nullptr) return Status::invalid_argument(fmt::format("{} is not a section", sec));
    st->insert_or_assign(key, value);
    return Status::ok();
  };
  // --set: the value is TOML (a bare word is taken as a string).
  auto put = [&](const std::string& dotted, const std::string& raw) -> Status {
    toml::table frag;
    try {
      frag = toml::parse(std::string_view("v = " + raw), std::string_view("command line"));
    } catch (const toml::parse_error&) {
      frag = toml::table{{"v", raw}};
    }
    return put_node(dotted, *frag.get("v"));
  };
  for (const std::string& s : o.sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos) return Status::invalid_argument(fmt::format("--set {}: expected section.key=value", s));
    FERRITE_RETURN_IF_ERROR(put(s.substr(0, eq), s.substr(eq + 1)));
  }
  // Shortcuts after --set (a flag beats --set); two flags for one key (-m and
  // --pool-size) contradict each other.
  *any = !o.sets.empty() || o.verbose > 0 || o.no_evict || o.evict;
  std::map<std::string, const Shortcut*> given;
  for (const Shortcut& s : o.shortcuts) {
    if (s.opt->count() == 0) continue;
    if (auto [it, fresh] = given.emplace(s.key, &s); !fresh) {
      return Status::invalid_argument(
          fmt::format("command line: {} and {} both set {}: give one", it->second->label, s.label, s.key));
    }
    auto n = shortcut_value(s);
    if (!n) return n.status();
    FERRITE_RETURN_IF_ERROR(put_node(s.key, **n));
    *any = true;
  }
  if (o.verbose > 0) {
    if (given.count("log.level")) {
      return Status::invalid_argument("command line: -v and --log-level both set log.level: give one");
    }
    FERRITE_RETURN_IF_ERROR(put_node("log.level", toml::value<std::string>(o.verbose == 1 ? "info" : "debug")));
  }
  if (o.no_evict && o.evict) {
    return Status::invalid_argument("command line: -M (--no-evict) and --evict contradict each other");
  }
  if (o.no_evict) FERRITE_RETURN_IF_ERROR(put_node("pool.when_full", toml::value<std::string>("error")));
  if (o.evict) FERRITE_RETURN_IF_ERROR(put_node("pool.when_full", toml::value<std::string>("evict")));
  return Status::ok();
}

}  // namespace

StatusOr<ParsedArgs> config_from_args(int argc, const char* const* argv) {
  CLI::App app{"ferrited: the Ferrite key-value server", "ferrited"};
  // --help shows each shortcut option's default: the embedded config's value.
  auto embedded = parse_config(default_config_toml(), "the embedded default config");
  const Config d = embedded ? *embedded : Config{};
  // Each option's presence is its count(), never a sentinel value: "--port -1"
  // and "--bind ''" are values to validate, not "not given".
  Overrides o;
  auto add = [&](Shortcut::Kind kind, const std::string& names, const std::string& key, std::string_view what,
                 const auto& dflt) {
    Shortcut& s = o.shortcuts.emplace_back(Shortcut{kind, key, "", nullptr, ""});
    s.opt = app.add_option(names, s.raw, fmt::format("{}: {} (default: {})", key, what, dflt))
                ->type_name(kind == Shortcut::kInt ? "N" : kind == Shortcut::kMiB ? "MB" : "TEXT");
    s.label = s.opt->get_name(false, true);  // every name, e.g. "-p,--memcached-tcp-port"
  };
  std::string config_file;
  ParsedArgs out;
  CLI::Option* o_config = app.add_option("--config", config_file,
                                         "TOML config file; keys it omits keep their defaults (default: none, the "
                                         "embedded configs/default.toml)");
  app.add_option("--set", o.sets, "override any key: --set section.key=value (repeatable)");
  add(Shortcut::kStr, "-l,--bind,--listen", "server.bind", "IPv4 address to serve on", d.server.bind);
  add(Shortcut::kInt, "--port", "server.port", "native protocol UDP port", d.server.port);
  add(Shortcut::kInt, "-p,--memcached-tcp-port", "server.memcached_tcp_port", "memcached TCP port, 0 = off",
      d.server.memcached_tcp_port);
  add(Shortcut::kInt, "-U,--memcached-udp-port", "server.memcached_udp_port", "memcached UDP port, 0 = off",
      d.server.memcached_udp_port);
  add(Shortcut::kInt, "-t,--workers,--threads", "server.workers", "worker threads", d.server.workers);
  add(Shortcut::kInt, "-c,--conn-limit", "server.max_connections", "memcached TCP connections at once",
      d.server.max_connections);
  add(Shortcut::kStr, "--backend", "server.backend", "kernel | dpdk", d.server.backend);
  add(Shortcut::kStr, "--pool", "pool.path", "the pool file, created on first start", d.pool.path);
  add(Shortcut::kStr, "--pool-size", "pool.size", "size of a new pool, e.g. 4GiB", size_text(d.pool.size));
  add(Shortcut::kMiB, "-m,--memory-limit", "pool.size", "size of a new pool in MiB (as --pool-size NMiB)",
      d.pool.size >> 20);
  add(Shortcut::kStr, "--log-level", "log.level", "debug | info | warn | error | off", d.log.level);
  app.add_flag("-v,--verbose", o.verbose, "log.level = \"info\"; -vv (or more): \"debug\" (memcached's -v)");
  app.add_flag("-M,--no-evict,--disable-evictions", o.no_evict,
               fmt::format("pool.when_full = \"error\" (memcached's -M: refuse writes when full; default: \"{}\")",
                           d.pool.when_full));
  app.add_flag("--evict", o.evict, "pool.when_full = \"evict\" (memcached's default: evict cold keys when full)");
  app.add_flag("--print-config", out.print_config, "print the effective configuration (every key) and exit");
  const std::string version = fmt::format("ferrited {}", kVersion);
  app.set_version_flag("--version", version);
  app.footer(kHelpFooter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    out.exit_now = true;
    out.exit_code = 0;
    out.message = app.help();
    return out;
  } catch (const CLI::CallForVersion& e) {
    out.exit_now = true;
    out.exit_code = 0;
    out.message = version + "\n";
    return out;
  } catch (const CLI::ParseError& e) {
    return Status::invalid_argument(fmt::format("command line: {} (see --help)", e.what()));
  }

  std::string text;
  std::string source;
  if (o_config->count() == 0) {
    text = std::string(default_config_toml());
    source = "the embedded default config";
  } else {
    auto r = config_detail::read_config_text(config_file);
    if (!r) return r.status();
    text = std::move(r).value();
    source = config_file;
  }
  auto t = config_detail::parse_toml(text, source);
  if (!t) return t.status();

  bool overridden = false;
  FERRITE_RETURN_IF_ERROR(apply_overrides(*t, o, &overridden));
  const std::string src = overridden ? source + " with command-line overrides" : source;
  Config c;
  FERRITE_RETURN_IF_ERROR(config_detail::apply_table(*t, c, src));
  out.config = std::move(c);
  return out;
}

}  // namespace ferrite::server
