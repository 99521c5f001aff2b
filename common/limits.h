// Item size limits shared by every layer: the index stores nothing larger,
// and each protocol derives its own limits from these (proto/native.h,
// proto/memcached.h). Changing one here changes what every front end accepts;
// index/record.h checks at compile time that its fields hold them.
//
// Thread safety: constants only.
#pragma once

#include <cstddef>

namespace ferrite::limits {

inline constexpr std::size_t kMaxKeyLen = 250;        // bytes; memcached's KEY_MAX_LENGTH
inline constexpr std::size_t kMaxValueLen = 1u << 20;  // 1 MiB; memcached's default item_size_max

}  // namespace ferrite::limits
