// Paged KV storage (vLLM's PagedAttention layout on a CPU): K/V live in fixed-size blocks from
// one pool shared by all sequences; each sequence maps its positions to blocks through a block
// table, so memory is never fragmented and a sequence grows one block at a time.
#pragma once

#include <memory>
#include <vector>

#include "kvcache/block_pool.h"
#include "kvcache/kv_cache.h"

namespace kvc {

// The shared pool: block bookkeeping plus per-layer storage of
// [num_blocks][kv_heads][block_size][row] for K and for V.
class PagedKVPool {
 public:
  // Allocates num_blocks blocks of `block_size` tokens; fails cleanly when memory is short.
  static Result<std::shared_ptr<PagedKVPool>> Create(const KVSpec& spec, int32_t block_size,
                                                     int32_t num_blocks);

  const KVSpec& spec() const { return spec_; }
  int32_t block_size() const { return block_size_; }
  BlockPool& blocks() { return blocks_; }
  const BlockPool& blocks() const { return blocks_; }

  size_t block_stride() const { return block_stride_; }  // bytes of one block, one layer, K or V
  size_t BytesPerBlock() const { return 2ull * spec_.n_layers * block_stride_; }  // all layers, K+V
  size_t BytesTotal() const { return BytesPerBlock() * blocks_.num_blocks(); }

  uint8_t* k(int32_t layer) { return k_[layer].get(); }
  uint8_t* v(int32_t layer) { return v_[layer].get(); }
  const uint8_t* k(int32_t layer) const { return k_[layer].get(); }
  const uint8_t* v(int32_t layer) const { return v_[layer].get(); }

 private:
  PagedKVPool(const KVSpec& spec, int32_t block_size, int32_t num_blocks);

  KVSpec spec_;
  int32_t block_size_;
  size_t block_stride_;
  BlockPool blocks_;
  std::vector<std::unique_ptr<uint8_t[]>> k_, v_;  // [layer]
};

// One sequence's view of a pool.
class PagedKVCache : public KVCache {
 public:
  explicit PagedKVCache(std::shared_ptr<PagedKVPool> pool);
  ~PagedKVCache() override;

  const KVSpec& spec() const override { return pool_->spec(); }
  int32_t size() const override { return size_; }
  Status Reserve(int32_t n) override;
  void Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) override;
  void Commit(int32_t new_size) override;
  KVView View(int32_t layer, int32_t n_tokens) const override;
  void Truncate(int32_t n) override;
  size_t BytesAllocated() const override;

  const std::vector<BlockId>& block_table() const { return table_; }

 private:
  std::shared_ptr<PagedKVPool> pool_;
  std::vector<BlockId> table_;  // logical block -> physical block
  int32_t size_ = 0;
};

}  // namespace kvc
