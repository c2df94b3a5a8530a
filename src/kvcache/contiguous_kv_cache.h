// Contiguous layout: per layer one buffer per side, [kv_head][capacity][row], i.e. a single block
// of `capacity` tokens. Either preallocated to the full capacity, or growable: starts small and
// doubles when full (amortized O(1) per token; each growth copies the used part once).
#pragma once

#include <vector>

#include "kvcache/blocked_kv_cache.h"

namespace kvc {

class ContiguousKVCache : public BlockedKVCache {
 public:
  struct Options {
    bool growable = false;
    int32_t initial_tokens = 16;  // growable only
  };
  ContiguousKVCache(const KVSpec& spec, Options options);

  int32_t capacity() const { return capacity_; }

 protected:
  Status EnsureStorage(int32_t stored) override;
  void ReleaseStorageFrom(int32_t) override {}
  int32_t block_size() const override { return std::max(capacity_, 1); }
  const int32_t* block_table() const override { return &block_table_; }
  uint8_t* StorageBase(int32_t layer, bool key) const override;
  size_t StorageBlockStride(bool key) const override { return SideBlockBytes(key, block_size()); }
  size_t StorageHeadStride(bool key) const override { return HeadBlockBytes(key); }
  size_t StorageBytes() const override;

 private:
  Status Resize(int32_t capacity);
  int32_t RoundCapacity(int64_t tokens) const;

  Options options_;
  int32_t capacity_ = 0;
  int32_t block_table_ = 0;
  std::vector<std::vector<uint8_t>> k_, v_;  // [layer]
};

}  // namespace kvc
