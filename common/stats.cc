// The stats registry and its renderers (see stats.h).
#include "common/stats.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/logfmt.h"

namespace ferrite::stats {

std::string_view kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::kCounter: return "counter";
    case Kind::kGauge: return "gauge";
    case Kind::kReal: return "real";
    case Kind::kText: return "text";
  }
  return "counter";
}

std::string format_value(const Sample& s) {
  if (const auto* u = std::get_if<uint64_t>(&s.value)) return fmt::format("{}", *u);
  if (const auto* d = std::get_if<double>(&s.value)) return fmt::format("{:.{}f}", *d, s.decimals);
  return std::get<std::string>(s.value);
}

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Part& Registry::new_part() {
  parts_.push_back(std::make_unique<Part>());
  return *parts_.back();
}

Section<Registry::Unit> Registry::plain() {
  const bool reuse = !parts_.empty() && !parts_.back()->take && parts_.back()->included == nullptr;
  Part& p = reuse ? *parts_.back() : new_part();
  return Section<Unit>(&p.entries);
}

void Registry::text(std::string name, std::string help, std::function<std::string()> read) {
  Section<Unit> s = plain();
  s.entries_->push_back({std::move(name), Kind::kText, std::move(help), 0,
                         [read = std::move(read)](const void*) -> std::optional<Value> { return Value(read()); }});
}

void Registry::include(const Registry& other, std::string prefix) {
  Part& p = new_part();
  p.included = &other;
  p.prefix = std::move(prefix);
}

std::size_t Registry::size() const {
  std::size_t n = 0;
  for (const auto& p : parts_) n += p->included != nullptr ? p->included->size() : p->entries.size();
  return n;
}

void Registry::sample_into(Samples* out, std::string_view prefix) const {
  static const Unit kNoSnapshot;
  for (const auto& p : parts_) {
    if (p->included != nullptr) {
      p->included->sample_into(out, std::string(prefix) + p->prefix);
      continue;
    }
    const detail::Snapshot snap = p->take ? p->take() : nullptr;
    const void* arg = snap ? snap.get() : &kNoSnapshot;
    for (const detail::Entry& e : p->entries) {
      std::optional<Value> v = e.read(arg);
      if (!v) continue;
      out->push_back({std::string(prefix) + e.name, e.kind, e.help, e.decimals, std::move(*v)});
    }
  }
}

Samples Registry::sample() const {
  Samples s;
  s.reserve(size());
  sample_into(&s);
  return s;
}

namespace {

// One line per sample: lead, name, a space, the value, eol.
std::string render_lines(const Samples& s, std::string_view lead, std::string_view eol) {
  std::string out;
  for (const Sample& e : s) {
    out += lead;
    out += e.name;
    out += ' ';
    out += format_value(e);
    out += eol;
  }
  return out;
}

}  // namespace

std::string render_native(const Samples& s) { return render_lines(s, "", "\n"); }

std::string render_memcached(const Samples& s) { return render_lines(s, "STAT ", "\r\n"); }

std::string render_json(const Samples& s) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const Sample& e : s) {
    std::visit([&](const auto& v) { j[e.name] = v; }, e.value);
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string render_logfmt(const Samples& s) {
  std::string out;
  for (const Sample& e : s) {
    if (!out.empty()) out += ' ';
    out += e.name;
    out += '=';
    const std::string v = format_value(e);
    // A value with a space, quote, '=' or control byte would split the pair: quoted then.
    const bool plain = !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
      return static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '=' || c == '\\';
    });
    out += plain ? v : logfmt_quote(v);
  }
  return out;
}

}  // namespace ferrite::stats
