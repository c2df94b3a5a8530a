#include "kvcache/prefix_index.h"

#include <algorithm>

#include "kvcache/block_hash.h"

namespace kvc {

PrefixMatch MatchPrefix(const BlockPool& pool, uint64_t seed, int32_t block_size,
                        std::span<const int32_t> tokens) {
  PrefixMatch m;
  if (tokens.empty()) return m;
  const size_t full = (tokens.size() - 1) / block_size;  // leave the last token to compute
  uint64_t parent = seed;
  for (size_t i = 0; i < full; ++i) {
    const auto block = tokens.subspan(i * block_size, block_size);
    const uint64_t h = ChainBlockHash(parent, block);
    const auto id = pool.Lookup(h, block);
    if (!id) break;
    m.blocks.push_back(*id);
    m.hashes.push_back(h);
    parent = h;
  }
  m.tokens = static_cast<int32_t>(m.blocks.size()) * block_size;
  return m;
}

void RegisterFullBlocks(BlockPool& pool, uint64_t seed, int32_t block_size,
                        std::span<const int32_t> tokens, std::span<const BlockId> table,
                        std::vector<uint64_t>* hashes) {
  const size_t full = std::min(table.size(), tokens.size() / block_size);
  for (size_t i = hashes->size(); i < full; ++i) {
    const uint64_t parent = i == 0 ? seed : (*hashes)[i - 1];
    const auto block = tokens.subspan(i * block_size, block_size);
    const uint64_t h = ChainBlockHash(parent, block);
    if (table[i] >= 0) pool.Register(table[i], h, block);
    hashes->push_back(h);
  }
}

}  // namespace kvc
