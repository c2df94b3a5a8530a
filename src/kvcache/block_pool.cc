#include "kvcache/block_pool.h"

#include "core/status.h"

namespace kvc {

BlockPool::BlockPool(int32_t num_blocks) : ref_(num_blocks, 0) {
  free_.reserve(num_blocks);
  for (int32_t i = num_blocks - 1; i >= 0; --i) free_.push_back(i);
}

std::optional<BlockId> BlockPool::Allocate() {
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
  if (--ref_[id] == 0) free_.push_back(id);
}

}  // namespace kvc
