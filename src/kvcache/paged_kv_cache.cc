#include "kvcache/paged_kv_cache.h"

#include <cstring>
#include <new>

#include "core/huge_pages.h"
#include "quant/kv_quant.h"

namespace kvc {
namespace {

// Bytes of one block of one side (all heads) in a layer.
size_t SideStride(const KVSpec& s, bool key, int32_t bs) {
  const KVType t = key ? s.type_k : s.type_v;
  if (!IsQuantized(t)) return static_cast<size_t>(s.n_kv_heads) * bs * s.head_dim * KVGroupBytes(t, 1);
  const int32_t g = key ? s.GroupK() : s.GroupV();
  // Per-token rows and KIVI token groups both cost head_dim x bs / g groups per head.
  return static_cast<size_t>(s.n_kv_heads) * (static_cast<size_t>(bs) * s.head_dim / g) * KVGroupBytes(t, g);
}

}  // namespace

size_t PagedBlockBytes(const KVSpec& spec, int32_t bs) {
  return (SideStride(spec, true, bs) + SideStride(spec, false, bs)) * spec.n_layers;
}

PagedKVPool::PagedKVPool(const KVSpec& spec, int32_t block_size, int32_t num_blocks,
                         size_t k_stride, size_t v_stride)
    : spec_(spec), block_size_(block_size), k_stride_(k_stride), v_stride_(v_stride),
      blocks_(num_blocks) {}

Result<std::shared_ptr<PagedKVPool>> PagedKVPool::Create(const KVSpec& spec, int32_t block_size,
                                                         int32_t num_blocks) {
  if (block_size <= 0 || num_blocks <= 0) {
    return InvalidArgument("paged KV cache needs a positive block size and block count");
  }
  if (spec.KiviKeys() && block_size % spec.group != 0) {
    return InvalidArgument("KIVI keys need a block size (--kv-block " + std::to_string(block_size) +
                           ") that is a multiple of the group size (--kv-group " +
                           std::to_string(spec.group) + ")");
  }
  std::shared_ptr<PagedKVPool> pool(new PagedKVPool(spec, block_size, num_blocks,
                                                    SideStride(spec, true, block_size),
                                                    SideStride(spec, false, block_size)));
  // Not touched here: pages become resident only when blocks are written. Large pools go in huge
  // pages; small ones stay on the heap, which reuses memory between short-lived caches instead of
  // zeroing fresh pages (a 2 MiB page is zeroed whole on first touch).
  if (pool->BytesTotal() >= kHugePagePoolBytes) {
    pool->storage_ = AllocateHugePages(pool->BytesTotal(), &pool->mapped_);
  } else {
    pool->heap_.reset(new (std::nothrow) uint8_t[pool->BytesTotal()]);
    pool->storage_ = pool->heap_.get();
  }
  if (pool->storage_ == nullptr) {
    return OutOfMemory("cannot allocate the KV block pool (" + std::to_string(pool->BytesTotal() >> 20) +
                       " MiB)");
  }
  return pool;
}

PagedKVPool::~PagedKVPool() { FreeHugePages(storage_, mapped_); }

PagedKVCache::PagedKVCache(std::shared_ptr<PagedKVPool> pool)
    : BlockedKVCache(pool->spec()), pool_(std::move(pool)) {
  UseTilesIfPossible(pool_->block_size());
  // The table never outgrows the spec's tokens: growing it a block at a time would reallocate
  // it during decode.
  const int32_t bs = pool_->block_size();
  table_.reserve(static_cast<size_t>((spec().max_tokens + bs - 1) / bs));
}

PagedKVCache::~PagedKVCache() { ReleaseStorageFrom(0); }

Status PagedKVCache::EnsureStorage(int32_t stored) {
  const int32_t bs = pool_->block_size();
  const size_t needed = static_cast<size_t>((stored + bs - 1) / bs);
  const size_t before = table_.size();
  while (table_.size() < needed) {
    auto id = pool_->blocks().Allocate();
    if (!id) {
      while (table_.size() > before) {  // leave the cache as it was
        pool_->blocks().Unref(table_.back());
        table_.pop_back();
        --held_;
      }
      return OutOfMemory("KV block pool exhausted: " + std::to_string(needed - before) +
                         " more blocks of " + std::to_string(bs) + " tokens needed, " +
                         std::to_string(pool_->blocks().num_free()) + " free");
    }
    table_.push_back(*id);
    ++held_;
  }
  return Status::Ok();
}

void PagedKVCache::ReleaseStorageFrom(int32_t stored) {
  const int32_t bs = pool_->block_size();
  const size_t keep = static_cast<size_t>((stored + bs - 1) / bs);
  while (table_.size() > keep) {
    if (table_.back() != kReleased) {
      pool_->blocks().Unref(table_.back());
      --held_;
    }
    table_.pop_back();
  }
}

void PagedKVCache::ReleaseStorageBelow(int32_t first) {
  // Whole blocks whose every slot is below `first` are out of the window for good.
  const int32_t bs = pool_->block_size();
  const size_t drop = std::min(table_.size(), static_cast<size_t>(first / bs));
  for (size_t i = 0; i < drop; ++i) {
    if (table_[i] != kReleased) {
      pool_->blocks().Unref(table_[i]);
      table_[i] = kReleased;
      --held_;
    }
  }
}

bool PagedKVCache::SupportsSharing(const KVSpec& spec) {
  const bool ring = (IsQuantized(spec.type_k) || IsQuantized(spec.type_v)) && spec.residual > 0;
  return !ring && !spec.KiviKeys() && spec.window == 0;
}

Status PagedKVCache::AdoptPrefix(std::span<const BlockId> blocks) {
  if (!SupportsSharing(spec())) return Unsupported("this KV cache configuration cannot share blocks");
  if (size() != 0 || !table_.empty()) return InvalidArgument("AdoptPrefix needs an empty cache");
  const int32_t n = static_cast<int32_t>(blocks.size()) * pool_->block_size();
  if (n > spec().max_tokens) return OutOfRange("shared prefix longer than the cache capacity");
  BlockPool& bp = pool_->blocks();
  for (BlockId id : blocks) {
    if (bp.ref_count(id) == 0) {
      bp.Acquire(id);
    } else {
      bp.Ref(id);
    }
    table_.push_back(id);
    ++held_;
  }
  Commit(n);
  return Status::Ok();
}

Result<std::unique_ptr<PagedKVCache>> PagedKVCache::Fork() const {
  if (!SupportsSharing(spec())) return Unsupported("this KV cache configuration cannot share blocks");
  auto copy = std::make_unique<PagedKVCache>(pool_);
  for (BlockId id : table_) {
    pool_->blocks().Ref(id);
    copy->table_.push_back(id);
    ++copy->held_;
  }
  copy->Commit(size());
  return copy;
}

Status PagedKVCache::MakeWritable(int32_t slot) {
  const size_t i = static_cast<size_t>(slot / pool_->block_size());
  if (i >= table_.size() || table_[i] == kReleased) return Status::Ok();
  BlockPool& bp = pool_->blocks();
  const BlockId old = table_[i];
  if (bp.ref_count(old) == 1) {
    bp.Unregister(old);  // content changes from here on
    return Status::Ok();
  }
  auto fresh = bp.Allocate();
  if (!fresh) return OutOfMemory("KV block pool exhausted: no block for copy-on-write");
  for (int32_t l = 0; l < spec().n_layers; ++l) {
    for (bool key : {true, false}) {
      const size_t bytes = pool_->head_block_bytes(key);
      for (int32_t h = 0; h < spec().n_kv_heads; ++h) {
        uint8_t* head = pool_->base(l, key) + h * pool_->head_stride(key);
        std::memcpy(head + *fresh * bytes, head + old * bytes, bytes);
      }
    }
  }
  bp.Unref(old);
  table_[i] = *fresh;
  return Status::Ok();
}

Status PagedKVCache::Reserve(int32_t n) {
  if (n > 0 && size() % pool_->block_size() != 0) KVC_RETURN_IF_ERROR(MakeWritable(size()));
  return BlockedKVCache::Reserve(n);
}

size_t PagedKVCache::StorageBytes() const { return static_cast<size_t>(held_) * pool_->BytesPerBlock(); }

}  // namespace kvc
