// The config file's rules as config_args.cc needs them: reading and parsing
// the TOML text, applying a table (every key through the one set of rules in
// config.cc), and checking one key's value alone. Private to config.cc and
// config_args.cc (it includes toml++, which no other server header does).
//
// Thread safety: pure functions; the rule table is built once, on first use
// (a function-local static).
#pragma once

#include <string>
#include <string_view>
#include <toml++/toml.h>

#include "common/status.h"
#include "server/config.h"

namespace ferrite::server::config_detail {

// The text of a config file; a directory, a missing file or a read error is
// an error naming the path (never an empty text, which would mean defaults).
StatusOr<std::string> read_config_text(const std::string& path);

// TOML text as a table; a syntax error names src:line:column.
StatusOr<toml::table> parse_toml(std::string_view text, std::string_view src);

// Sets every key of t in c, then checks the rules between keys; src names
// where t came from in error messages.
Status apply_table(const toml::table& t, Config& c, std::string_view src);

// Whether value is allowed for key (a known dotted key), with the message
// apply_table would give; sets nothing.
Status check_value(const std::string& key, const toml::node& value, std::string_view src);

}  // namespace ferrite::server::config_detail
