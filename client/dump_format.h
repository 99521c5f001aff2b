// The text format of `ferritectl dump` and `ferritectl load` (version 1):
// one header line, then one line per key, every byte of keys and values kept.
//
//   ferrite-dump<TAB>1
//   KEY<TAB>FLAGS<TAB>EXPTIME<TAB>VALUE
//
// FLAGS is the key's client flags (decimal, 0..4294967295). EXPTIME is the
// absolute expiry in unix seconds (decimal; 0 = never expires), as the server
// stores it, so a dump taken now and loaded later expires each key at the
// same moment (load skips keys whose expiry has passed). KEY and VALUE are
// escaped: backslash as \\, tab as \t, newline as \n, carriage return as \r,
// and every other byte below 0x20 or above 0x7e as \xHH (two hex digits);
// printable ASCII (space included) stands for itself. So a line holds no raw
// tab but its three separators and no raw newline, and any byte string
// survives. docs/operations.md, "Dump and load", describes it for users.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferrite::client::dump {

inline constexpr std::string_view kHeader = "ferrite-dump\t1";

struct Record {
  std::string key, value;
  uint32_t flags = 0;
  uint32_t exptime = 0;  // absolute unix seconds, 0 = never
};

// Appends bytes escaped as above.
void append_escaped(std::string* out, std::string_view bytes);
// Appends one record line, newline included.
void append_record(std::string* out, std::string_view key, std::string_view value, uint32_t flags, uint32_t exptime);

// The first line (without its newline): OK if it is kHeader, else an error
// that says what the file looks like instead.
Status check_header(std::string_view line);
// One record line (without its newline) into *out; the error names the
// field and the byte column (1-based) at fault, not the line number (the
// caller knows it).
Status parse_record(std::string_view line, Record* out);

}  // namespace ferrite::client::dump
