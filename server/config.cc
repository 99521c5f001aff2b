// Config parsing and validation (see config.h). Every value, from the file or
// the command line, goes through validate(): one set of rules, one style of
// message.
#include "server/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

#include "common/version.h"

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
      {"server.cookie_rotation_s",
       integer(1, 604800, [](Config& c, uint64_t v) { c.server.cookie_rotation_s = static_cast<uint32_t>(v); })},
      {"server.metrics_port", integer(0, 65535, [](Config& c, uint64_t v) { c.server.metrics_port = static_cast<uint32_t>(v); })},
      {"server.memcached_udp_port",
       integer(0, 65535, [](Config& c, uint64_t v) { c.server.memcached_udp_port = static_cast<uint32_t>(v); })},
      {"server.memcached_tcp_port",
       integer(0, 65535, [](Config& c, uint64_t v) { c.server.memcached_tcp_port = static_cast<uint32_t>(v); })},
      {"server.tcp_workers", integer(1, 62, [](Config& c, uint64_t v) { c.server.tcp_workers = static_cast<uint32_t>(v); })},
      {"server.max_connections",
       integer(1, 1048576, [](Config& c, uint64_t v) { c.server.max_connections = static_cast<uint32_t>(v); })},
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
  // Each thread owns an index worker: the native ones, as many for memcached
  // UDP, and server.tcp_workers for memcached TCP (ferrited.cc); the index
  // has 63 (index/table.h kMaxWorkers, one slot is the cleaner's).
  const bool udp = c.server.memcached_udp_port != 0, tcp = c.server.memcached_tcp_port != 0;
  const uint64_t threads = uint64_t{c.server.workers} * (udp ? 2 : 1) + (tcp ? c.server.tcp_workers : 0);
  if (threads > 63) {
    return Status::invalid_argument(fmt::format(
        "server.workers = {}{} and server.tcp_workers = {} in {} need {} index workers; at most 63",
        c.server.workers, udp ? " (twice: memcached UDP is on)" : "", tcp ? c.server.tcp_workers : 0, src, threads));
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

// The text of a config file; a directory, a missing file or a read error is
// an error naming the path (never an empty text, which would mean defaults).
StatusOr<std::string> read_config_text(const std::string& path) {
  if (path.empty()) return Status::invalid_argument("config file: the path is empty");
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    return Status::not_found(fmt::format("cannot read config file {}: {}", path,
                                         ec ? ec.message() : std::string("no such file")));
  }
  if (std::filesystem::is_directory(st)) {
    return Status::invalid_argument(fmt::format("config file {} is a directory, not a TOML file", path));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::not_found(fmt::format("cannot read config file {}: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::io_error(fmt::format("cannot read config file {}: read error", path));
  return ss.str();
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
  auto text = read_config_text(path);
  if (!text) return text.status();
  return parse_config(*text, path);
}

uint64_t segment_size_for(uint64_t configured, uint64_t pool_size) noexcept {
  if (configured != 0) return configured;
  return pool_size < (1ull << 30) ? (2ull << 20) : (4ull << 20);
}

// Built as a toml::table and printed by toml++, which quotes and escapes
// every string (a path with " or \ stays valid TOML); parse_config reads it
// back to the same Config (config_test checks the round trip).
std::string to_toml(const Config& c) {
  auto list = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const std::string& e : v) a.push_back(e);
    return a;
  };
  auto i64 = [](uint64_t v) { return static_cast<int64_t>(v); };
  toml::table t{
      {"server", toml::table{{"backend", c.server.backend},
                             {"bind", c.server.bind},
                             {"port", i64(c.server.port)},
                             {"workers", i64(c.server.workers)},
                             {"pin_cores", c.server.pin_cores},
                             {"allow", list(c.server.allow)},
                             {"cookie_rotation_s", i64(c.server.cookie_rotation_s)},
                             {"metrics_port", i64(c.server.metrics_port)},
                             {"memcached_udp_port", i64(c.server.memcached_udp_port)},
                             {"memcached_tcp_port", i64(c.server.memcached_tcp_port)},
                             {"tcp_workers", i64(c.server.tcp_workers)},
                             {"max_connections", i64(c.server.max_connections)},
                             {"max_datagram", i64(c.server.max_datagram)}}},
      {"pool", toml::table{{"path", c.pool.path},
                           {"size", i64(c.pool.size)},
                           {"when_full", c.pool.when_full},
                           {"reserve", c.pool.reserve}}},
      {"cleaner", toml::table{{"low_watermark", c.cleaner.low_watermark},
                              {"high_watermark", c.cleaner.high_watermark},
                              {"max_copy_mbps", i64(c.cleaner.max_copy_mbps)},
                              {"max_wait_ms", i64(c.cleaner.max_wait_ms)}}},
      {"log", toml::table{{"level", c.log.level}}},
      {"dpdk", toml::table{{"eal_args", list(c.dpdk.eal_args)},
                           {"port", i64(c.dpdk.port)},
                           {"ip", c.dpdk.ip},
                           {"mac", c.dpdk.mac},
                           {"mbufs", i64(c.dpdk.mbufs)},
                           {"burst", i64(c.dpdk.burst)},
                           {"idle_sleep_us", i64(c.dpdk.idle_sleep_us)}}},
  };
  toml::table& pool = *t["pool"].as_table();
  if (c.pool.segment_size == 0) {
    pool.insert("segment_size", "auto");
  } else {
    pool.insert("segment_size", i64(c.pool.segment_size));
  }
  // toml++ (as packaged) prints floats with 17 digits (0.1 as
  // 0.10000000000000001); when every float reads back the same from 6
  // digits, print those instead. Exact either way.
  const double floats[] = {c.pool.reserve, c.cleaner.low_watermark, c.cleaner.high_watermark};
  const bool six_digits_exact = std::all_of(std::begin(floats), std::end(floats),
                                            [](double v) { return std::stod(fmt::format("{:.6g}", v)) == v; });
  auto flags = toml::toml_formatter::default_flags;
  if (six_digits_exact) flags |= toml::format_flags::relaxed_float_precision;
  std::ostringstream out;
  out << toml::toml_formatter{t, flags} << "\n";
  return out.str();
}

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
  Config scratch;
  Status st = setters().at(s.key)(*n, scratch, s.key, "command-line flags");
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
    auto r = read_config_text(config_file);
    if (!r) return r.status();
    text = std::move(r).value();
    source = config_file;
  }
  auto t = parse_toml(text, source);
  if (!t) return t.status();

  bool overridden = false;
  FERRITE_RETURN_IF_ERROR(apply_overrides(*t, o, &overridden));
  const std::string src = overridden ? source + " with command-line overrides" : source;
  Config c;
  FERRITE_RETURN_IF_ERROR(apply_table(*t, c, src));
  out.config = std::move(c);
  return out;
}

}  // namespace ferrite::server
