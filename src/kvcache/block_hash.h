// Chained content hashes of full cache blocks, for prefix caching: a block's hash covers its
// tokens and its parent's hash, so equal hashes mean equal whole prefixes (up to collisions,
// which BlockPool::Lookup rules out by comparing tokens).
#pragma once

#include <cstdint>
#include <span>

#include "kvcache/kv_spec.h"

namespace kvc {

// Hash of the empty prefix for a cache configuration: K/V computed under another shape, element
// type or block size can never be reused, so they start from another seed.
uint64_t BlockHashSeed(const KVSpec& spec, int32_t block_size);

// Hash of a full block of `tokens` following a prefix whose hash is `parent`.
uint64_t ChainBlockHash(uint64_t parent, std::span<const int32_t> tokens);

}  // namespace kvc
