// ferritectl's dump and load subcommands (ferritectl_dump.cc), in the
// format of client/dump_format.h. Both stream: dump writes each scan page
// as it arrives, load reads a line at a time and sends batches of at most 64
// keys, so memory stays bounded by one page or one batch whatever the pool
// holds. On a terminal stderr shows a progress line (keys, bytes, rate);
// otherwise only the final summary.
//
// Thread safety: run from ferritectl's one thread.
#pragma once

#include <cstdio>
#include <string>

#include "client/client.h"

namespace ferrite::client {

// Exit codes as ferritectl's: 0 ok; 1 some key was not stored; 2 input or
// output error (a malformed line: "FILE:LINE: why"); 3 transport failure.
int run_dump(Client& c, std::FILE* out);
int run_load(Client& c, const std::string& path);  // path "-": standard input

}  // namespace ferrite::client
