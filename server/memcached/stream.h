// McStream: how much reply one McEngine::process() call may produce, and the
// get-family request it paused at that bound (issue 15, item 5).
//
// A reply is produced request by request, and a get/gets/gat/gats with many
// keys a few keys at a time (kGetChunkKeys values in memory at once). Before
// each request and each chunk, process() compares the output with out_limit:
//  - resumable (TCP): it stops parsing; a get with keys left is paused, its
//    remaining keys copied here (at most one request line), and the next
//    process() call on the same stream answers them first, then goes on
//    with the pipelined requests behind it. The connection meanwhile does
//    not read (McTcpServer waits on EPOLLOUT until its output drained).
//  - not resumable (UDP): the request's reply cannot be sent whole, so the
//    caller answers it with an error instead (too_large).
// The output therefore exceeds out_limit by at most one chunk or one
// single-item reply (kMaxValueLen plus its line).
//
// A get line longer than kMaxLineLen (a long get, proto::mc::GetLine) is
// answered while it arrives: on a resumable stream its state is kept here
// between process() calls, the front of the next input being more of its
// keys (long_get); a paused piece of it ends without END (end). On a stream
// that is not resumable (or none) a long get is answered only once its
// whole line is in the input.
//
// Thread safety: a McStream belongs to one connection (or one datagram) and
// is used by the one thread that serves it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "proto/memcached.h"

namespace ferrite::server {

// Keys of a get-family request looked up per index burst: bounds the values
// copied out of the index at once to kGetChunkKeys x kMaxValueLen.
inline constexpr std::size_t kGetChunkKeys = 8;
// Value buffers keep at most this much capacity between chunks (a 1 MiB
// value's buffer is freed, not kept per key slot).
inline constexpr std::size_t kKeptValueCapacity = 64u << 10;

struct McStream {
  std::size_t out_limit = std::numeric_limits<std::size_t>::max();
  bool resumable = true;
  bool too_large = false;  // not resumable: the bound was reached with the request unanswered

  // A paused get-family request: its command, expiry (gat) and the keys left.
  bool paused = false;
  proto::mc::Cmd cmd = proto::mc::Cmd::kGet;
  uint32_t exptime = 0;  // absolute (also that of a long get)
  std::string keys;      // at most one line's, or one piece of a long get (kMaxLineLen)
  bool end = true;       // END follows the keys (false: a long get's next piece does)

  // A long get being read: the input's front continues its line.
  bool long_get = false;
  proto::mc::GetLine line;
};

}  // namespace ferrite::server
