// The dump/load line format (see dump_format.h).
#include "client/dump_format.h"

#include <fmt/format.h>

#include <charconv>

namespace ferrite::client::dump {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Unescapes field (starting at byte column col of the line) into *out.
Status unescape(std::string_view field, std::size_t col, std::string_view name, std::string* out) {
  out->clear();
  out->reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    const char c = field[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    const std::size_t at = col + i;
    if (i + 1 == field.size()) {
      return Status::invalid_argument(fmt::format("{}: a lone backslash at its end (column {})", name, at));
    }
    switch (field[++i]) {
      case '\\': out->push_back('\\'); break;
      case 't': out->push_back('\t'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 'x': {
        const int hi = i + 1 < field.size() ? hex_digit(field[i + 1]) : -1;
        const int lo = i + 2 < field.size() ? hex_digit(field[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          return Status::invalid_argument(
              fmt::format("{}: \\x must be followed by two hex digits (column {})", name, at));
        }
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      default:
        return Status::invalid_argument(fmt::format(
            "{}: unknown escape \\{} (column {}; allowed \\\\ \\t \\n \\r \\xHH)", name, field[i], at));
    }
  }
  return Status::ok();
}

Status parse_u32(std::string_view field, std::size_t col, std::string_view name, uint32_t* out) {
  const char* end = field.data() + field.size();
  auto [p, ec] = std::from_chars(field.data(), end, *out);
  if (field.empty() || p != end || ec != std::errc()) {
    return Status::invalid_argument(
        fmt::format("{} \"{}\" (column {}) is not a decimal number 0..4294967295", name, field, col));
  }
  return Status::ok();
}

}  // namespace

void append_escaped(std::string* out, std::string_view bytes) {
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c < 0x20 || c > 0x7e) {
      const char e[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      out->append(e, 4);
    } else {
      out->push_back(ch);
    }
  }
}

void append_record(std::string* out, std::string_view key, std::string_view value, uint32_t flags, uint32_t exptime) {
  append_escaped(out, key);
  fmt::format_to(std::back_inserter(*out), "\t{}\t{}\t", flags, exptime);
  append_escaped(out, value);
  out->push_back('\n');
}

Status check_header(std::string_view line) {
  if (line == kHeader) return Status::ok();
  if (line.starts_with("ferrite-dump\t")) {
    return Status::invalid_argument(fmt::format("format version \"{}\" is not known to this ferritectl (it reads 1)",
                                                line.substr(13)));
  }
  return Status::invalid_argument(
      "not a ferrite-dump file: the first line must be \"ferrite-dump<TAB>1\". Plain \"key<TAB>value\" lines (the "
      "output of ferritectl dump before format 1) are refused: they carry no flags or TTLs and cannot hold tabs or "
      "newlines; docs/operations.md, \"Dump and load\", shows how to convert them");
}

Status parse_record(std::string_view line, Record* out) {
  std::string_view f[4];
  std::size_t col[4];
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      return Status::invalid_argument(
          fmt::format("{} fields where 4 are expected (KEY<TAB>FLAGS<TAB>EXPTIME<TAB>VALUE)", i + 1));
    }
    f[i] = line.substr(start, tab - start);
    col[i] = start + 1;
    start = tab + 1;
  }
  f[3] = line.substr(start);
  col[3] = start + 1;
  if (f[3].find('\t') != std::string_view::npos) {
    return Status::invalid_argument(fmt::format("a raw tab in the value (column {}): tabs in values are written \\t",
                                                start + f[3].find('\t') + 1));
  }
  if (f[0].empty()) return Status::invalid_argument("the key is empty");
  FERRITE_RETURN_IF_ERROR(unescape(f[0], col[0], "key", &out->key));
  FERRITE_RETURN_IF_ERROR(parse_u32(f[1], col[1], "flags", &out->flags));
  FERRITE_RETURN_IF_ERROR(parse_u32(f[2], col[2], "exptime", &out->exptime));
  return unescape(f[3], col[3], "value", &out->value);
}

}  // namespace ferrite::client::dump
