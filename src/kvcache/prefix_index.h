// Prefix caching over a BlockPool: find the cached blocks that hold the longest prefix of a
// token sequence, and register a sequence's newly filled blocks so later requests can reuse them.
// Pure bookkeeping (no tensors), testable with exact block ids.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kvcache/block_pool.h"

namespace kvc {

struct PrefixMatch {
  std::vector<BlockId> blocks;   // cached blocks holding the prefix, in order
  std::vector<uint64_t> hashes;  // their chained hashes
  int32_t tokens = 0;            // blocks.size() * block_size
};

// The longest run of registered full blocks that prefixes `tokens`. It never covers the last
// token: the model must compute at least one token to produce logits. Takes no references.
PrefixMatch MatchPrefix(const BlockPool& pool, uint64_t seed, int32_t block_size,
                        std::span<const int32_t> tokens);

// Registers every full block of `table` that `hashes` does not cover yet, given the `tokens`
// those blocks hold (at least table-full-blocks * block_size of them); appends their hashes.
void RegisterFullBlocks(BlockPool& pool, uint64_t seed, int32_t block_size,
                        std::span<const int32_t> tokens, std::span<const BlockId> table,
                        std::vector<uint64_t>* hashes);

}  // namespace kvc
