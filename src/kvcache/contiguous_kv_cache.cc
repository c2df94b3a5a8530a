#include "kvcache/contiguous_kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace kvc {

ContiguousKVCache::ContiguousKVCache(const KVSpec& spec, Options options)
    : BlockedKVCache(spec), options_(options), k_(spec.n_layers), v_(spec.n_layers) {
  // Preallocated: room for every slot that can ever be stored (residual slots live in the ring).
  const int32_t full = StoredTokensFor(spec.max_tokens);
  Resize(RoundCapacity(options_.growable ? std::min(options_.initial_tokens, full) : full));
}

int32_t ContiguousKVCache::RoundCapacity(int64_t tokens) const {
  // KIVI groups must not straddle the end of the buffer.
  const int32_t g = spec().KiviKeys() ? spec().group : 1;
  return static_cast<int32_t>((tokens + g - 1) / g * g);
}

Status ContiguousKVCache::Resize(int32_t capacity) {
  const int32_t old_bs = block_size();
  const size_t old_k = capacity_ ? SideBlockBytes(true, old_bs) / spec().n_kv_heads : 0;
  const size_t old_v = capacity_ ? SideBlockBytes(false, old_bs) / spec().n_kv_heads : 0;
  // A capacity of 0 (every token fits in the residual ring) allocates nothing.
  const size_t new_k = SideBlockBytes(true, capacity) / spec().n_kv_heads;
  const size_t new_v = SideBlockBytes(false, capacity) / spec().n_kv_heads;
  try {
    for (int side = 0; side < 2; ++side) {
      auto& bufs = side == 0 ? k_ : v_;
      const size_t old_head = side == 0 ? old_k : old_v, new_head = side == 0 ? new_k : new_v;
      for (auto& buf : bufs) {
        std::vector<uint8_t> grown(new_head * spec().n_kv_heads);
        // Each head's region starts with its used rows: copy the old region to the new start.
        for (int32_t h = 0; h < spec().n_kv_heads && old_head > 0; ++h) {
          std::memcpy(grown.data() + h * new_head, buf.data() + h * old_head, std::min(old_head, new_head));
        }
        buf.swap(grown);
      }
    }
  } catch (const std::bad_alloc&) {
    return OutOfMemory("cannot grow the KV cache to " + std::to_string(capacity) + " tokens");
  }
  capacity_ = capacity;
  return Status::Ok();
}

Status ContiguousKVCache::EnsureStorage(int32_t stored) {
  if (stored <= capacity_) return Status::Ok();
  if (!options_.growable) {
    return OutOfRange("KV cache full: " + std::to_string(stored) + " slots needed, capacity " +
                      std::to_string(capacity_));
  }
  int64_t cap = std::max(capacity_, 1);
  while (cap < stored) cap *= 2;
  return Resize(RoundCapacity(std::min<int64_t>(cap, std::max(StoredTokensFor(spec().max_tokens), stored))));
}

uint8_t* ContiguousKVCache::StorageBase(int32_t layer, bool key) const {
  return const_cast<uint8_t*>((key ? k_ : v_)[layer].data());
}

size_t ContiguousKVCache::StorageBytes() const {
  size_t total = 0;
  for (const auto& b : k_) total += b.size();
  for (const auto& b : v_) total += b.size();
  return total;
}

}  // namespace kvc
