#include "kvcache/paged_kv_cache.h"

#include <new>

#include "quant/quantize.h"

namespace kvc {

PagedKVPool::PagedKVPool(const KVSpec& spec, int32_t block_size, int32_t num_blocks)
    : spec_(spec),
      block_size_(block_size),
      block_stride_(static_cast<size_t>(spec.n_kv_heads) * block_size * spec.RowBytes()),
      blocks_(num_blocks) {}

Result<std::shared_ptr<PagedKVPool>> PagedKVPool::Create(const KVSpec& spec, int32_t block_size,
                                                         int32_t num_blocks) {
  if (block_size <= 0 || num_blocks <= 0) {
    return InvalidArgument("paged KV cache needs a positive block size and block count");
  }
  std::shared_ptr<PagedKVPool> pool(new PagedKVPool(spec, block_size, num_blocks));
  const size_t bytes = pool->block_stride_ * num_blocks;
  for (int32_t l = 0; l < spec.n_layers; ++l) {
    // Default-initialized (not zeroed): pages are touched only when blocks are written.
    pool->k_.emplace_back(new (std::nothrow) uint8_t[bytes]);
    pool->v_.emplace_back(new (std::nothrow) uint8_t[bytes]);
    if (!pool->k_.back() || !pool->v_.back()) {
      return OutOfMemory("cannot allocate the KV block pool (" +
                         std::to_string(pool->BytesTotal() >> 20) + " MiB)");
    }
  }
  return pool;
}

PagedKVCache::PagedKVCache(std::shared_ptr<PagedKVPool> pool) : pool_(std::move(pool)) {}

PagedKVCache::~PagedKVCache() { Truncate(0); }

Status PagedKVCache::Reserve(int32_t n) {
  const int64_t need = static_cast<int64_t>(size_) + n;
  if (need > spec().max_tokens) {
    return OutOfRange("KV cache full: " + std::to_string(need) + " tokens needed, capacity " +
                      std::to_string(spec().max_tokens));
  }
  const int32_t bs = pool_->block_size();
  const size_t blocks_needed = static_cast<size_t>((need + bs - 1) / bs);
  const size_t before = table_.size();
  while (table_.size() < blocks_needed) {
    auto id = pool_->blocks().Allocate();
    if (!id) {
      // Leave the cache as it was: give back what this call took.
      while (table_.size() > before) {
        pool_->blocks().Unref(table_.back());
        table_.pop_back();
      }
      return OutOfMemory("KV block pool exhausted: " + std::to_string(blocks_needed - before) +
                         " more blocks of " + std::to_string(bs) + " tokens needed, " +
                         std::to_string(pool_->blocks().num_free()) + " free");
    }
    table_.push_back(*id);
  }
  return Status::Ok();
}

void PagedKVCache::Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) {
  const KVSpec& s = spec();
  const int32_t bs = pool_->block_size();
  KVC_CHECK(pos >= 0 && (pos + n + bs - 1) / bs <= static_cast<int32_t>(table_.size()));
  const size_t row = s.RowBytes();
  const size_t head = static_cast<size_t>(bs) * row;
  uint8_t* kb = pool_->k(layer);
  uint8_t* vb = pool_->v(layer);
  for (int32_t t = 0; t < n; ++t) {
    const int32_t slot = pos + t;
    const BlockId b = table_[slot / bs];
    KVC_CHECK(pool_->blocks().ref_count(b) == 1);  // shared blocks are never written in place
    const size_t base = b * pool_->block_stride() + static_cast<size_t>(slot % bs) * row;
    for (int32_t h = 0; h < s.n_kv_heads; ++h) {
      const size_t src = (static_cast<size_t>(t) * s.n_kv_heads + h) * s.head_dim;
      QuantizeRow(s.type, k + src, kb + base + h * head, s.head_dim);
      QuantizeRow(s.type, v + src, vb + base + h * head, s.head_dim);
    }
  }
}

void PagedKVCache::Commit(int32_t new_size) {
  KVC_CHECK(new_size >= 0 &&
            new_size <= static_cast<int64_t>(table_.size()) * pool_->block_size());
  size_ = new_size;
}

KVView PagedKVCache::View(int32_t layer, int32_t n_tokens) const {
  KVView view;
  view.type = spec().type;
  view.n_tokens = n_tokens;
  view.block_size = pool_->block_size();
  view.block_table = table_.data();
  view.k = pool_->k(layer);
  view.v = pool_->v(layer);
  view.row_bytes = spec().RowBytes();
  view.head_stride = static_cast<size_t>(view.block_size) * view.row_bytes;
  view.block_stride = pool_->block_stride();
  return view;
}

void PagedKVCache::Truncate(int32_t n) {
  KVC_CHECK(n >= 0 && n <= size_);
  const int32_t bs = pool_->block_size();
  const size_t keep = static_cast<size_t>((n + bs - 1) / bs);
  while (table_.size() > keep) {
    pool_->blocks().Unref(table_.back());
    table_.pop_back();
  }
  size_ = n;
}

size_t PagedKVCache::BytesAllocated() const { return table_.size() * pool_->BytesPerBlock(); }

}  // namespace kvc
