#include "kvcache/block_pool.h"

#include <algorithm>

#include "core/status.h"

namespace kvc {

BlockPool::BlockPool(int32_t num_blocks)
    : ref_(num_blocks, 0), hash_of_(num_blocks), tokens_(num_blocks), lru_pos_(num_blocks) {
  free_.reserve(num_blocks);
  for (int32_t i = num_blocks - 1; i >= 0; --i) free_.push_back(i);
}

std::optional<BlockId> BlockPool::Allocate() {
  if (free_.empty() && !lru_.empty()) free_.push_back(Evict());
  if (free_.empty()) return std::nullopt;
  const BlockId id = free_.back();
  free_.pop_back();
  ref_[id] = 1;
  return id;
}

void BlockPool::Ref(BlockId id) {
  KVC_CHECK(id >= 0 && id < num_blocks() && ref_[id] > 0);
  ++ref_[id];
}

void BlockPool::Unref(BlockId id) {
  KVC_CHECK(id >= 0 && id < num_blocks() && ref_[id] > 0);
  if (--ref_[id] > 0) return;
  if (hash_of_[id]) {
    lru_pos_[id] = lru_.insert(lru_.end(), id);
  } else {
    free_.push_back(id);
  }
}

BlockId BlockPool::Evict() {
  const BlockId id = lru_.front();
  lru_.pop_front();
  by_hash_.erase(*hash_of_[id]);
  hash_of_[id].reset();
  tokens_[id].clear();
  ++evictions_;
  return id;
}

void BlockPool::Register(BlockId id, uint64_t hash, std::span<const int32_t> tokens) {
  KVC_CHECK(id >= 0 && id < num_blocks() && ref_[id] > 0);
  if (hash_of_[id] || by_hash_.count(hash)) return;
  hash_of_[id] = hash;
  by_hash_[hash] = id;
  tokens_[id].assign(tokens.begin(), tokens.end());
}

void BlockPool::Unregister(BlockId id) {
  KVC_CHECK(id >= 0 && id < num_blocks() && ref_[id] > 0);
  if (!hash_of_[id]) return;
  by_hash_.erase(*hash_of_[id]);
  hash_of_[id].reset();
  tokens_[id].clear();
}

std::optional<BlockId> BlockPool::Lookup(uint64_t hash, std::span<const int32_t> tokens) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const std::vector<int32_t>& held = tokens_[it->second];
  if (!std::equal(held.begin(), held.end(), tokens.begin(), tokens.end())) return std::nullopt;
  return it->second;
}

void BlockPool::Acquire(BlockId id) {
  KVC_CHECK(id >= 0 && id < num_blocks() && hash_of_[id]);
  if (ref_[id] == 0) lru_.erase(lru_pos_[id]);
  ++ref_[id];
}

}  // namespace kvc
