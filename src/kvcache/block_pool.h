// BlockPool: bookkeeping of fixed-size cache blocks (ids, reference counts, free list) with no
// tensor storage, so the logic is testable as pure data. Blocks are reference-counted so that
// sequences can share them (prefix reuse, forks).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace kvc {

using BlockId = int32_t;

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_used() const { return num_blocks() - num_free(); }
  int32_t ref_count(BlockId id) const { return ref_[id]; }

  // Takes a free block (ref count 1), lowest id first for a deterministic layout; nullopt when
  // the pool is exhausted.
  std::optional<BlockId> Allocate();

  // Adds a reference to an allocated block (sharing).
  void Ref(BlockId id);

  // Drops a reference; the block returns to the free list when none remain (or, if registered
  // under a hash, to the cached LRU).
  void Unref(BlockId id);

  // Blocks Allocate can still hand out: free plus cached-and-unreferenced (evictable).
  int32_t num_available() const { return num_free() + num_evictable(); }
  int32_t num_evictable() const { return static_cast<int32_t>(lru_.size()); }
  // Blocks registered under a hash (referenced or not).
  int32_t num_cached() const { return static_cast<int32_t>(by_hash_.size()); }
  int64_t num_evictions() const { return evictions_; }
  bool is_cached(BlockId id) const { return hash_of_[id].has_value(); }

  // Registers allocated block `id` as holding `tokens` (a full block) under `hash`. A no-op when
  // the block already has a hash or another block holds this one (duplicates stay private).
  void Register(BlockId id, uint64_t hash, std::span<const int32_t> tokens);
  // Forgets the registration of `id` (its content is about to change).
  void Unregister(BlockId id);

  // The block registered under `hash` whose tokens equal `tokens` (verified, so a hash
  // collision is a miss); nullopt otherwise.
  std::optional<BlockId> Lookup(uint64_t hash, std::span<const int32_t> tokens) const;

  // Takes a reference to a registered block, reviving it from the LRU when unreferenced.
  void Acquire(BlockId id);

 private:
  struct Entry {
    uint64_t hash;
    std::vector<int32_t> tokens;
  };
  BlockId Evict();

  std::vector<int32_t> ref_;    // per block
  std::vector<BlockId> free_;   // stack; top = next to allocate
  std::vector<std::optional<uint64_t>> hash_of_;      // per block
  std::unordered_map<uint64_t, BlockId> by_hash_;     // registered blocks
  std::vector<std::vector<int32_t>> tokens_;          // per registered block, for verification
  std::list<BlockId> lru_;                            // cached unreferenced; front = oldest
  std::vector<std::list<BlockId>::iterator> lru_pos_;  // per block, valid when in lru_
  int64_t evictions_ = 0;
};

}  // namespace kvc
