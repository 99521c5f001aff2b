// Config parsing and validation (see config.h). Every value, from the file or
// the command line, goes through validate(): one set of rules, one style of
// message.
#include "server/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

namespace ferrite::server {
namespace {

std::string where(std::string_view key, std::string_view source) {
  return fmt::format("{} (in {})", key, source);
}

// Levenshtein distance, for "did you mean".
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool valid_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool valid_cidr(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return valid_ipv4(s);
  const std::string bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 2 || !std::all_of(bits.begin(), bits.end(), ::isdigit)) return false;
  return std::stoi(bits) <= 32 && valid_ipv4(s.substr(0, slash));
}

bool valid_mac(const std::string& s) {
  if (s.empty()) return true;
  if (s.size() != 17) return false;
  for (std::size_t i = 0; i < 17; ++i) {
    if (i % 3 == 2 ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

using Setter = std::function<Status(const toml::node&, Config&, const std::string& key, std::string_view src)>;

Setter integer(uint64_t lo, uint64_t hi, std::function<void(Config&, uint64_t)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    auto v = n.value<int64_t>();
    if (!n.is_integer() || !v) {
      return Status::invalid_argument(fmt::format("{} must be an integer (allowed {}..{})", where(key, src), lo, hi));
    }
    if (*v < 0 || static_cast<uint64_t>(*v) < lo || static_cast<uint64_t>(*v) > hi) {
      return Status::invalid_argument(
          fmt::format("{} = {} is out of range (allowed {}..{})", where(key, src), *v, lo, hi));
    }
    set(c, static_cast<uint64_t>(*v));
    return Status::ok();
  };
}

// A number (integer or float) in [lo, hi].
Setter number(double lo, double hi, std::function<void(Config&, double)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    std::optional<double> v;
    if (n.is_floating_point()) v = *n.value<double>();
    if (n.is_integer()) v = static_cast<double>(*n.value<int64_t>());
    if (!v) return Status::invalid_argument(fmt::format("{} must be a number (allowed {}..{})", where(key, src), lo, hi));
    if (!(*v >= lo && *v <= hi)) {
      return Status::invalid_argument(fmt::format("{} = {} is out of range (allowed {}..{})", where(key, src), *v, lo, hi));
    }
    set(c, *v);
    return Status::ok();
  };
}

Setter boolean(std::function<void(Config&, bool)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    if (!n.is_boolean()) return Status::invalid_argument(fmt::format("{} must be true or false", where(key, src)));
    set(c, *n.value<bool>());
    return Status::ok();
  };
}

Setter string(std::function<bool(const std::string&)> ok, std::string allowed,
              std::function<void(Config&, std::string)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    if (!n.is_string()) return Status::invalid_argument(fmt::format("{} must be a string ({})", where(key, src), allowed));
    std::string v = *n.value<std::string>();
    if (!ok(v)) {
      return Status::invalid_argument(fmt::format("{} = \"{}\" is not allowed ({})", where(key, src), v, allowed));
    }
    set(c, std::move(v));
    return Status::ok();
  };
}

Setter string_list(std::function<bool(const std::string&)> ok, std::string allowed,
                   std::function<void(Config&, std::vector<std::string>)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    const toml::array* a = n.as_array();
    if (a == nullptr) return Status::invalid_argument(fmt::format("{} must be an array of strings ({})", where(key, src), allowed));
    std::vector<std::string> out;
    for (const toml::node& e : *a) {
      if (!e.is_string()) return Status::invalid_argument(fmt::format("{} must contain only strings ({})", where(key, src), allowed));
      std::string v = *e.value<std::string>();
      if (!ok(v)) return Status::invalid_argument(fmt::format("{} has \"{}\", which is not allowed ({})", where(key, src), v, allowed));
      out.push_back(std::move(v));
    }
    set(c, std::move(out));
    return Status::ok();
  };
}

Setter size(uint64_t lo, uint64_t hi, bool pow2, std::string allowed, std::function<void(Config&, uint64_t)> set) {
  return [=](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
    uint64_t v = 0;
    if (n.is_integer()) {
      const int64_t i = *n.value<int64_t>();
      if (i < 0) return Status::invalid_argument(fmt::format("{} = {} is out of range ({})", where(key, src), i, allowed));
      v = static_cast<uint64_t>(i);
    } else if (n.is_string()) {
      auto p = parse_size(*n.value<std::string>());
      if (!p) return Status::invalid_argument(fmt::format("{}: {} ({})", where(key, src), p.status().message(), allowed));
      v = *p;
    } else {
      return Status::invalid_argument(fmt::format("{} must be a size like \"1GiB\" or an integer ({})", where(key, src), allowed));
    }
    if (v < lo || v > hi || (pow2 && (v & (v - 1)) != 0)) {
      return Status::invalid_argument(fmt::format("{} = {} is out of range ({})", where(key, src), v, allowed));
    }
    set(c, v);
    return Status::ok();
  };
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> m = {
      {"server.backend", string([](const std::string& s) { return s == "kernel" || s == "dpdk"; }, "\"kernel\" or \"dpdk\"",
                                [](Config& c, std::string v) { c.server.backend = std::move(v); })},
      {"server.bind", string(valid_ipv4, "an IPv4 address a.b.c.d", [](Config& c, std::string v) { c.server.bind = std::move(v); })},
      {"server.port", integer(1, 65535, [](Config& c, uint64_t v) { c.server.port = static_cast<uint32_t>(v); })},
      {"server.workers", integer(1, 63, [](Config& c, uint64_t v) { c.server.workers = static_cast<uint32_t>(v); })},
      {"server.pin_cores", boolean([](Config& c, bool v) { c.server.pin_cores = v; })},
      {"server.allow", string_list(valid_cidr, "IPv4 CIDR like \"10.0.0.0/8\"",
                                   [](Config& c, std::vector<std::string> v) { c.server.allow = std::move(v); })},
      {"server.max_datagram", integer(512, 65507, [](Config& c, uint64_t v) { c.server.max_datagram = static_cast<uint32_t>(v); })},
      {"server.memcached_udp_port",
       integer(0, 65535, [](Config& c, uint64_t v) { c.server.memcached_udp_port = static_cast<uint32_t>(v); })},
      {"server.memcached_tcp_port",
       integer(0, 65535, [](Config& c, uint64_t v) { c.server.memcached_tcp_port = static_cast<uint32_t>(v); })},
      {"pool.path", string([](const std::string& s) { return !s.empty() && s[0] == '/'; }, "an absolute path",
                           [](Config& c, std::string v) { c.pool.path = std::move(v); })},
      {"pool.size", size(16ull << 20, 16ull << 40, false, "allowed 16MiB..16TiB", [](Config& c, uint64_t v) { c.pool.size = v; })},
      {"pool.segment_size",
       [](const toml::node& n, Config& c, const std::string& key, std::string_view src) -> Status {
         if (n.is_string() && *n.value<std::string>() == "auto") {
           c.pool.segment_size = 0;
           return Status::ok();
         }
         return size(2ull << 20, 256ull << 20, true, "\"auto\" or a power of two in 2MiB..256MiB",
                     [](Config& c2, uint64_t v) { c2.pool.segment_size = v; })(n, c, key, src);
       }},
      {"pool.when_full", string([](const std::string& s) { return s == "error" || s == "evict"; }, "\"error\" or \"evict\"",
                                [](Config& c, std::string v) { c.pool.when_full = std::move(v); })},
      {"pool.reserve", number(0.0, 0.5, [](Config& c, double v) { c.pool.reserve = v; })},
      {"cleaner.low_watermark", number(0.0, 0.9, [](Config& c, double v) { c.cleaner.low_watermark = v; })},
      {"cleaner.high_watermark", number(0.01, 0.95, [](Config& c, double v) { c.cleaner.high_watermark = v; })},
      {"cleaner.max_copy_mbps",
       integer(0, 1000000, [](Config& c, uint64_t v) { c.cleaner.max_copy_mbps = static_cast<uint32_t>(v); })},
      {"cleaner.max_wait_ms", integer(0, 10000, [](Config& c, uint64_t v) { c.cleaner.max_wait_ms = static_cast<uint32_t>(v); })},
      {"log.level", string([](const std::string& s) { return s == "debug" || s == "info" || s == "warn" || s == "error" || s == "off"; },
                           "debug, info, warn, error or off", [](Config& c, std::string v) { c.log.level = std::move(v); })},
      {"dpdk.eal_args", string_list([](const std::string&) { return true; }, "strings",
                                    [](Config& c, std::vector<std::string> v) { c.dpdk.eal_args = std::move(v); })},
      {"dpdk.port", integer(0, 1023, [](Config& c, uint64_t v) { c.dpdk.port = static_cast<uint32_t>(v); })},
      {"dpdk.ip", string(valid_ipv4, "an IPv4 address a.b.c.d", [](Config& c, std::string v) { c.dpdk.ip = std::move(v); })},
      {"dpdk.mac", string(valid_mac, "\"\" or xx:xx:xx:xx:xx:xx", [](Config& c, std::string v) { c.dpdk.mac = std::move(v); })},
      {"dpdk.mbufs", integer(1024, 1048576, [](Config& c, uint64_t v) { c.dpdk.mbufs = static_cast<uint32_t>(v); })},
      {"dpdk.burst", integer(1, 512, [](Config& c, uint64_t v) { c.dpdk.burst = static_cast<uint32_t>(v); })},
      {"dpdk.idle_sleep_us",
       integer(0, 100000, [](Config& c, uint64_t v) { c.dpdk.idle_sleep_us = static_cast<uint32_t>(v); })},
  };
  return m;
}

std::string suggestion(const std::string& key) {
  std::string best;
  std::size_t bd = 3;
  for (const auto& [k, _] : setters()) {
    std::size_t d = distance(key, k);
    if (d < bd) {
      bd = d;
      best = k;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean {}?)", best);
}

// Rules between keys, once every key is set.
Status check_together(const Config& c, std::string_view src) {
  if (c.cleaner.low_watermark >= c.cleaner.high_watermark) {
    return Status::invalid_argument(fmt::format(
        "cleaner.low_watermark = {} must be below cleaner.high_watermark = {} in {} (the cleaner starts below the low "
        "one and stops at the high one)",
        c.cleaner.low_watermark, c.cleaner.high_watermark, src));
  }
  return Status::ok();
}

Status apply_table(const toml::table& t, Config& c, std::string_view src) {
  static const char* kSections[] = {"server", "pool", "cleaner", "log", "dpdk"};
  for (const auto& [sec, node] : t) {
    const std::string s(sec.str());
    if (std::find(std::begin(kSections), std::end(kSections), s) == std::end(kSections)) {
      return Status::invalid_argument(
          fmt::format("unknown section [{}] in {} (known sections: server, pool, cleaner, log, dpdk)", s, src));
    }
    const toml::table* sub = node.as_table();
    if (sub == nullptr) return Status::invalid_argument(fmt::format("{} must be a table [{}] in {}", s, s, src));
    for (const auto& [k, v] : *sub) {
      const std::string key = s + "." + std::string(k.str());
      auto it = setters().find(key);
      if (it == setters().end()) {
        return Status::invalid_argument(fmt::format("unknown key \"{}\" in {}{}", key, src, suggestion(key)));
      }
      FERRITE_RETURN_IF_ERROR(it->second(v, c, key, src));
    }
  }
  return check_together(c, src);
}

StatusOr<toml::table> parse_toml(std::string_view text, std::string_view src) {
  try {
    return toml::parse(text, src);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::invalid_argument(
        fmt::format("{}:{}:{}: TOML syntax error: {}", src, b.line, b.column, e.description()));
  }
}

}  // namespace

StatusOr<uint64_t> parse_size(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 19) return Status::invalid_argument(fmt::format("\"{}\" is not a size", s));
  uint64_t n = std::stoull(std::string(s.substr(0, i)));
  std::string unit(s.substr(i));
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const std::pair<const char*, unsigned> kUnits[] = {
      {"", 0}, {"b", 0}, {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20}, {"mb", 20}, {"mib", 20},
      {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40}};
  for (const auto& [name, shift] : kUnits) {
    if (unit == name) {
      if (shift != 0 && n > (~uint64_t{0} >> shift)) break;
      return n << shift;
    }
  }
  return Status::invalid_argument(fmt::format("\"{}\" is not a size (use a number with B, KiB, MiB, GiB or TiB)", s));
}

StatusOr<Config> parse_config(std::string_view text, std::string_view source) {
  auto t = parse_toml(text, source);
  if (!t) return t.status();
  Config c;
  FERRITE_RETURN_IF_ERROR(apply_table(*t, c, source));
  return c;
}

StatusOr<Config> load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::not_found(fmt::format("cannot read config file {}", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

// A float as TOML writes it (always with a fraction: 0.1, 1.0).
std::string toml_number(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

uint64_t segment_size_for(uint64_t configured, uint64_t pool_size) noexcept {
  if (configured != 0) return configured;
  return pool_size < (1ull << 30) ? (2ull << 20) : (4ull << 20);
}

std::string to_toml(const Config& c) {
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += fmt::format("{}\"{}\"", i ? ", " : "", v[i]);
    return s + "]";
  };
  return fmt::format(
      "[server]\nbackend = \"{}\"\nbind = \"{}\"\nport = {}\nworkers = {}\npin_cores = {}\nallow = {}\n"
      "memcached_udp_port = {}\nmemcached_tcp_port = {}\nmax_datagram = {}\n\n[pool]\npath = \"{}\"\nsize = {}\nsegment_size = {}\n"
      "when_full = \"{}\"\nreserve = {}\n\n[cleaner]\nlow_watermark = {}\nhigh_watermark = {}\nmax_copy_mbps = {}\n"
      "max_wait_ms = {}\n\n[log]\nlevel = \"{}\"\n\n"
      "[dpdk]\neal_args = {}\nport = {}\nip = \"{}\"\nmac = \"{}\"\nmbufs = {}\nburst = {}\nidle_sleep_us = {}\n",
      c.server.backend, c.server.bind, c.server.port, c.server.workers, c.server.pin_cores, list(c.server.allow),
      c.server.memcached_udp_port, c.server.memcached_tcp_port, c.server.max_datagram, c.pool.path, c.pool.size,
      c.pool.segment_size == 0 ? std::string("\"auto\"") : std::to_string(c.pool.segment_size),
      c.pool.when_full, toml_number(c.pool.reserve), toml_number(c.cleaner.low_watermark),
      toml_number(c.cleaner.high_watermark), c.cleaner.max_copy_mbps, c.cleaner.max_wait_ms, c.log.level, list(c.dpdk.eal_args),
      c.dpdk.port, c.dpdk.ip, c.dpdk.mac, c.dpdk.mbufs, c.dpdk.burst, c.dpdk.idle_sleep_us);
}

StatusOr<ParsedArgs> config_from_args(int argc, const char* const* argv) {
  CLI::App app{"ferrited: the Ferrite key-value server", "ferrited"};
  std::string config_file;
  std::vector<std::string> sets;
  std::string bind, backend, pool, pool_size, log_level;
  int64_t port = -1, workers = -1;
  ParsedArgs out;
  app.add_option("-c,--config", config_file, "TOML config file (default: the embedded configs/default.toml)");
  app.add_option("--set", sets, "override any key: --set section.key=value (repeatable)");
  app.add_option("--bind", bind, "server.bind");
  app.add_option("--port", port, "server.port");
  app.add_option("--workers", workers, "server.workers");
  app.add_option("--backend", backend, "server.backend");
  app.add_option("--pool", pool, "pool.path");
  app.add_option("--pool-size", pool_size, "pool.size");
  app.add_option("--log-level", log_level, "log.level");
  bool no_evict = false, evict = false;
  app.add_flag("-M,--no-evict", no_evict, "pool.when_full = \"error\" (memcached's -M: refuse writes when full)");
  app.add_flag("--evict", evict, "pool.when_full = \"evict\" (memcached's default: evict cold keys when full)");
  app.add_flag("--print-config", out.print_config, "print the effective configuration and exit");
  app.set_version_flag("--version", "ferrited 0.1.0");
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
    out.message = "ferrited 0.1.0\n";
    return out;
  } catch (const CLI::ParseError& e) {
    return Status::invalid_argument(fmt::format("command line: {} (see --help)", e.what()));
  }

  std::string text;
  std::string source;
  if (config_file.empty()) {
    text = std::string(default_config_toml());
    source = "the embedded default config";
  } else {
    std::ifstream f(config_file);
    if (!f) return Status::not_found(fmt::format("cannot read config file {}", config_file));
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
    source = config_file;
  }
  auto t = parse_toml(text, source);
  if (!t) return t.status();

  // Overrides become TOML values in the same table, then one validation.
  auto put = [&](const std::string& dotted, const std::string& raw) -> Status {
    auto dot = dotted.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == dotted.size()) {
      return Status::invalid_argument(fmt::format("--set {}: expected section.key=value", dotted));
    }
    const std::string sec = dotted.substr(0, dot), key = dotted.substr(dot + 1);
    toml::table frag;
    try {
      frag = toml::parse(std::string_view("v = " + raw), std::string_view("command line"));
    } catch (const toml::parse_error&) {
      frag = toml::table{{"v", raw}};  // a bare word: take it as a string
    }
    if (!t->contains(sec)) t->insert(sec, toml::table{});
    toml::table* st = (*t)[sec].as_table();
    if (st == nullptr) return Status::invalid_argument(fmt::format("{} is not a section", sec));
    st->insert_or_assign(key, *frag.get("v"));
    return Status::ok();
  };
  for (const std::string& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos) return Status::invalid_argument(fmt::format("--set {}: expected section.key=value", s));
    FERRITE_RETURN_IF_ERROR(put(s.substr(0, eq), s.substr(eq + 1)));
  }
  auto quoted = [](const std::string& v) { return "\"" + v + "\""; };
  if (!bind.empty()) FERRITE_RETURN_IF_ERROR(put("server.bind", quoted(bind)));
  if (port >= 0) FERRITE_RETURN_IF_ERROR(put("server.port", std::to_string(port)));
  if (workers >= 0) FERRITE_RETURN_IF_ERROR(put("server.workers", std::to_string(workers)));
  if (!backend.empty()) FERRITE_RETURN_IF_ERROR(put("server.backend", quoted(backend)));
  if (!pool.empty()) FERRITE_RETURN_IF_ERROR(put("pool.path", quoted(pool)));
  if (!pool_size.empty()) FERRITE_RETURN_IF_ERROR(put("pool.size", quoted(pool_size)));
  if (!log_level.empty()) FERRITE_RETURN_IF_ERROR(put("log.level", quoted(log_level)));
  if (no_evict && evict) return Status::invalid_argument("command line: -M (--no-evict) and --evict contradict each other");
  if (no_evict) FERRITE_RETURN_IF_ERROR(put("pool.when_full", quoted("error")));
  if (evict) FERRITE_RETURN_IF_ERROR(put("pool.when_full", quoted("evict")));

  const std::string src = (sets.empty() && bind.empty() && port < 0 && workers < 0 && backend.empty() && pool.empty() &&
                           pool_size.empty() && log_level.empty() && !no_evict && !evict)
                              ? source
                              : source + " with command-line overrides";
  Config c;
  FERRITE_RETURN_IF_ERROR(apply_table(*t, c, src));
  out.config = std::move(c);
  return out;
}

}  // namespace ferrite::server
