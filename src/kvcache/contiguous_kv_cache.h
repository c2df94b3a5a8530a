// A contiguous cache: per layer, one buffer per K and V laid out [kv_head][capacity][head_dim].
// Either preallocated to the full capacity, or growable: starts small and doubles when full
// (amortized O(1) per token; each growth copies once).
#pragma once

#include <vector>

#include "kvcache/kv_cache.h"

namespace kvc {

class ContiguousKVCache : public KVCache {
 public:
  struct Options {
    bool growable = false;
    int32_t initial_tokens = 256;  // growable only
  };
  ContiguousKVCache(const KVSpec& spec, Options options);

  const KVSpec& spec() const override { return spec_; }
  int32_t size() const override { return size_; }
  Status Reserve(int32_t n) override;
  void Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) override;
  void Commit(int32_t new_size) override;
  KVView View(int32_t layer, int32_t n_tokens) const override;
  void Truncate(int32_t n) override;
  size_t BytesAllocated() const override;

  int32_t capacity() const { return capacity_; }

 private:
  void Resize(int32_t capacity);

  KVSpec spec_;
  Options options_;
  int32_t size_ = 0;
  int32_t capacity_ = 0;
  int32_t block_table_[1] = {0};
  std::vector<std::vector<uint8_t>> k_, v_;  // [layer] -> [kv_head][capacity][row]
};

}  // namespace kvc
