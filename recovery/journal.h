// Crash-campaign workload, journal and verifier (test builds and
// ferrite-crashtest).
//
// A campaign writer sets and deletes keys "ck-<id>" with values that encode
// (key id, sequence number) and a deterministic filler, so a value read back
// tells exactly which write produced it and whether its bytes are intact. It
// journals every op before issuing it and every acknowledgement after the
// reply (or after Worker::execute() returned). After a crash the verifier
// replays the journal into a per-key model and checks what recovery yields:
//  - lost:      an acknowledged write is missing, or an older value (or a
//               deleted key) came back instead of the acknowledged state;
//  - torn:      a value whose bytes do not match the write its header names;
//  - unexpected: a value naming a write that was never issued for that key;
//  - duplicate: a key visited twice by a full scan.
// Allowed per key: the state after the last acknowledged op, or after any op
// issued later (unacknowledged ops may or may not have taken effect; ops of
// one key are applied in order). A key owned by one writer thread has a total
// order of ops; campaigns give each thread its own keys.
// Evict mode (Model::set_evictable, pool.when_full = evict): a key may also be
// absent whatever its journal says (the cleaner may have evicted it: its slot
// became a dead tombstone, durably, so no older value can come back). Such a
// key is counted as absent_evictable, not lost; a value that is present must
// still be one of the allowed ones above (else lost, i.e. stale, or torn or
// unexpected, exactly as without eviction).
//
// After a successful verification, settle() folds the observed state into
// the model's baseline, so the next cycle starts from what is on media.
//
// Thread safety: Journal belongs to one writer thread; Model and verify are
// single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace ferrite::recovery {

std::string campaign_key(uint32_t id);
// Value of the write with sequence number seq to key id: "<id>:<seq>:" and a
// filler of a length derived from seq, in [min_len, max_len].
std::string campaign_value(uint32_t id, uint64_t seq, std::size_t min_len, std::size_t max_len);
// campaign_value(id, seq, min_len, max_len).size(), without building it.
std::size_t campaign_value_size(uint32_t id, uint64_t seq, std::size_t min_len, std::size_t max_len);
// Parses a value; true if it names (id, seq) and its bytes are exactly
// campaign_value(id, seq, min_len, max_len).
bool parse_campaign_value(std::string_view v, std::size_t min_len, std::size_t max_len, uint32_t* id,
                          uint64_t* seq);

enum class JType : uint8_t { kIssue = 1, kAck = 2 };
enum class JOp : uint8_t { kSet = 1, kDel = 2 };

struct JRecord {
  JType type;
  JOp op;
  uint16_t pad = 0;
  uint32_t key;
  uint64_t seq;
};
static_assert(sizeof(JRecord) == 16);

// Append-only journal. File-backed journals write(2) each batch: the page
// cache keeps them across a SIGKILL of the writer.
class Journal {
 public:
  Journal() = default;  // in memory only
  static StatusOr<Journal> create_file(const std::string& path);
  Journal(Journal&& o) noexcept;
  Journal& operator=(Journal&& o) noexcept;
  ~Journal();

  void issue(JOp op, uint32_t key, uint64_t seq) { buf_.push_back({JType::kIssue, op, 0, key, seq}); }
  void ack(JOp op, uint32_t key, uint64_t seq) { buf_.push_back({JType::kAck, op, 0, key, seq}); }
  // Writes what was buffered (file-backed) / keeps it (in memory).
  Status flush();
  const std::vector<JRecord>& records() const noexcept { return all_; }

  static StatusOr<std::vector<JRecord>> read_file(const std::string& path);

 private:
  int fd_ = -1;
  std::vector<JRecord> buf_;
  std::vector<JRecord> all_;  // in-memory journals only
};

struct VerifyReport {
  uint64_t keys_checked = 0;
  uint64_t acked = 0;        // acknowledged ops in this cycle's journal
  uint64_t lost = 0;
  uint64_t torn = 0;
  uint64_t unexpected = 0;
  uint64_t duplicates = 0;
  // Evict mode only: keys found absent where the journal allows only a
  // present value (an acknowledged set, or a value found by the previous
  // verification and not written since): evicted, not lost.
  uint64_t absent_evictable = 0;
  std::vector<std::string> examples;  // the first few findings, human-readable
  bool ok() const noexcept { return lost == 0 && torn == 0 && unexpected == 0 && duplicates == 0; }
};

// Per-key model of a campaign.
class Model {
 public:
  Model(uint32_t keys, std::size_t min_len, std::size_t max_len) : keys_(keys), min_len_(min_len), max_len_(max_len) {}

  void apply(const JRecord& r);  // feed journal records in order
  void apply(const std::vector<JRecord>& rs) {
    for (const JRecord& r : rs) apply(r);
  }

  // Checks every key with get(key) -> value or nullopt. scan, if given, must
  // call its visitor once per key it finds (for duplicates and keys that
  // should not exist). Then settles the model on what was observed (if the
  // check passed; a failed check leaves the model as it was).
  VerifyReport verify(const std::function<std::optional<std::string>(const std::string&)>& get,
                      const std::function<void(const std::function<void(std::string_view)>&)>& scan = {});

  // Evict mode: absence is always allowed (see the header comment).
  void set_evictable(bool on) noexcept { evictable_ = on; }
  bool evictable() const noexcept { return evictable_; }

  uint64_t max_seq() const noexcept { return max_seq_; }
  uint32_t keys() const noexcept { return keys_; }
  std::size_t min_len() const noexcept { return min_len_; }
  std::size_t max_len() const noexcept { return max_len_; }

 private:
  struct PendingOp {
    JOp op;
    uint64_t seq;
    bool acked;
  };
  struct KeyState {
    uint64_t base_seq = 0;  // 0: absent at the start of this cycle
    std::vector<PendingOp> ops;  // issued this cycle, in order
  };
  uint32_t keys_;
  std::size_t min_len_, max_len_;
  uint64_t max_seq_ = 0;
  bool evictable_ = false;
  std::unordered_map<uint32_t, KeyState> state_;
};

}  // namespace ferrite::recovery
