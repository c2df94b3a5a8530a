// Paged layout (vLLM's PagedAttention on a CPU): K/V live in fixed-size blocks from one pool that
// all sequences share; each sequence maps its slots to blocks through a block table, so memory is
// never fragmented, a sequence grows one block at a time, and blocks that leave a sliding window
// go back to the pool.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kvcache/block_pool.h"
#include "kvcache/blocked_kv_cache.h"

namespace kvc {

// The shared pool: block bookkeeping plus per-layer storage, [kv_head][num_blocks][block][row]
// for K and for V (each side in its own format). Heads outermost: the blocks of one sequence,
// allocated in order, make one contiguous stream per head, which is how attention reads them.
class PagedKVPool {
 public:
  // `spec` fixes the formats; blocks hold `block_size` tokens. Fails cleanly without memory.
  static Result<std::shared_ptr<PagedKVPool>> Create(const KVSpec& spec, int32_t block_size,
                                                     int32_t num_blocks);

  const KVSpec& spec() const { return spec_; }
  int32_t block_size() const { return block_size_; }
  BlockPool& blocks() { return blocks_; }
  const BlockPool& blocks() const { return blocks_; }
  // Bytes of one head's part of a block (between a head's consecutive blocks), and between heads.
  size_t head_block_bytes(bool key) const { return (key ? k_stride_ : v_stride_) / spec_.n_kv_heads; }
  size_t head_stride(bool key) const { return head_block_bytes(key) * blocks_.num_blocks(); }
  size_t BytesPerBlock() const { return (k_stride_ + v_stride_) * spec_.n_layers; }  // all layers
  size_t BytesTotal() const { return BytesPerBlock() * blocks_.num_blocks(); }
  uint8_t* base(int32_t layer, bool key) const {
    return storage_ + static_cast<size_t>(layer) * (k_stride_ + v_stride_) * blocks_.num_blocks() +
           (key ? 0 : k_stride_ * blocks_.num_blocks());
  }
  ~PagedKVPool();
  PagedKVPool(const PagedKVPool&) = delete;
  PagedKVPool& operator=(const PagedKVPool&) = delete;

 private:
  PagedKVPool(const KVSpec& spec, int32_t block_size, int32_t num_blocks, size_t k_stride,
              size_t v_stride);

  KVSpec spec_;
  int32_t block_size_;
  size_t k_stride_, v_stride_;
  BlockPool blocks_;
  // [layer][K blocks, then V blocks]: attention streams through it every token, so from
  // kHugePagePoolBytes on it lives in huge pages (mapped_ > 0), below that on the heap.
  static constexpr size_t kHugePagePoolBytes = size_t{32} << 20;
  uint8_t* storage_ = nullptr;
  size_t mapped_ = 0;
  std::unique_ptr<uint8_t[]> heap_;
};

// One sequence's cache in a pool.
class PagedKVCache : public BlockedKVCache {
 public:
  explicit PagedKVCache(std::shared_ptr<PagedKVPool> pool);
  ~PagedKVCache() override;

  const std::vector<BlockId>& table() const { return table_; }
  static constexpr BlockId kReleased = -1;

  // Whether blocks of this spec can be shared between sequences: every token's K/V must live in
  // blocks (no private f32 residual ring) and stay there (no sliding window).
  static bool SupportsSharing(const KVSpec& spec);

  // Starts an empty cache on `blocks`, full blocks already holding the first
  // blocks.size() * block_size tokens (a prefix-cache hit; cached unreferenced blocks are
  // revived). Needs SupportsSharing.
  Status AdoptPrefix(std::span<const BlockId> blocks);

  // A second sequence sharing every block of this one; the first write into a shared partial
  // block copies it (copy-on-write). Needs SupportsSharing.
  Result<std::unique_ptr<PagedKVCache>> Fork() const;

  // Prepare, with copy-on-write: a shared (or hash-registered) block about to receive new slots
  // is replaced by a private copy first.
  Status Reserve(int32_t n) override;

 protected:
  Status EnsureStorage(int32_t stored) override;
  void ReleaseStorageFrom(int32_t stored) override;
  void ReleaseStorageBelow(int32_t first) override;
  int32_t block_size() const override { return pool_->block_size(); }
  const int32_t* block_table() const override { return table_.data(); }
  uint8_t* StorageBase(int32_t layer, bool key) const override { return pool_->base(layer, key); }
  size_t StorageBlockStride(bool key) const override { return pool_->head_block_bytes(key); }
  size_t StorageHeadStride(bool key) const override { return pool_->head_stride(key); }
  size_t StorageBytes() const override;

 private:
  // Makes the block holding slot `slot` private and writable (copy if shared, forget its hash).
  Status MakeWritable(int32_t slot);

  std::shared_ptr<PagedKVPool> pool_;
  std::vector<BlockId> table_;  // logical block -> physical block (kReleased: left the window)
  int32_t held_ = 0;            // blocks currently referenced
};

// Bytes of one block of `block_size` tokens for `spec` (K + V, all layers).
size_t PagedBlockBytes(const KVSpec& spec, int32_t block_size);

}  // namespace kvc
