#include "kvcache/contiguous_kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "quant/quantize.h"

namespace kvc {

ContiguousKVCache::ContiguousKVCache(const KVSpec& spec, Options options)
    : spec_(spec), options_(options), k_(spec.n_layers), v_(spec.n_layers) {
  Resize(options_.growable ? std::min(options_.initial_tokens, spec_.max_tokens) : spec_.max_tokens);
}

void ContiguousKVCache::Resize(int32_t capacity) {
  const size_t row = spec_.RowBytes();
  const size_t old_head = static_cast<size_t>(capacity_) * row;
  const size_t new_head = static_cast<size_t>(capacity) * row;
  for (auto* bufs : {&k_, &v_}) {
    for (auto& buf : *bufs) {
      std::vector<uint8_t> grown(new_head * spec_.n_kv_heads);
      for (int32_t h = 0; h < spec_.n_kv_heads && size_ > 0; ++h) {
        std::memcpy(grown.data() + h * new_head, buf.data() + h * old_head, size_ * row);
      }
      buf.swap(grown);
    }
  }
  capacity_ = capacity;
}

Status ContiguousKVCache::Reserve(int32_t n) {
  const int64_t need = static_cast<int64_t>(size_) + n;
  if (need > spec_.max_tokens) {
    return OutOfRange("KV cache full: " + std::to_string(need) + " tokens needed, capacity " +
                      std::to_string(spec_.max_tokens));
  }
  if (need <= capacity_) return Status::Ok();
  int64_t cap = std::max<int64_t>(capacity_, 1);
  while (cap < need) cap *= 2;
  try {
    Resize(static_cast<int32_t>(std::min<int64_t>(cap, spec_.max_tokens)));
  } catch (const std::bad_alloc&) {
    return OutOfMemory("cannot grow the KV cache to " + std::to_string(cap) + " tokens");
  }
  return Status::Ok();
}

void ContiguousKVCache::Write(int32_t layer, int32_t pos, int32_t n, const float* k,
                              const float* v) {
  KVC_CHECK(pos >= 0 && pos + n <= capacity_ && layer >= 0 && layer < spec_.n_layers);
  const size_t row = spec_.RowBytes();
  const size_t head = static_cast<size_t>(capacity_) * row;
  const int32_t hd = spec_.head_dim;
  for (int32_t t = 0; t < n; ++t) {
    for (int32_t h = 0; h < spec_.n_kv_heads; ++h) {
      const size_t off = h * head + static_cast<size_t>(pos + t) * row;
      const size_t src = (static_cast<size_t>(t) * spec_.n_kv_heads + h) * hd;
      QuantizeRow(spec_.type, k + src, k_[layer].data() + off, hd);
      QuantizeRow(spec_.type, v + src, v_[layer].data() + off, hd);
    }
  }
}

void ContiguousKVCache::Commit(int32_t new_size) {
  KVC_CHECK(new_size >= 0 && new_size <= capacity_);
  size_ = new_size;
}

KVView ContiguousKVCache::View(int32_t layer, int32_t n_tokens) const {
  KVC_CHECK(n_tokens <= capacity_);
  KVView view;
  view.type = spec_.type;
  view.n_tokens = n_tokens;
  view.block_size = std::max(capacity_, 1);
  view.block_table = block_table_;
  view.k = k_[layer].data();
  view.v = v_[layer].data();
  view.row_bytes = spec_.RowBytes();
  view.head_stride = static_cast<size_t>(capacity_) * view.row_bytes;
  view.block_stride = view.head_stride * spec_.n_kv_heads;
  return view;
}

void ContiguousKVCache::Truncate(int32_t n) {
  KVC_CHECK(n >= 0 && n <= size_);
  size_ = n;
}

size_t ContiguousKVCache::BytesAllocated() const {
  return 2ull * spec_.n_layers * spec_.n_kv_heads * capacity_ * spec_.RowBytes();
}

}  // namespace kvc
