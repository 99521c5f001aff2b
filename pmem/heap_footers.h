// Rebuilds libpmemobj's huge-block footers after open (work-around for a
// libpmemobj 1.12 crash-consistency bug).
//
// libpmemobj marks the last chunk of a multi-chunk ("huge") block with a
// footer that names the block's first chunk; a free() finds its left
// neighbour through that footer and merges with it when it is free. Footers
// are written without a flush ("recreated on open"), but 1.12 only recreates
// the footers of *used* blocks when it first walks a zone. After a power
// failure the footer of a *free* block can be one that an earlier heap state
// flushed by sharing a cache line with a persisted header: it then names a
// free block further left, and the next free() of the right neighbour merges
// across the used blocks in between (the heap hands out live memory again, or
// fails with "heap: invalid chunk type"). Ferrite's power-failure simulator
// found it (docs/durability.md, bug 4); DAOS's PMDK fork fixed it the same way
// (daos-stack/pmdk#24: write footers for every huge block on chunk reinit).
//
// rebuild_heap_footers() walks every initialized zone's chunk headers and
// writes the footer of every free and used huge block from its header. It must
// run right after pmemobj_open, before any allocation or free. Footers are
// hints derived from the headers, so nothing is flushed: a later crash leaves
// at worst stale footers again, and the next open rebuilds them.
#pragma once

#include <cstddef>
#include <string>

#include <libpmemobj.h>

namespace ferrite::pmem {

struct FooterRebuild {
  bool layout_known = false;  // false: the heap did not look like libpmemobj 1.x; nothing written
  std::size_t zones = 0;      // initialized zones walked
  std::size_t blocks = 0;     // huge blocks (free or used) seen
  std::size_t rewritten = 0;  // footers whose stored value differed from the rebuilt one
  std::string why;            // when !layout_known: what did not match
};

// `pool_size` bounds the walk (the mapped length of the pool file).
FooterRebuild rebuild_heap_footers(PMEMobjpool* pop, std::size_t pool_size) noexcept;

}  // namespace ferrite::pmem
