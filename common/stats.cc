// The stats registry and its renderers (see stats.h).
#include "common/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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

namespace {

// The metric name of entry `name` under `prefix` (see render_prometheus).
std::string prometheus_name(std::string_view prefix, std::string_view name, Kind kind) {
  const std::size_t word = prefix.find('_');
  if (word != std::string_view::npos && name.substr(0, word + 1) == prefix.substr(0, word + 1)) {
    name.remove_prefix(word + 1);
  }
  std::string out(prefix);
  if (kind == Kind::kCounter && name.substr(0, 6) == "total_") {
    out.append(name.substr(6)).append("_total");
  } else {
    out.append(name);
    if (kind == Kind::kCounter && !out.ends_with("_total")) out.append("_total");
    if (kind == Kind::kText) out.append("_info");
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) out[i] = '_';
  }
  return out;
}

// HELP text: backslash and newline escaped; a label value also escapes '"'.
void append_escaped(std::string* out, std::string_view s, bool label) {
  for (const char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && label) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

std::string prometheus_real(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", d);  // shortest text that reads back as d
}

}  // namespace

void render_prometheus(const Samples& s, std::string_view prefix, std::string* out,
                       std::unordered_set<std::string>* seen) {
  for (const Sample& e : s) {
    std::string name = prometheus_name(prefix, e.name, e.kind);
    if (!seen->insert(name).second) continue;
    out->append("# HELP ").append(name).append(" ");
    append_escaped(out, e.help, false);
    out->append("\n# TYPE ").append(name).append(e.kind == Kind::kCounter ? " counter\n" : " gauge\n");
    out->append(name);
    if (const auto* t = std::get_if<std::string>(&e.value)) {
      out->append("{value=\"");
      append_escaped(out, *t, true);
      out->append("\"} 1\n");
    } else if (const auto* d = std::get_if<double>(&e.value)) {
      out->append(" ").append(prometheus_real(*d)).append("\n");
    } else {
      out->append(" ").append(format_value(e)).append("\n");
    }
  }
}

}  // namespace ferrite::stats
