// The config file side of config.h: the rule for every key (type, range,
// allowed values; the setters() table), the rules between keys, reading and
// parsing TOML, parse_size and to_toml. Every value, from the file, --set or a
// shortcut flag, goes through the setters() table: one set of rules, one
// style of message. The command line (CLI11, the memcached-style flags) is
// config_args.cc; it reaches these rules through config_internal.h.
//
// Thread safety: pure functions; setters() is a function-local static, built
// once on first use.
#include "server/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <toml++/toml.h>

#include "server/config_internal.h"

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

}  // namespace

namespace config_detail {

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

Status check_value(const std::string& key, const toml::node& value, std::string_view src) {
  Config scratch;
  return setters().at(key)(value, scratch, key, src);
}

}  // namespace config_detail

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
  auto t = config_detail::parse_toml(text, source);
  if (!t) return t.status();
  Config c;
  FERRITE_RETURN_IF_ERROR(config_detail::apply_table(*t, c, source));
  return c;
}

StatusOr<Config> load_config_file(const std::string& path) {
  auto text = config_detail::read_config_text(path);
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

}  // namespace ferrite::server
