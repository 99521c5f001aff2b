// Pool create/open/close with the checks listed in pool.h.
//
// Persist points of creation (crash table):
//  C1  pmemobj_create: file created, libpmemobj header durable, root absent
//  C2  root initialized in one transaction (magic written last in it)
//  - crash before C1 completes: libpmemobj removes nothing; the file may be a
//    partial pool and open reports it as corrupt ("not a complete pool").
//  - crash between C1 and C2: root is absent or zero; open reports
//    "pool was never initialized" instead of guessing.
//  - after C2: a valid empty pool.
#include "pmem/pool.h"

#include <fcntl.h>
#include <libpmem.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/log.h"
#include "pmem/heap_footers.h"
#include "pmem/open_probe.h"
#include "pmem/validate.h"

namespace ferrite::pmem {
namespace {

std::string human_size(std::size_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string parent_dir(const std::string& path) {
  std::filesystem::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

bool is_dir(const std::string& d) {
  struct stat st {};
  return ::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Status pmem_error(std::string_view what, int err) {
  std::string msg(what);
  const char* pm = pmemobj_errormsg();
  if (pm != nullptr && *pm != '\0') {
    msg += ": ";
    msg += pm;
  } else if (err != 0) {
    msg += ": ";
    msg += std::strerror(err);
  }
  switch (err) {
    case ENOMEM:
    case ENOSPC: return Status::no_space(std::move(msg));
    case EEXIST: return Status::already_exists(std::move(msg));
    case ENOENT: return Status::not_found(std::move(msg));
    case EWOULDBLOCK: return Status::busy(std::move(msg));
    default: return Status::io_error(std::move(msg));
  }
}

Pool::Pool(PMEMobjpool* pop, std::string path, std::size_t size)
    : pop_(pop), path_(std::move(path)), size_(size) {}

Pool::~Pool() {
  if (pop_ == nullptr) return;
  if (clean_on_close_ && root_ != nullptr) {
    // P-close: the clean flag is the last thing written; everything the
    // workers acknowledged was fenced before they stopped.
    root_->clean_shutdown = 1;
    persister_.persist(&root_->clean_shutdown, sizeof(root_->clean_shutdown));
  }
  pmemobj_close(pop_);
}

StatusOr<std::unique_ptr<Pool>> Pool::create(const std::string& path, std::size_t size,
                                             std::size_t segment_size) {
  if (size < kMinPoolSize) {
    return Status::invalid_argument(fmt::format("pool size {} ({}) is below the minimum of {}", size,
                                                human_size(size), human_size(kMinPoolSize)));
  }
  if (segment_size < (64u << 10) || (segment_size & (segment_size - 1)) != 0 || segment_size > size / 4) {
    return Status::invalid_argument(fmt::format(
        "segment size {} must be a power of two, at least 64 KiB and at most a quarter of the pool", segment_size));
  }
  const std::string dir = parent_dir(path);
  if (!is_dir(dir)) {
    return Status::not_found(fmt::format("cannot create pool {}: directory {} does not exist", path, dir));
  }
  if (::access(path.c_str(), F_OK) == 0) {
    return Status::already_exists(
        fmt::format("cannot create pool {}: file exists (open it instead, or remove it to start empty)", path));
  }
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0) {
    std::size_t avail = static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < size) {
      return Status::no_space(fmt::format("cannot create pool {}: needs {} but {} has only {} free", path,
                                          human_size(size), dir, human_size(avail)));
    }
  }

  errno = 0;
  PMEMobjpool* pop = pmemobj_create(path.c_str(), kLayoutName, size, 0600);
  if (pop == nullptr) {
    int err = errno;
    Status s = pmem_error(fmt::format("cannot create pool {} of {}", path, human_size(size)), err);
    // O_EXCL inside pmemobj_create means a file left behind is ours.
    if (err != EEXIST) ::unlink(path.c_str());
    return s;
  }

  // C2: initialize the root in one transaction.
  PMEMoid root_oid = pmemobj_root(pop, kRootSize);
  if (OID_IS_NULL(root_oid)) {
    int err = errno;
    pmemobj_close(pop);
    ::unlink(path.c_str());
    return pmem_error(fmt::format("cannot allocate the root object of {}", path), err);
  }
  std::unique_ptr<Pool> pool(new Pool(pop, path, size));
  auto* root = static_cast<RootHeader*>(pmemobj_direct(root_oid));
  Status s = pool->transact([&](Tx& tx) {
    tx.add_range(root, offsetof(RootHeader, reserved));
    root->format_major = kFormatMajor;
    root->format_minor = kFormatMinor;
    root->incompat_features = 0;
    root->compat_features = 0;
    root->pool_size = size;
    root->created_unix_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    root->clean_shutdown = 1;
    root->open_count = 0;
    root->segment_size = segment_size;
    root->segment_seq = 0;
    root->index_root = 0;
    root->magic = kRootMagic;
  });
  if (!s.is_ok()) {
    pool.reset();
    ::unlink(path.c_str());
    return s.with_context("cannot initialize pool " + path);
  }
  pool->attach();
  return pool;
}

StatusOr<std::unique_ptr<Pool>> Pool::open(const std::string& path, const OpenOptions& opts) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      if (!is_dir(parent_dir(path))) {
        return Status::not_found(
            fmt::format("cannot open pool {}: directory {} does not exist", path, parent_dir(path)));
      }
      return Status::not_found(fmt::format("cannot open pool {}: no such file", path));
    }
    return Status::io_error(fmt::format("cannot open pool {}: {}", path, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::invalid_argument(fmt::format("cannot open pool {}: not a regular file", path));
  }
  const auto file_size = static_cast<std::size_t>(st.st_size);
  if (file_size < kMinPoolSize) {
    return Status::corruption(fmt::format(
        "cannot open pool {}: file is {} bytes, smaller than any Ferrite pool ({}); truncated or not a pool",
        path, file_size, human_size(kMinPoolSize)));
  }

  // Permission before content: a pool we may not write is not a corrupt
  // one, and the advice differs (fix the mode or the mount, keep the file).
  if (::access(path.c_str(), R_OK | W_OK) != 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
    return Status::io_error(fmt::format("cannot open pool {}: permission denied ({}); ferrited and ferrite-check "
                                        "need to read and write it",
                                        path, errno == EROFS ? "read-only file system" : "file mode or owner"));
  }
  if (Status v = validate_pool_file(path); !v.is_ok()) {
    if (v.code() != Status::Code::kCorruption) return v;
    return Status::corruption(std::string(v.message()) + "; restore " + path +
                              " from a backup (ferrite-check --repair cannot repair libpmemobj's own metadata)");
  }
  if (opts.probe_in_child) {
    if (Status p = probe_open(path, probe_timeout_from_env()); !p.is_ok()) return p;
  }

  errno = 0;
  PMEMobjpool* pop = pmemobj_open(path.c_str(), kLayoutName);
  if (pop == nullptr) {
    int err = errno;
    std::string pm = pmemobj_errormsg();
    if (err == EACCES || err == EROFS || err == EPERM) {
      return Status::io_error(fmt::format("cannot open pool {}: permission denied ({}); ferrited and ferrite-check "
                                          "need to read and write it",
                                          path, err == EROFS ? "read-only file system" : "file mode or owner"));
    }
    if (err == EWOULDBLOCK || err == EAGAIN) {
      return Status::busy(fmt::format("cannot open pool {}: it is in use by another process", path));
    }
    if (pm.find("layout") != std::string::npos) {
      return Status::incompatible(
          fmt::format("cannot open pool {}: wrong layout (not a Ferrite pool: expected layout \"{}\"): {}", path,
                      kLayoutName, pm));
    }
    return Status::corruption(fmt::format("cannot open pool {}: not a valid pool file, truncated or corrupt (libpmemobj: {})", path,
                                          pm.empty() ? std::strerror(err) : pm));
  }
  // Before anything allocates or frees: libpmemobj 1.12 trusts huge-block
  // footers that a power failure can leave stale (pmem/heap_footers.h).
  const FooterRebuild fr = rebuild_heap_footers(pop, file_size);
  if (fr.layout_known && !fr.why.empty()) {
    // After lane recovery every initialized zone's chunk headers tile it;
    // one that does not is damage libpmemobj would follow into a wild block.
    pmemobj_close(pop);
    return Status::corruption(fmt::format(
        "pool {} is corrupt: libpmemobj heap metadata damaged ({}); restore it from a backup "
        "(ferrite-check --repair cannot repair libpmemobj's own metadata)", path, fr.why));
  }
  if (!fr.layout_known) {
    log_warn("pool {}: huge-block footers not rebuilt ({}); a heap left by a power failure may be damaged by frees",
             path, fr.why);
  } else if (fr.rewritten > 0) {
    log_info("pool {}: rebuilt {} stale libpmemobj block footers of {}", path, fr.rewritten, fr.blocks);
  }
  Status s = check_root(pop, path, file_size);
  if (!s.is_ok()) {
    pmemobj_close(pop);
    return s;
  }
  std::unique_ptr<Pool> pool(new Pool(pop, path, file_size));
  pool->footers_rewritten_ = fr.rewritten;
  pool->attach();
  return pool;
}

StatusOr<std::unique_ptr<Pool>> Pool::open_or_create(const std::string& path, std::size_t size,
                                                     std::size_t segment_size, const OpenOptions& opts) {
  if (::access(path.c_str(), F_OK) == 0) return open(path, opts);
  return create(path, size, segment_size);
}

Status Pool::check_root(PMEMobjpool* pop, const std::string& path, std::size_t file_size) {
  if (pmemobj_root_size(pop) < kRootSize) {
    return Status::corruption(fmt::format(
        "cannot open pool {}: the pool was never initialized (crash during create?); remove it and create again",
        path));
  }
  auto* root = static_cast<RootHeader*>(pmemobj_direct(pmemobj_root(pop, kRootSize)));
  if (root->magic != kRootMagic) {
    return Status::corruption(fmt::format("cannot open pool {}: root header has a bad magic number {:#x}", path,
                                          root->magic));
  }
  if (root->format_major > kFormatMajor) {
    return Status::incompatible(fmt::format(
        "cannot open pool {}: its format version {}.{} is newer than this build's {}.{}; upgrade ferrite", path,
        root->format_major, root->format_minor, kFormatMajor, kFormatMinor));
  }
  if ((root->incompat_features & ~kKnownIncompatFeatures) != 0) {
    return Status::incompatible(
        fmt::format("cannot open pool {}: it uses features this build does not know (incompat bits {:#x})", path,
                    root->incompat_features & ~kKnownIncompatFeatures));
  }
  if (root->pool_size != file_size) {
    return Status::corruption(fmt::format(
        "cannot open pool {}: file is {} bytes but the pool was created with {} (truncated or resized)", path,
        file_size, root->pool_size));
  }
  return Status::ok();
}

void Pool::attach() {
  root_ = static_cast<RootHeader*>(pmemobj_direct(pmemobj_root(pop_, kRootSize)));
  // pmem_is_pmem honours PMEM_IS_PMEM_FORCE=1, the switch for emulated PMEM.
  const bool flushable = pmem_is_pmem(base(), size_) != 0;
  persister_ = Persister(flushable ? Persister::Mode::kFlush : Persister::Mode::kMsync, cpu_flush_insn());
  if (!flushable) {
    log_warn(
        "pool {} is not on persistent memory: every persist goes through msync(2), orders of magnitude slower. "
        "For emulated PMEM on /dev/shm set PMEM_IS_PMEM_FORCE=1",
        path_);
  }
  int stats = POBJ_STATS_ENABLED_BOTH;
  (void)pmemobj_ctl_set(pop_, "stats.enabled", &stats);

  // P-open: the pool is dirty from here until a clean close; a crash now
  // makes the next open run recovery.
  clean_at_open_ = root_->clean_shutdown == 1;
  root_->clean_shutdown = 0;
  root_->open_count += 1;
  persister_.flush_nodrain(&root_->clean_shutdown, sizeof(uint64_t) * 2);
  persister_.fence();
}

std::size_t Pool::allocated_bytes() const noexcept {
  uint64_t v = 0;
  if (pmemobj_ctl_get(pop_, "stats.heap.curr_allocated", &v) != 0) return 0;
  return static_cast<std::size_t>(v);
}

}  // namespace ferrite::pmem
