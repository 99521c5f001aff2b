// The stats registry: every counter a process reports is registered once,
// as a typed entry {name, kind, help, read function}, and every output is
// rendered from one sample of the registry. Nothing parses stats text back.
//
//   stats::Registry reg;
//   stats::Workers<EngineStats> w{[this] { return workers_.size(); },
//                                 [this](std::size_t i) -> const EngineStats& { return *workers_[i]->stats; }};
//   reg.counter("requests", "datagrams received", w.summed(&EngineStats::requests));
//   reg.real("write_amplification", "log bytes written per byte appended", [&] { return ...; });
//   reg.section<index::IndexStats>([&] { return idx.stats(); })       // one snapshot per sample
//       .gauge("keys", "live keys", &index::IndexStats::keys)         // a member, or a function of the snapshot
//       .gauge("index_open_us", "...", [](const index::IndexStats& s) { return s.open_ms * 1000; });
//   reg.include(other_registry, "ferrite_");                           // another registry's entries, prefixed
//   const stats::Samples s = reg.sample();
//   render_native(s);      // "name value\n"          (ferrited's stats op, ferritectl, tests/util/stats.h)
//   render_memcached(s);   // "STAT name value\r\n"   (memcached `stats`; binary stat walks the samples)
//   render_json(s);        // {"name":value,...}      (nlohmann-json, registration order)
//   render_logfmt(s);      // "name=value name=value" (the SIGUSR1 log line; text values quoted when needed)
//   render_prometheus(s, "ferrite_");  // Prometheus text format 0.0.4 (ferrited's /metrics, server/metrics_http.h)
//
// Output order is registration order, sections and included registries in
// place. A read function returning std::nullopt omits its entry from that
// sample (e.g. a NIC that cannot report its link right now).
//
// Thread safety: register everything before the first sample() may run
// (registration is not synchronised with reading). sample() and the
// renderers may run on any thread, concurrently; read functions must be
// safe to call from any thread, which they are when they load relaxed
// atomics that each worker alone increments (Workers below). A sample is
// not a consistent snapshot across entries, only per section snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace ferrite::stats {

enum class Kind : uint8_t {
  kCounter,  // uint64, only grows (until a stats reset)
  kGauge,    // uint64, goes up and down (sizes, flags, durations measured once)
  kReal,     // double, printed with a fixed number of decimals
  kText,     // string, constant for the process (e.g. memcached's version)
};
std::string_view kind_name(Kind k) noexcept;  // "counter", "gauge", "real", "text"

using Value = std::variant<uint64_t, double, std::string>;

// One entry's value in one sample.
struct Sample {
  std::string name;   // prefixed when it comes from an included registry
  Kind kind = Kind::kCounter;
  std::string_view help;  // points into the registry: valid while it lives
  int decimals = 0;       // kReal only
  Value value;
};
using Samples = std::vector<Sample>;

// The value as every text renderer prints it: an integer in decimal, a
// real with its fixed decimals ("1.000"), a text as is.
std::string format_value(const Sample& s);

// Per-worker stats structs: each worker increments its own S (relaxed
// atomics, one cache line apart); readers sum them.
template <class S>
struct Workers {
  std::function<std::size_t()> count;
  std::function<const S&(std::size_t)> at;

  uint64_t sum(std::atomic<uint64_t> S::*f) const {
    uint64_t t = 0;
    for (std::size_t w = 0, n = count(); w < n; ++w) t += (at(w).*f).load(std::memory_order_relaxed);
    return t;
  }
  // The sum of f(worker's S) over the workers (for array fields, or sums of fields).
  template <class F>
  uint64_t sum_by(F f) const {
    uint64_t t = 0;
    for (std::size_t w = 0, n = count(); w < n; ++w) t += f(at(w));
    return t;
  }
  uint64_t of(std::size_t w, std::atomic<uint64_t> S::*f) const {
    return (at(w).*f).load(std::memory_order_relaxed);
  }
  // A read function: the sum of field f over the workers (the Workers is copied in).
  std::function<uint64_t()> summed(std::atomic<uint64_t> S::*f) const {
    return [self = *this, f] { return self.sum(f); };
  }
};

class Registry;

namespace detail {
// A section's read functions take its snapshot, type-erased.
using Snapshot = std::shared_ptr<const void>;
struct Entry {
  std::string name;
  Kind kind;
  std::string help;
  int decimals = 0;
  std::function<std::optional<Value>(const void* snap)> read;
};
}  // namespace detail

// Entries whose read functions share one snapshot of type Snap, taken once
// per sample (e.g. index::IndexStats, a NIC's counters).
template <class Snap>
class Section {
 public:
  template <class F>
  Section& counter(std::string name, std::string help, F read) {
    return add(std::move(name), Kind::kCounter, std::move(help), 0, std::move(read));
  }
  template <class F>
  Section& gauge(std::string name, std::string help, F read) {
    return add(std::move(name), Kind::kGauge, std::move(help), 0, std::move(read));
  }
  template <class F>
  Section& real(std::string name, std::string help, int decimals, F read) {
    return add(std::move(name), Kind::kReal, std::move(help), decimals, std::move(read));
  }

 private:
  friend class Registry;
  explicit Section(std::vector<detail::Entry>* entries) : entries_(entries) {}
  // read: Snap -> a number or std::optional of one (nullopt: omitted); a
  // function, or a pointer to a member of Snap (&IndexStats::keys).
  template <class F>
  Section& add(std::string name, Kind kind, std::string help, int decimals, F read) {
    entries_->push_back({std::move(name), kind, std::move(help), decimals,
                         [read = std::move(read), kind](const void* snap) -> std::optional<Value> {
                           return to_value(kind, std::invoke(read, *static_cast<const Snap*>(snap)));
                         }});
    return *this;
  }
  template <class T>
  static std::optional<Value> to_value(Kind kind, const std::optional<T>& v) {
    if (!v) return std::nullopt;
    return to_value(kind, *v);
  }
  template <class T>
  static std::optional<Value> to_value(Kind kind, const T& v) {
    if (kind == Kind::kReal) return Value(static_cast<double>(v));
    return Value(static_cast<uint64_t>(v));
  }
  std::vector<detail::Entry>* entries_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Entries without a snapshot. read returns the value, or std::optional of
  // it (nullopt: left out of this sample).
  template <class F>
  void counter(std::string name, std::string help, F read) {
    plain().counter(std::move(name), std::move(help), drop_unit(std::move(read)));
  }
  template <class F>
  void gauge(std::string name, std::string help, F read) {
    plain().gauge(std::move(name), std::move(help), drop_unit(std::move(read)));
  }
  template <class F>
  void real(std::string name, std::string help, int decimals, F read) {
    plain().real(std::move(name), std::move(help), decimals, drop_unit(std::move(read)));
  }
  void text(std::string name, std::string help, std::function<std::string()> read);

  // A section whose entries read one snapshot, taken by `take` once per
  // sample.
  template <class Snap>
  Section<Snap> section(std::function<Snap()> take) {
    Part& p = new_part();
    p.take = [take = std::move(take)] { return detail::Snapshot(std::make_shared<const Snap>(take())); };
    return Section<Snap>(&p.entries);
  }

  // other's entries, in their order, at this point, each name prefixed.
  // other must outlive this registry; entries it gains later appear too.
  void include(const Registry& other, std::string prefix);

  // The value of every entry, in registration order.
  Samples sample() const;
  // Appends to *out (sample() is this on an empty vector).
  void sample_into(Samples* out, std::string_view prefix = {}) const;
  std::size_t size() const;  // registered entries, included registries' counted

 private:
  struct Unit {};
  template <class F>
  static auto drop_unit(F read) {
    return [read = std::move(read)](const Unit&) { return read(); };
  }
  struct Part {
    std::function<detail::Snapshot()> take;  // null: the entries read no snapshot (plain)
    std::vector<detail::Entry> entries;
    const Registry* included = nullptr;      // set: this part is another registry
    std::string prefix;
  };
  Part& new_part();
  // The last part if it is plain (no snapshot, not included), else a new one.
  Section<Unit> plain();
  std::vector<std::unique_ptr<Part>> parts_;  // stable addresses: Sections point into them
};

// Renderers. Each renders every sample, in order.
std::string render_native(const Samples& s);     // "name value\n" per entry
std::string render_memcached(const Samples& s);  // "STAT name value\r\n" per entry (no END)
std::string render_json(const Samples& s);       // one JSON object, keys in sample order
std::string render_logfmt(const Samples& s);     // "name=value" pairs joined by one space

// Prometheus text exposition format, version 0.0.4: per entry a # HELP line,
// a # TYPE line and the sample line, in sample order. Appended to *out.
// Names: prefix + the entry's name, with a leading copy of the prefix's
// first word not repeated ("ferrite_errors" under "ferrite_memcached_" is
// ferrite_memcached_errors) and any byte outside [a-zA-Z0-9_:] made '_'.
// Kinds: a counter is TYPE counter, named ..._total ("total_items" becomes
// items_total, not total_items_total); a gauge or real is TYPE gauge (a
// real's NaN and infinities as NaN, +Inf, -Inf); a text is an info gauge,
// name_info{value="..."} 1. A name already written (by an earlier entry or
// an earlier call given the same `seen`) is skipped: one scrape must not
// name a metric twice.
void render_prometheus(const Samples& s, std::string_view prefix, std::string* out,
                       std::unordered_set<std::string>* seen);

}  // namespace ferrite::stats
