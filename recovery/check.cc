// check_pool and repair_pool (see check.h).
//
// Problem classes (Problem::cls), kind, and what --repair does:
//   bad_index_root      corruption  RootHeader::index_root names no index root object, or a bad magic
//   bad_directory       corruption  IndexRoot::dir names no directory object, bad magic or depth
//   bad_dir_entry       corruption  a directory entry names no table segment object (or a bad magic)
//   bad_local_depth     corruption  a table segment's local depth exceeds the global depth
//   bad_dir_prefix      corruption  a segment is not named by exactly the 2^(G-d) entries of its prefix
//       The five above make the directory untrustworthy: --repair then changes nothing at all
//       (an "orphan" might be a segment a broken entry lost; freeing it could lose data).
//   record_outside_log  corruption  a slot names an offset inside no log segment      -> dead tombstone
//   torn_record         corruption  a slot names a record failing its checksum        -> dead tombstone
//       (the key is lost in both cases; the report names it when the record header still shows it)
//   duplicate_key       corruption  a key in two slots: the one holding the older version (or, on a
//                                   tie, the unreachable one) is reported                -> dead tombstone
//   wrong_segment, off_probe, behind_empty, tag_mismatch
//                       corruption  a lookup cannot reach the key                       -> moved to the
//                                   first free (empty or dead) slot of its probe sequence in the segment its directory
//                                   entry names (tag fixed in place when that is enough); not repairable
//                                   when that sequence has no empty slot
//   bad_log_head        corruption  IndexRoot::log_heads[w] names no log segment       -> head cleared
//   bad_log_chain       corruption  the list of log segments (IndexRoot::log_chain, index/log_chain.h),
//                                   when present, names a non-log segment, loops, or misses one
//                                                                                       -> chain rebuilt
//   orphan_table_segment, orphan_directory, orphan_index_root, unknown_object, unowned_segment,
//   dead_log_segment    leak        freed, each in one libpmemobj transaction
#include "recovery/check.h"

#include <fmt/format.h>
#include <libpmemobj.h>

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/hash.h"
#include "common/stats.h"
#include "index/log_chain.h"
#include "index/record.h"
#include "index/slot.h"
#include "index/table.h"
#include "pmem/pool.h"
#include "pmem/segment.h"

namespace ferrite::recovery {
namespace {

namespace slot = index::slot;
using index::Directory;
using index::IndexRoot;
using index::RecordHeader;
using index::TableSegment;

// Keys in text: printable ASCII as is, other bytes as \xNN, at most 64 bytes.
std::string printable(std::string_view s) {
  std::string o;
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && u != '"' && u != '\\') {
      o += c;
    } else {
      o += fmt::format("\\x{:02x}", u);
    }
  }
  if (s.size() > 64) o += "...";
  return o;
}

struct LogSeg {
  uint64_t hdr = 0;           // POff of the SegmentHeader
  uint64_t lo = 0, hi = 0;    // data range [lo, hi)
  uint64_t obj_off = 0, obj_size = 0;
  uint64_t refs = 0;          // bytes of records surviving slots name (live or deleted)
  uint64_t ref_end = 0;       // end of the farthest named record, relative to lo
  bool head = false;          // some worker's current log head
};

enum class Reach : uint8_t { kOk, kWrongSegment, kOffProbe, kBehindEmpty, kTag };

struct SlotRef {
  uint64_t hash;
  uint64_t slot;   // pool offset of the slot word
  uint64_t seg;    // table segment holding it
  uint32_t log;    // index into logs_
  Reach reach;
  bool loser = false;
};

struct Deaden {
  uint64_t slot;
  bool key_lost;
  std::string what;
};

struct FreeObj {
  uint64_t obj_off;
  uint64_t bytes;
  std::string what;
  uint64_t log_hdr = 0;  // != 0: a log segment, released through SegmentAllocator
};

class Checker {
 public:
  Checker(pmem::Pool& p, CheckReport* r) : p_(p), r_(*r) {}
  Status run();
  void repair(RepairReport* rr);

 private:
  template <typename T>
  T* at(uint64_t off) const noexcept {
    return reinterpret_cast<T*>(p_.base() + off);
  }
  std::atomic<uint64_t>* slot_at(uint64_t off) const noexcept { return at<std::atomic<uint64_t>>(off); }
  uint64_t off_of(const void* p) const noexcept {
    return static_cast<uint64_t>(static_cast<const char*>(p) - p_.base());
  }
  std::string where_slot(uint64_t seg, uint64_t slot_off) const {
    const uint64_t i = (slot_off - seg - 64) / sizeof(uint64_t);
    return fmt::format("table segment {:#x} bucket {} slot {}", seg, i / index::kSlotsPerBucket,
                       i % index::kSlotsPerBucket);
  }
  const RecordHeader* rec_of(uint64_t w) const noexcept { return at<const RecordHeader>(slot::rec_off(w)); }
  LogSeg* containing(uint64_t off) noexcept;
  void add(Problem pr);
  void structural(std::string cls, std::string where, std::string what);
  Status check_index();
  void check_directory();
  void scan_segment(uint64_t soff);
  Reach reachability(uint64_t soff, uint64_t slot_off, uint64_t w, uint64_t h) const noexcept;
  uint64_t relocation_target(uint64_t slot_off, uint64_t h) const noexcept;
  void resolve_duplicates();
  void check_log_heads();
  void check_log_chain();
  void check_orphans();
  void check_logs();
  uint64_t walk_tail(const LogSeg& l) const noexcept;

  pmem::Pool& p_;
  CheckReport& r_;
  uint64_t root_obj_ = 0;
  // Objects by type.
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> tables_;  // segment start -> (obj off, size)
  std::vector<std::pair<uint64_t, uint64_t>> dirs_, iroots_;            // (obj off, size)
  std::vector<LogSeg> logs_;                                            // sorted by lo
  IndexRoot* iroot_ = nullptr;
  Directory* dir_ = nullptr;
  std::unordered_set<uint64_t> named_tables_;  // table segments some directory entry names
  std::vector<uint64_t> scanned_;              // of those, the ones with a good header
  std::vector<SlotRef> refs_;
  std::unordered_set<uint64_t> losers_;  // duplicate slots that R2 turns into dead tombstones
  // Repair plan.
  bool structural_ = false;
  std::vector<Deaden> deaden_;
  std::vector<uint64_t> relocate_;  // slot offsets
  std::vector<unsigned> bad_heads_;
  bool bad_chain_ = false;
  std::vector<FreeObj> frees_;
};

void Checker::add(Problem pr) {
  ++r_.problem_count;
  ++r_.problem_classes[pr.cls];
  if (!pr.repairable) ++r_.unrepairable;
  if (r_.problems.size() < CheckReport::kMaxListed) r_.problems.push_back(std::move(pr));
}

void Checker::structural(std::string cls, std::string where, std::string what) {
  structural_ = true;
  add({std::move(cls), ProblemKind::kCorruption, std::move(where), std::move(what), 0, false,
       "none: the directory cannot be trusted, so --repair changes nothing in this pool"});
}

LogSeg* Checker::containing(uint64_t off) noexcept {
  auto it = std::upper_bound(logs_.begin(), logs_.end(), off, [](uint64_t v, const LogSeg& x) { return v < x.lo; });
  if (it == logs_.begin()) return nullptr;
  --it;
  return off < it->hi ? &*it : nullptr;
}

Status Checker::run() {
  // Pool summary (as inspect_pool reports it, from this one open); the
  // segment counts come from the object walk below.
  r_.pool = pool_summary(p_);
  PoolReport& pr = r_.pool;
  root_obj_ = off_of(p_.root());

  // Every libpmemobj object, by type. Bounded: a heap cannot hold more
  // objects than 64-byte units, so more means libpmemobj's list loops.
  const uint64_t walk_bound = p_.size() / 64 + 16;
  uint64_t walked = 0;
  for (PMEMoid o = pmemobj_first(p_.handle()); !OID_IS_NULL(o); o = pmemobj_next(o)) {
    if (++walked > walk_bound) {
      return Status::corruption(fmt::format(
          "pool {} is corrupt: libpmemobj's object list has more than {} entries (a loop); restore it from a backup",
          p_.path(), walk_bound));
    }
    if (o.off == root_obj_) continue;
    const uint64_t type = pmemobj_type_num(o);
    const uint64_t size = pmemobj_alloc_usable_size(o);
    const uint64_t start = round_up(o.off, kCacheLine);
    if (type == pmem::kTypeSegment) {
      auto* h = at<pmem::SegmentHeader>(start);
      const bool good = start + sizeof(pmem::SegmentHeader) <= o.off + size && h->magic == pmem::kSegmentMagic &&
                        h->obj_off == o.off && h->size >= sizeof(pmem::SegmentHeader) &&
                        start + h->size <= o.off + size;
      if (good && h->kind == static_cast<uint32_t>(pmem::SegmentKind::kLog)) {
        ++pr.log_segments;
        LogSeg l;
        l.hdr = start;
        l.lo = start + sizeof(pmem::SegmentHeader);
        l.hi = start + h->size;
        l.obj_off = o.off;
        l.obj_size = size;
        logs_.push_back(l);
        continue;
      }
      ++pr.other_segments;
      r_.unowned_segments.count++;
      r_.unowned_segments.bytes += size;
      add({"unowned_segment", ProblemKind::kLeak, fmt::format("segment object {:#x}", o.off),
           good ? fmt::format("segment of kind {} (no owner: only log segments are in use)", h->kind)
                : fmt::format("segment with a bad header (magic {:#x}): nothing owns it", h->magic),
           size, true, "freed"});
      frees_.push_back({o.off, size, "unowned segment"});
    } else if (type == index::kTypeTableSegment) {
      tables_[start] = {o.off, size};
    } else if (type == index::kTypeDirectory) {
      dirs_.emplace_back(o.off, size);
    } else if (type == index::kTypeIndexRoot) {
      iroots_.emplace_back(o.off, size);
    } else {
      r_.unknown_objects.count++;
      r_.unknown_objects.bytes += size;
      add({"unknown_object", ProblemKind::kLeak, fmt::format("object {:#x}", o.off),
           fmt::format("object of unknown type {:#x} ({} bytes): nothing in Ferrite uses it", type, size), size, true,
           "freed"});
      frees_.push_back({o.off, size, fmt::format("object of unknown type {:#x}", type)});
    }
  }
  std::sort(logs_.begin(), logs_.end(), [](const LogSeg& a, const LogSeg& b) { return a.lo < b.lo; });

  FERRITE_RETURN_IF_ERROR(check_index());
  check_orphans();
  check_logs();
  check_log_chain();
  // Leaks found before the directory turned out broken are not repairable
  // either: reachability is what tells an orphan from a lost segment.
  if (structural_) {
    for (auto& p : r_.problems) {
      if (p.repairable) {
        p.repairable = false;
        ++r_.unrepairable;
        p.repair = "none: the directory cannot be trusted, so --repair changes nothing in this pool";
      }
    }
  }
  return Status::ok();
}

Status Checker::check_index() {
  const uint64_t io = p_.root()->index_root;
  if (io == 0) return Status::ok();
  const bool is_obj = std::any_of(iroots_.begin(), iroots_.end(),
                                  [&](const auto& x) { return x.first == io && x.second >= sizeof(IndexRoot); });
  if (!is_obj) {
    structural("bad_index_root", "root header index_root",
               fmt::format("names {:#x}, which is not an index root object", io));
    return Status::ok();
  }
  iroot_ = at<IndexRoot>(io);
  if (iroot_->magic != index::kIndexMagic) {
    structural("bad_index_root", fmt::format("index root {:#x}", io),
               fmt::format("bad magic number {:#x}", iroot_->magic));
    iroot_ = nullptr;
    return Status::ok();
  }
  if (iroot_->version > index::kIndexVersion) {
    return Status::incompatible(fmt::format("cannot check pool {}: its index format {} is newer than this build's {}",
                                            p_.path(), iroot_->version, index::kIndexVersion));
  }
  const uint64_t doff = iroot_->dir.load(std::memory_order_relaxed);
  auto d = std::find_if(dirs_.begin(), dirs_.end(), [&](const auto& x) { return x.first == doff; });
  if (d == dirs_.end()) {
    structural("bad_directory", fmt::format("index root {:#x}", io),
               fmt::format("its directory pointer {:#x} names no directory object", doff));
    return Status::ok();
  }
  auto* dir = at<Directory>(doff);
  if (dir->magic != index::kDirMagic || dir->depth > index::kMaxGlobalDepth ||
      Directory::bytes_for(static_cast<unsigned>(dir->depth)) > d->second) {
    structural("bad_directory", fmt::format("directory {:#x}", doff),
               fmt::format("magic {:#x}, depth {} in an object of {} bytes", dir->magic, dir->depth, d->second));
    return Status::ok();
  }
  dir_ = dir;
  r_.global_depth = dir_->depth;
  check_directory();
  for (uint64_t s : scanned_) scan_segment(s);
  resolve_duplicates();
  check_log_heads();
  return Status::ok();
}

void Checker::check_directory() {
  const unsigned g = static_cast<unsigned>(dir_->depth);
  const uint64_t n = 1ull << g;
  const std::atomic<uint64_t>* e = dir_->seg;
  // Runs of equal entries, per segment.
  std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> runs;
  std::vector<uint64_t> order;
  for (uint64_t j = 0; j < n;) {
    const uint64_t off = e[j].load(std::memory_order_relaxed);
    uint64_t last = j;
    while (last + 1 < n && e[last + 1].load(std::memory_order_relaxed) == off) ++last;
    auto& v = runs[off];
    if (v.empty()) order.push_back(off);
    v.emplace_back(j, last);
    j = last + 1;
  }
  for (uint64_t off : order) {
    const auto& rs = runs[off];
    std::string entries;
    for (std::size_t i = 0; i < rs.size() && i < 4; ++i) {
      entries += fmt::format("{}{}..{}", i ? ", " : "", rs[i].first, rs[i].second);
    }
    if (rs.size() > 4) entries += fmt::format(" and {} more runs", rs.size() - 4);
    named_tables_.insert(off);
    auto t = tables_.find(off);
    if (t == tables_.end() || off + sizeof(TableSegment) > t->second.first + t->second.second) {
      structural("bad_dir_entry", fmt::format("directory entries {}", entries),
                 fmt::format("name {:#x}, which is not a table segment object", off));
      continue;
    }
    const auto* s = at<TableSegment>(off);
    if (s->magic != index::kSegMagic) {
      structural("bad_dir_entry", fmt::format("directory entries {}", entries),
                 fmt::format("name table segment {:#x}, whose magic number {:#x} is wrong", off, s->magic));
      continue;
    }
    ++r_.table_segments;
    scanned_.push_back(off);
    const unsigned ld = s->local_depth;
    if (ld > g) {
      structural("bad_local_depth", fmt::format("table segment {:#x}", off),
                 fmt::format("local depth {} exceeds the global depth {}", ld, g));
      continue;
    }
    const uint64_t first = ld == 0 ? 0 : s->prefix << (g - ld);
    const uint64_t last = first + (1ull << (g - ld)) - 1;
    const bool prefix_ok = ld == 64 || s->prefix < (1ull << ld);
    if (!prefix_ok || rs.size() != 1 || rs[0].first != first || rs[0].second != last) {
      structural("bad_dir_prefix", fmt::format("table segment {:#x}", off),
                 fmt::format("local depth {} and prefix {:#x}: must be named by exactly entries {}..{}, is named by "
                             "entries {}",
                             ld, s->prefix, first, last, entries));
    }
  }
}

Reach Checker::reachability(uint64_t soff, uint64_t slot_off, uint64_t w, uint64_t h) const noexcept {
  const unsigned g = static_cast<unsigned>(dir_->depth);
  if (dir_->seg[index::dir_index(h, g)].load(std::memory_order_relaxed) != soff) return Reach::kWrongSegment;
  auto* s = at<TableSegment>(soff);
  for (unsigned i = 0; i < index::kProbeSlots; ++i) {
    std::atomic<uint64_t>* sl = index::probe_slot(s, h, i);
    if (off_of(sl) == slot_off) return slot::tag(w) != slot::tag_of(h) ? Reach::kTag : Reach::kOk;
    if (slot::is_empty(sl->load(std::memory_order_relaxed))) return Reach::kBehindEmpty;
  }
  return Reach::kOffProbe;
}

// Where the entry in slot_off (key hash h) goes so that lookups find it:
// the slot itself when only its tag is wrong, else the first slot of the
// key's probe sequence (in the segment the directory names) that is empty,
// a dead tombstone, or a duplicate loser about to become one. A dead slot
// names no key, so reusing it keeps T1/T2 of table.h. 0: the sequence is full.
uint64_t Checker::relocation_target(uint64_t slot_off, uint64_t h) const noexcept {
  const unsigned g = static_cast<unsigned>(dir_->depth);
  const uint64_t home = dir_->seg[index::dir_index(h, g)].load(std::memory_order_relaxed);
  if (std::find(scanned_.begin(), scanned_.end(), home) == scanned_.end()) return 0;  // not a usable segment
  auto* s = at<TableSegment>(home);
  for (unsigned i = 0; i < index::kProbeSlots; ++i) {
    std::atomic<uint64_t>* sl = index::probe_slot(s, h, i);
    if (off_of(sl) == slot_off) return slot_off;
    if (slot::is_empty(sl->load(std::memory_order_relaxed))) break;
  }
  for (unsigned i = 0; i < index::kProbeSlots; ++i) {
    std::atomic<uint64_t>* sl = index::probe_slot(s, h, i);
    const uint64_t w = sl->load(std::memory_order_relaxed);
    if (slot::is_empty(w) || slot::is_dead(w) || losers_.count(off_of(sl)) != 0) return off_of(sl);
  }
  return 0;
}

void Checker::scan_segment(uint64_t soff) {
  auto* s = at<TableSegment>(soff);
  if (s->state.load(std::memory_order_relaxed) != index::kSegNormal) ++r_.segment_states;
  for (unsigned b = 0; b < index::kBucketsPerSegment; ++b) {
    for (unsigned k = 0; k < index::kSlotsPerBucket; ++k) {
      std::atomic<uint64_t>& a = s->buckets[b].slots[k];
      const uint64_t w = a.load(std::memory_order_relaxed);
      if (slot::is_dirty(w)) ++r_.dirty_bits;
      if (slot::is_moved(w)) ++r_.moved_bits;
      if (slot::is_empty(w)) continue;
      if (slot::is_dead(w)) {
        ++r_.dead_tombstones;
        continue;
      }
      const uint64_t so = off_of(&a);
      const uint64_t roff = slot::rec_off(w);
      const bool tomb = slot::is_tombstone(w);
      const char* lost = tomb ? "a deleted key: nothing is lost" : "the key is lost";
      LogSeg* lg = containing(roff);
      if (lg == nullptr) {
        const std::string where = where_slot(soff, so);
        add({"record_outside_log", ProblemKind::kCorruption, where,
             fmt::format("names offset {:#x}, inside no log segment", roff), 0, true,
             fmt::format("dead tombstone ({})", lost)});
        deaden_.push_back({so, !tomb, fmt::format("{}: {}", where, lost)});
        continue;
      }
      const auto* rec = at<const RecordHeader>(roff);
      if (!index::record_valid(rec, lg->hi - roff)) {
        const std::string where = where_slot(soff, so);
        std::string key;
        if (rec->key_len() > 0 && roff + sizeof(RecordHeader) + rec->key_len() <= lg->hi) {
          key = fmt::format(" (its header says key \"{}\")", printable(rec->key()));
        }
        add({"torn_record", ProblemKind::kCorruption, where,
             fmt::format("names the record at {:#x}{}, which fails its checksum: torn or corrupt", roff, key), 0,
             true, fmt::format("dead tombstone ({})", lost)});
        deaden_.push_back({so, !tomb, fmt::format("{}: {}{}", where, lost, key)});
        continue;
      }
      const uint64_t h = hash_key(rec->key());
      refs_.push_back({h, so, soff, static_cast<uint32_t>(lg - logs_.data()), reachability(soff, so, w, h)});
      lg->refs += rec->size();
      lg->ref_end = std::max(lg->ref_end, roff - lg->lo + rec->size());
      if (tomb) {
        ++r_.tombstones;
      } else {
        ++r_.keys;
        r_.referenced_bytes += rec->size();
      }
    }
  }
}

void Checker::resolve_duplicates() {
  std::sort(refs_.begin(), refs_.end(),
            [](const SlotRef& a, const SlotRef& b) { return a.hash != b.hash ? a.hash < b.hash : a.slot < b.slot; });
  for (std::size_t i = 0; i < refs_.size();) {
    std::size_t end = i + 1;
    while (end < refs_.size() && refs_[end].hash == refs_[i].hash) ++end;
    if (end - i == 1) {  // the common case: a hash no other slot has
      i = end;
      continue;
    }
    std::vector<bool> grouped(end - i, false);
    for (std::size_t a = i; a < end; ++a) {
      if (grouped[a - i]) continue;
      const std::string_view key = rec_of(slot_at(refs_[a].slot)->load(std::memory_order_relaxed))->key();
      std::vector<std::size_t> group{a};
      for (std::size_t b = a + 1; b < end; ++b) {
        if (!grouped[b - i] && rec_of(slot_at(refs_[b].slot)->load(std::memory_order_relaxed))->key() == key) {
          group.push_back(b);
          grouped[b - i] = true;
        }
      }
      if (group.size() < 2) continue;
      // Keep the newest version; on a tie (two slots naming the same record,
      // e.g. a relocation a crash interrupted) the reachable one, then the
      // lower slot offset: deterministic, so a re-run decides the same.
      auto version = [&](std::size_t x) { return rec_of(slot_at(refs_[x].slot)->load())->version; };
      auto better = [&](std::size_t x, std::size_t y) {
        if (version(x) != version(y)) return version(x) > version(y);
        if ((refs_[x].reach == Reach::kOk) != (refs_[y].reach == Reach::kOk)) return refs_[x].reach == Reach::kOk;
        return refs_[x].slot < refs_[y].slot;
      };
      std::size_t keep = group[0];
      for (std::size_t x : group) {
        if (better(x, keep)) keep = x;
      }
      for (std::size_t x : group) {
        if (x == keep) continue;
        SlotRef& l = refs_[x];
        l.loser = true;
        losers_.insert(l.slot);
        const uint64_t w = slot_at(l.slot)->load(std::memory_order_relaxed);
        LogSeg& lg = logs_[l.log];
        lg.refs -= rec_of(w)->size();
        const std::string where = where_slot(l.seg, l.slot);
        add({"duplicate_key", ProblemKind::kCorruption, where,
             fmt::format("key \"{}\" (version {:#x}) is also in {} (version {:#x}, kept)", printable(key), version(x),
                         where_slot(refs_[keep].seg, refs_[keep].slot), version(keep)),
             0, true, "dead tombstone on this slot (the kept slot holds the newer version)"});
        deaden_.push_back({l.slot, false, fmt::format("{}: duplicate of key \"{}\"", where, printable(key))});
      }
    }
    i = end;
  }
  // Unreachable survivors.
  for (const SlotRef& x : refs_) {
    if (x.loser || x.reach == Reach::kOk) continue;
    const uint64_t w = slot_at(x.slot)->load(std::memory_order_relaxed);
    const std::string key = printable(rec_of(w)->key());
    const unsigned g = static_cast<unsigned>(dir_->depth);
    const uint64_t j = index::dir_index(x.hash, g);
    const uint64_t home = dir_->seg[j].load(std::memory_order_relaxed);
    Problem p{"", ProblemKind::kCorruption, where_slot(x.seg, x.slot), "", 0, true, ""};
    switch (x.reach) {
      case Reach::kWrongSegment:
        p.cls = "wrong_segment";
        p.what = fmt::format("key \"{}\" hashes to directory entry {}, which names table segment {:#x}, not this one: "
                             "lookups never find it",
                             key, j, home);
        break;
      case Reach::kOffProbe:
        p.cls = "off_probe";
        p.what = fmt::format("key \"{}\" is in none of its {} probe slots: lookups never find it", key,
                             index::kProbeSlots);
        break;
      case Reach::kBehindEmpty:
        p.cls = "behind_empty";
        p.what = fmt::format("key \"{}\" sits behind an empty slot of its probe sequence: lookups stop there", key);
        break;
      case Reach::kTag:
        p.cls = "tag_mismatch";
        p.what = fmt::format("key \"{}\": tag bits {:#x} differ from the key's tag {:#x}, so lookups skip it", key,
                             slot::tag(w), slot::tag_of(x.hash));
        break;
      case Reach::kOk: break;
    }
    if (relocation_target(x.slot, x.hash) == 0) {
      p.repairable = false;
      p.repair = fmt::format("none: table segment {:#x} has no empty slot in the key's probe sequence", home);
    } else {
      p.repair = x.reach == Reach::kTag ? "tag rewritten in place"
                                        : fmt::format("entry moved to the first free (empty or dead) slot of its "
                                                      "probe sequence in table segment {:#x}",
                                                      home);
      relocate_.push_back(x.slot);
    }
    add(std::move(p));
  }
}

void Checker::check_log_heads() {
  for (unsigned w = 0; w < index::kMaxWorkers; ++w) {
    const uint64_t hd = iroot_->log_heads[w];
    if (hd == 0) continue;
    auto it = std::find_if(logs_.begin(), logs_.end(), [&](const LogSeg& l) { return l.hdr == hd; });
    if (it != logs_.end()) {
      it->head = true;
      continue;
    }
    add({"bad_log_head", ProblemKind::kCorruption, fmt::format("index root log_heads[{}]", w),
         fmt::format("names {:#x}, which is not a log segment", hd), 0, true,
         "head cleared (the worker starts a new log segment on its next write)"});
    bad_heads_.push_back(w);
  }
}

void Checker::check_orphans() {
  for (const auto& [start, obj] : tables_) {
    if (named_tables_.count(start) != 0) continue;
    r_.orphan_table_segments.count++;
    r_.orphan_table_segments.bytes += obj.second;
    add({"orphan_table_segment", ProblemKind::kLeak, fmt::format("table segment {:#x}", start),
         "no directory entry names it (a crash during a split leaves this; the index also frees it at its next open)",
         obj.second, true, "freed"});
    frees_.push_back({obj.first, obj.second, "orphaned table segment"});
  }
  const uint64_t doff = iroot_ != nullptr ? iroot_->dir.load(std::memory_order_relaxed) : 0;
  for (const auto& [off, size] : dirs_) {
    if (off == doff) continue;
    r_.orphan_directories.count++;
    r_.orphan_directories.bytes += size;
    add({"orphan_directory", ProblemKind::kLeak, fmt::format("directory {:#x}", off),
         "the index root does not name it (a crash after a directory doubling leaves this)", size, true, "freed"});
    frees_.push_back({off, size, "orphaned directory"});
  }
  for (const auto& [off, size] : iroots_) {
    if (off == p_.root()->index_root) continue;
    r_.orphan_index_roots.count++;
    r_.orphan_index_roots.bytes += size;
    add({"orphan_index_root", ProblemKind::kLeak, fmt::format("index root object {:#x}", off),
         "the root header does not name it", size, true, "freed"});
    frees_.push_back({off, size, "orphaned index root"});
  }
}

// The list of every log segment (IndexRoot::log_chain, linked through
// SegmentHeader::user[2]; index/log_chain.h) is exact in every state, after
// a crash too, and every open trusts it instead of enumerating objects: a
// chain that misses a segment hides it from the crash repair (its records'
// keys would be dropped) and the cleaner, one that names a freed segment
// would register it again. Absent (0: a pool an older build opened last) is
// no problem: the next open enumerates and rebuilds it.
void Checker::check_log_chain() {
  if (iroot_ == nullptr || (iroot_->log_chain & 1) == 0) return;
  std::unordered_set<uint64_t> logs, seen;
  for (const LogSeg& l : logs_) logs.insert(l.hdr);
  std::string why;
  for (uint64_t off = iroot_->log_chain & ~uint64_t{1}; off != 0 && why.empty();) {
    if (logs.count(off) == 0) {
      why = fmt::format("names {:#x}, which is not a log segment", off);
    } else if (!seen.insert(off).second) {
      why = fmt::format("loops back to log segment {:#x}", off);
    } else {
      off = at<const pmem::SegmentHeader>(off)->user[2];
    }
  }
  if (why.empty() && seen.size() != logs_.size()) {
    why = fmt::format("lists {} of the {} log segments", seen.size(), logs_.size());
  }
  if (why.empty()) return;
  bad_chain_ = true;
  add({"bad_log_chain", ProblemKind::kCorruption, "index root log_chain", why, 0, true,
       "chain rebuilt from the log segments"});
}

// Bytes appended to a log segment: up to the first record that is not valid
// (the cleaner's rule after a crash).
uint64_t Checker::walk_tail(const LogSeg& l) const noexcept {
  const uint64_t limit = l.hi - l.lo;
  uint64_t pos = 0;
  while (pos + sizeof(RecordHeader) <= limit) {
    const auto* r = at<const RecordHeader>(l.lo + pos);
    if (!index::record_valid(r, limit - pos)) break;
    pos += r->size();
  }
  return pos;
}

void Checker::check_logs() {
  for (LogSeg& l : logs_) {
    const auto* h = at<const pmem::SegmentHeader>(l.hdr);
    const uint64_t hinted = h->user[1];
    // A clean index close wrote exact tails into the headers (user[1]).
    const bool exact = iroot_ != nullptr && iroot_->clean == 1 && hinted <= l.hi - l.lo;
    uint64_t tail = exact ? hinted : walk_tail(l);
    tail = std::max(tail, l.ref_end);
    r_.log_bytes += tail;
    // With an index whose directory could not be read, no slot was scanned:
    // nothing can be called dead then.
    const bool slots_known = dir_ != nullptr || p_.root()->index_root == 0;
    if (l.refs == 0 && !l.head && slots_known) {
      r_.dead_log_segments.count++;
      r_.dead_log_segments.bytes += l.obj_size;
      add({"dead_log_segment", ProblemKind::kLeak, fmt::format("log segment {:#x} (worker {})", l.hdr, h->owner),
           fmt::format("no slot names any of its {} record bytes (the cleaner would free it)", tail), l.obj_size,
           true, "freed"});
      frees_.push_back({l.obj_off, l.obj_size, "dead log segment", l.hdr});
    } else if (tail > l.refs) {
      r_.dead_record_bytes += tail - l.refs;
    }
  }
}

// ---- repair ----
//
// Order (each step's effects are durable before the next begins):
//  R0  IndexRoot::clean = 0 if any slot will change which record a key has
//  R1  leftovers: dirty and moved bits cleared, segment states reset
//  R2  dead tombstones on slots with unreadable records and duplicate losers
//  R3  unreachable entries moved (or retagged) to where lookups look
//  R4  log heads that name no log segment cleared; the log segment list
//      (IndexRoot::log_chain) rebuilt when wrong
//  R5  leaked objects freed, one transaction each (a log segment unlinked
//      from the list in its transaction)
// Re-running the whole repair after a crash anywhere finishes it: every step
// is derived again from what is on media, and each intermediate state is one
// the check accepts or repairs the same way (see each step).
void Checker::repair(RepairReport* rr) {
  const pmem::Persister& ps = p_.persister();
  auto action = [&](std::string a) {
    ++rr->action_count;
    if (rr->actions.size() < CheckReport::kMaxListed) rr->actions.push_back(std::move(a));
  };
  if (structural_) return;  // the directory is not trustworthy: change nothing

  // R0: the index's key count and log tails (IndexRoot::clean == 1) stop being
  // exact once a slot changes here; clearing the flag first makes the next
  // open recount, whatever step a crash interrupts.
  if (iroot_ != nullptr && iroot_->clean != 0 && (!deaden_.empty() || !relocate_.empty())) {
    iroot_->clean = 0;
    ps.persist(&iroot_->clean, sizeof(iroot_->clean));
    action("index root marked not clean (the next open recounts keys and live bytes)");
  }

  // R1: leftovers. Each cleared bit is one 8-byte store; a crash leaves any
  // subset of them cleared, and both states of each bit are legal (a dirty
  // bit only makes a reader write the line back; a moved bit in a segment
  // the directory names is cleared by its crash repair at the next open, as
  // are states). One fence at the end.
  uint64_t cleared = 0;
  for (uint64_t soff : scanned_) {
    auto* s = at<TableSegment>(soff);
    if (s->state.load(std::memory_order_relaxed) != index::kSegNormal) {
      s->state.store(index::kSegNormal, std::memory_order_relaxed);
      ps.flush_nodrain(s, kCacheLine);
      ++cleared;
    }
    for (auto& b : s->buckets) {
      bool touched = false;
      for (auto& a : b.slots) {
        const uint64_t w = a.load(std::memory_order_relaxed);
        if ((w & (slot::kDirty | slot::kMoved)) == 0) continue;
        cleared += (slot::is_dirty(w) ? 1 : 0) + (slot::is_moved(w) ? 1 : 0);
        a.store(w & ~(slot::kDirty | slot::kMoved), std::memory_order_relaxed);
        touched = true;
      }
      if (touched) ps.flush_nodrain(&b, sizeof(b));
    }
  }
  ps.fence();  // R1 durable
  if (cleared != 0) action(fmt::format("cleared {} leftover dirty/moved bits and segment states", cleared));
  rr->leftovers_cleared = cleared;

  // R2: dead tombstones. A dead tombstone occupies its slot like any entry
  // (T1/T2 of table.h hold: keys behind it stay reachable) and names no
  // record. A crash leaves each slot old or dead: the old ones are found
  // again by the next check (same record, same verdict; for duplicates the
  // same keeper, as the choice is deterministic).
  for (const Deaden& d : deaden_) {
    slot_at(d.slot)->store(slot::kDead, std::memory_order_relaxed);
    ps.flush_nodrain(slot_at(d.slot), sizeof(uint64_t));
    if (d.key_lost) ++rr->keys_lost;
    action("dead tombstone: " + d.what);
  }
  ps.fence();  // R2 durable
  rr->repaired += deaden_.size();

  // R3: relocation. First the entry is written where a lookup finds it (an
  // empty or dead slot, so no reader or key depends on it) and made durable, then the
  // old slot becomes a dead tombstone. A crash between the two leaves the
  // same record in two slots, one of them reachable: the next check reports
  // a duplicate and keeps the reachable one (equal versions), which finishes
  // the move. Retagging in place is one 8-byte store.
  for (uint64_t so : relocate_) {
    const uint64_t w = slot_at(so)->load(std::memory_order_relaxed);
    const uint64_t h = hash_key(rec_of(w)->key());
    const uint64_t target = relocation_target(so, h);
    if (target == 0) {
      rr->errors.push_back(fmt::format("slot {:#x}: no empty slot left in the key's probe sequence", so));
      continue;
    }
    const uint64_t fixed = slot::make(slot::rec_off(w), slot::tag_of(h), slot::is_tombstone(w));
    slot_at(target)->store(fixed, std::memory_order_relaxed);
    ps.persist(slot_at(target), sizeof(uint64_t));  // the reachable copy durable first
    if (target != so) {
      slot_at(so)->store(slot::kDead, std::memory_order_relaxed);
      ps.persist(slot_at(so), sizeof(uint64_t));
      action(fmt::format("moved key \"{}\" from slot {:#x} to slot {:#x}", printable(rec_of(w)->key()), so, target));
    } else {
      action(fmt::format("retagged key \"{}\" in slot {:#x}", printable(rec_of(w)->key()), so));
    }
    ++rr->repaired;
  }

  // R4: a log head naming no log segment is cleared with its tail in one
  // transaction (all or nothing); the worker then starts a fresh segment.
  for (unsigned w : bad_heads_) {
    Status s = p_.transact([&](pmem::Tx& tx) {
      tx.set(&iroot_->log_heads[w], uint64_t{0});
      tx.set(&iroot_->log_tails[w], ~uint64_t{0});
    });
    if (!s.is_ok()) {
      rr->errors.push_back(fmt::format("clearing log_heads[{}]: {}", w, s.to_string()));
      continue;
    }
    action(fmt::format("cleared log_heads[{}]", w));
    ++rr->repaired;
  }

  // R4b: a wrong log segment list is rebuilt from every log segment found
  // (those R5 frees included: each is unlinked in its own free's
  // transaction). rebuild_log_chain clears the list first and sets it last,
  // so a crash leaves it absent (the next open enumerates and rebuilds it)
  // or exact, never partial.
  if (iroot_ != nullptr && bad_chain_) {
    std::vector<uint64_t> hdrs;
    for (const LogSeg& l : logs_) hdrs.push_back(l.hdr);
    index::rebuild_log_chain(p_, iroot_, hdrs);
    action(fmt::format("rebuilt the index root's log segment list ({} log segments)", hdrs.size()));
    ++rr->repaired;
  }

  // R5: frees, one libpmemobj transaction each: a crash rolls the one in
  // flight back, and the next run finds that object still leaked and frees
  // it. Nothing durable names any of them (orphans by definition; a dead
  // log segment's last naming slots became dead tombstones in R2, fenced;
  // log heads are never freed here) but the log segment list, from which a
  // log segment is unlinked in the transaction that frees it.
  pmem::SegmentAllocator alloc(p_);
  const uint64_t uuid = pmemobj_oid(p_.root()).pool_uuid_lo;
  const std::size_t max_chain = logs_.size() + 1;
  for (const FreeObj& f : frees_) {
    auto unlink = [&](pmem::Tx& tx) {
      if (iroot_ != nullptr) (void)index::unlink_log_segment_in_tx(p_, tx, iroot_, f.log_hdr, max_chain);
    };
    Status s = f.log_hdr != 0 ? alloc.release(pmem::POff<pmem::SegmentHeader>(f.log_hdr), unlink)
                              : p_.transact([&](pmem::Tx& tx) { tx.free(PMEMoid{uuid, f.obj_off}); });
    if (!s.is_ok()) {
      rr->errors.push_back(fmt::format("freeing {} {:#x}: {}", f.what, f.obj_off, s.to_string()));
      continue;
    }
    action(fmt::format("freed {} {:#x} ({} bytes)", f.what, f.obj_off, f.bytes));
    rr->bytes_freed += f.bytes;
    ++rr->repaired;
  }
}

// Opens the pool for a check or repair; the caller closes it "as found".
// The trial open in a child (pmem/open_probe.h) makes a pool that would crash
// or hang libpmemobj an error, not a dead or stuck ferrite-check.
StatusOr<std::unique_ptr<pmem::Pool>> open_for_check(const std::string& path) {
  return pmem::Pool::open(path, {.probe_in_child = true});
}

}  // namespace

StatusOr<CheckReport> check_pool(const std::string& path) {
  auto pool = open_for_check(path);
  if (!pool) return pool.status();
  // Leave the clean flag as found: checking is not a crash (Pool::open
  // cleared it; the close sets it again).
  if ((*pool)->opened_after_clean_shutdown()) (*pool)->mark_clean_on_close();
  CheckReport r;
  Checker c(**pool, &r);
  FERRITE_RETURN_IF_ERROR(c.run());
  return r;
}

StatusOr<RepairReport> repair_pool(const std::string& path) {
  RepairReport rr;
  {
    auto pool = open_for_check(path);
    if (!pool) return pool.status();
    if ((*pool)->opened_after_clean_shutdown()) (*pool)->mark_clean_on_close();
    Checker c(**pool, &rr.before);
    FERRITE_RETURN_IF_ERROR(c.run());
    if (!rr.before.ok() || rr.before.leftovers() != 0) c.repair(&rr);
  }
  auto after = check_pool(path);
  if (!after) return after.status();
  rr.after = std::move(*after);
  return rr;
}

int exit_code(const CheckReport& r) noexcept { return r.ok() ? 0 : 1; }

int exit_code(const RepairReport& r) noexcept {
  if (!r.after.ok()) return 1;
  return r.before.ok() ? 0 : 3;
}

std::string json_escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (u < 0x20 || u >= 0x7f) {
          o += fmt::format("\\u{:04x}", u);
        } else {
          o += c;
        }
    }
  }
  return o;
}

namespace {

// The index figures of a report: "name value" lines in the text form, the
// "index" object in the JSON form.
stats::Samples index_figures(const CheckReport& r) {
  auto g = [](const char* name, const char* help, uint64_t v) {
    return stats::Sample{name, stats::Kind::kGauge, help, 0, v};
  };
  return {g("global_depth", "directory global depth", r.global_depth),
          g("table_segments", "distinct table segments the directory names", r.table_segments),
          g("keys", "slots naming a live (or expired) value", r.keys),
          g("tombstones", "deleted keys whose slot still names their record", r.tombstones),
          g("dead_tombstones", "slots that name no record", r.dead_tombstones),
          g("log_bytes", "bytes appended to log segments", r.log_bytes),
          g("referenced_bytes", "bytes of records live keys point at", r.referenced_bytes),
          g("unreferenced_bytes", "unreferenced bytes inside log segments in use", r.dead_record_bytes)};
}

}  // namespace

std::string to_string(const CheckReport& r) {
  std::string s = to_string(r.pool);
  s += stats::render_native(index_figures(r));
  s += fmt::format("leftover dirty_bits {}\nleftover moved_bits {}\nleftover segment_states {}\n", r.dirty_bits,
                   r.moved_bits, r.segment_states);
  auto leak = [&](const char* name, const SpaceClass& c) {
    s += fmt::format("leaked {} {} ({} bytes)\n", name, c.count, c.bytes);
  };
  leak("orphan_table_segments", r.orphan_table_segments);
  leak("orphan_directories", r.orphan_directories);
  leak("orphan_index_roots", r.orphan_index_roots);
  leak("unknown_objects", r.unknown_objects);
  leak("unowned_segments", r.unowned_segments);
  leak("dead_log_segments", r.dead_log_segments);
  s += fmt::format("problems {} ({} not repairable)\n", r.problem_count, r.unrepairable);
  for (const auto& p : r.problems) {
    s += fmt::format("problem [{}] {}: {}; repair: {}\n", p.cls, p.where, p.what, p.repair);
  }
  if (r.problems.size() < r.problem_count) {
    s += fmt::format("({} more problems not listed)\n", r.problem_count - r.problems.size());
  }
  s += r.ok() ? "result consistent\n" : "result problems found\n";
  return s;
}

std::string to_string(const RepairReport& r) {
  std::string s = "== before repair\n" + to_string(r.before);
  s += "== repair\n";
  for (const auto& a : r.actions) s += "repair: " + a + "\n";
  if (r.actions.size() < r.action_count) s += fmt::format("({} more actions not listed)\n", r.action_count - r.actions.size());
  for (const auto& e : r.errors) s += "repair failed: " + e + "\n";
  s += fmt::format("repaired {} of {} problems; keys lost {}; leftovers cleared {}; bytes freed {}\n", r.repaired,
                   r.before.problem_count, r.keys_lost, r.leftovers_cleared, r.bytes_freed);
  s += "== after repair\n" + to_string(r.after);
  return s;
}

namespace {

std::string json_body(const CheckReport& r) {
  const PoolReport& p = r.pool;
  std::string s = fmt::format(
      "\"pool\":{{\"format\":\"{}.{}\",\"pool_size\":{},\"segment_size\":{},\"clean_shutdown\":{},\"open_count\":{},"
      "\"log_segments\":{},\"other_segments\":{},\"has_index\":{},\"allocated_bytes\":{}}},",
      p.format_major, p.format_minor, p.pool_size, p.segment_size, p.clean_shutdown, p.open_count, p.log_segments,
      p.other_segments, p.has_index, p.allocated_bytes);
  s += "\"index\":" + stats::render_json(index_figures(r)) + ",";
  s += fmt::format("\"leftovers\":{{\"dirty_bits\":{},\"moved_bits\":{},\"segment_states\":{}}},", r.dirty_bits,
                   r.moved_bits, r.segment_states);
  auto leak = [](const char* name, const SpaceClass& c) {
    return fmt::format("\"{}\":{{\"count\":{},\"bytes\":{}}}", name, c.count, c.bytes);
  };
  s += "\"leaks\":{" + leak("orphan_table_segments", r.orphan_table_segments) + "," +
       leak("orphan_directories", r.orphan_directories) + "," + leak("orphan_index_roots", r.orphan_index_roots) +
       "," + leak("unknown_objects", r.unknown_objects) + "," + leak("unowned_segments", r.unowned_segments) + "," +
       leak("dead_log_segments", r.dead_log_segments) + "},";
  s += fmt::format("\"problem_count\":{},\"unrepairable\":{},\"problem_classes\":{{", r.problem_count, r.unrepairable);
  bool first = true;
  for (const auto& [cls, n] : r.problem_classes) {
    s += fmt::format("{}\"{}\":{}", first ? "" : ",", cls, n);
    first = false;
  }
  s += "},\"problems\":[";
  first = true;
  for (const auto& pr : r.problems) {
    s += fmt::format(
        "{}{{\"class\":\"{}\",\"kind\":\"{}\",\"where\":\"{}\",\"what\":\"{}\",\"bytes\":{},\"repairable\":{},"
        "\"repair\":\"{}\"}}",
        first ? "" : ",", pr.cls, pr.kind == ProblemKind::kLeak ? "leak" : "corruption", json_escape(pr.where),
        json_escape(pr.what), pr.bytes, pr.repairable, json_escape(pr.repair));
    first = false;
  }
  s += "]";
  return s;
}

}  // namespace

std::string to_json(const CheckReport& r) {
  return fmt::format("{{{},\"ok\":{},\"exit_code\":{}}}", json_body(r), r.ok(), exit_code(r));
}

std::string to_json(const RepairReport& r) {
  std::string s = "{\"before\":{" + json_body(r.before) + "},\"repair\":{\"actions\":[";
  for (std::size_t i = 0; i < r.actions.size(); ++i) s += (i ? ",\"" : "\"") + json_escape(r.actions[i]) + "\"";
  s += "],\"errors\":[";
  for (std::size_t i = 0; i < r.errors.size(); ++i) s += (i ? ",\"" : "\"") + json_escape(r.errors[i]) + "\"";
  s += fmt::format("],\"action_count\":{},\"repaired\":{},\"keys_lost\":{},\"leftovers_cleared\":{},\"bytes_freed\":{}}},",
                   r.action_count, r.repaired, r.keys_lost, r.leftovers_cleared, r.bytes_freed);
  s += "\"after\":{" + json_body(r.after) + fmt::format("}},\"ok\":{},\"exit_code\":{}}}", r.after.ok(), exit_code(r));
  return s;
}

}  // namespace ferrite::recovery
