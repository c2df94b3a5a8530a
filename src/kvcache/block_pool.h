// BlockPool: bookkeeping of fixed-size cache blocks (ids, reference counts, free list) with no
// tensor storage, so the logic is testable as pure data. Blocks are reference-counted so that
// sequences can share them (prefix reuse, forks).
#pragma once

#include <cstdint>
#include <optional>
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

  // Drops a reference; the block returns to the free list when none remain.
  void Unref(BlockId id);

 private:
  std::vector<int32_t> ref_;    // per block
  std::vector<BlockId> free_;   // stack; top = next to allocate
};

}  // namespace kvc
