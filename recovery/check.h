// Offline consistency check and repair of a pool file (ferrite-check, issue 5).
//
//   auto r = check_pool("/dev/shm/ferrite.pool");       // reads; changes nothing the index uses
//   if (r && !r->ok()) puts(to_string(*r).c_str());
//   auto fixed = repair_pool(path);                      // fixes what can be fixed, re-checks
//
// What is checked (each problem names where and what, with a stable class):
//  - root header: magic, format version, incompat bits, size (Pool::open);
//  - index root and directory: object type, magic, version, depth;
//  - directory entries: each names a table segment object with local depth
//    d <= G, and exactly the 2^(G-d) consecutive entries of its prefix name it;
//  - slots: the record lies inside a log segment and passes its checksum, the
//    key is reachable by a lookup (its directory entry names this segment, the
//    slot is in its probe sequence with no empty slot before it, and the tag
//    bits are slot::tag_of(hash)), no key in two slots of the whole index;
//  - log heads (IndexRoot::log_heads) name log segments;
//  - leaked space, in bytes per class: table segments, directories and index
//    roots no root reaches (orphans), segments of no known owner (bad magic,
//    kind other than kLog), objects of unknown type, log segments no slot
//    references (fully dead; the current log heads excepted). Unreferenced
//    bytes inside used log segments are reported too, but they are the
//    cleaner's normal work, not a problem.
// Leftovers a crash legally leaves (dirty bits, moved bits, table segment
// states) are counted, not called problems: readers persist a dirty slot
// before using it, writers clear a moved bit of a split that never
// published, and open resets segment states. --repair clears them anyway.
//
// Exit-code contract (ferrite-check, see exit_code()): 0 consistent
// (leftovers allowed), 1 problems found (or left after repair), 2 usage
// error or the pool cannot be opened, 3 problems found and all repaired.
//
// Thread safety: pure functions of the file; nothing else may have the pool
// open (libpmemobj's lock refuses it: Status kBusy). The pool's clean flag is
// left as it was found; every open counts in RootHeader::open_count.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "recovery/inspect.h"

namespace ferrite::recovery {

enum class ProblemKind : uint8_t {
  kCorruption,  // data unreachable, unreadable or structure wrong
  kLeak,        // space no live data uses and nothing will reuse as it stands
};

struct Problem {
  std::string cls;     // stable name, e.g. "torn_record" (see check.cc for the list)
  ProblemKind kind = ProblemKind::kCorruption;
  std::string where;   // e.g. "table segment 0x1c40 bucket 12 slot 3"
  std::string what;    // what is wrong
  uint64_t bytes = 0;  // leaked bytes (kLeak)
  bool repairable = false;
  std::string repair;  // what --repair does about it (or why it cannot)
};

struct SpaceClass {
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct CheckReport {
  PoolReport pool;
  // Index.
  uint64_t global_depth = 0;
  uint64_t table_segments = 0;    // distinct segments the directory names
  uint64_t keys = 0;              // slots naming a live (or expired) value
  uint64_t tombstones = 0;        // deleted keys whose slot still names their record
  uint64_t dead_tombstones = 0;   // slots that name no record (slot::kDead)
  uint64_t log_bytes = 0;         // bytes appended to log segments
  uint64_t referenced_bytes = 0;  // bytes of records live keys point at
  // Leftovers of a crash (legal; cleared by --repair).
  uint64_t dirty_bits = 0;
  uint64_t moved_bits = 0;
  uint64_t segment_states = 0;    // referenced table segments whose state is not normal
  // Space.
  SpaceClass orphan_table_segments, orphan_directories, orphan_index_roots, unknown_objects, unowned_segments,
      dead_log_segments;
  uint64_t dead_record_bytes = 0;  // unreferenced bytes inside log segments still in use (cleaner's work)
  // Problems: the first kMaxListed are listed; counts cover all of them.
  std::vector<Problem> problems;
  uint64_t problem_count = 0;
  uint64_t unrepairable = 0;
  std::map<std::string, uint64_t> problem_classes;

  static constexpr std::size_t kMaxListed = 1000;
  bool ok() const noexcept { return problem_count == 0; }
  uint64_t leftovers() const noexcept { return dirty_bits + moved_bits + segment_states; }
};

struct RepairReport {
  CheckReport before;
  std::vector<std::string> actions;  // what was changed (first CheckReport::kMaxListed)
  uint64_t action_count = 0;
  uint64_t repaired = 0;             // problems fixed
  uint64_t leftovers_cleared = 0;
  uint64_t keys_lost = 0;            // live keys turned into dead tombstones (torn or unreadable records)
  uint64_t bytes_freed = 0;
  std::vector<std::string> errors;   // repairs that failed (e.g. a transaction)
  CheckReport after;                 // the check re-run after repairing
};

// Checks the pool at path. Errors (Status): the pool cannot be opened (all of
// Pool::open's checks), or its index is of a newer version.
StatusOr<CheckReport> check_pool(const std::string& path);
// Checks, repairs what can be repaired without losing acknowledged data
// (a key whose record is torn or outside every log is already lost; its slot
// becomes a dead tombstone and the report names it), then checks again.
// Every repair is crash-safe: re-running it after a crash finishes the job.
StatusOr<RepairReport> repair_pool(const std::string& path);

// ferrite-check's exit code for a check or a repair (see above).
int exit_code(const CheckReport& r) noexcept;
int exit_code(const RepairReport& r) noexcept;

std::string to_string(const CheckReport& r);
std::string to_string(const RepairReport& r);
// One JSON object each.
std::string to_json(const CheckReport& r);
std::string to_json(const RepairReport& r);
std::string json_escape(std::string_view s);

}  // namespace ferrite::recovery
