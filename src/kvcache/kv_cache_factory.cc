#include "kvcache/kv_cache_factory.h"

#include "kvcache/contiguous_kv_cache.h"
#include "kvcache/paged_kv_cache.h"

namespace kvc {

const char* KVLayoutName(KVLayout layout) {
  switch (layout) {
    case KVLayout::kContiguous: return "contiguous";
    case KVLayout::kGrowable: return "growable";
    case KVLayout::kPaged: return "paged";
  }
  return "?";
}

Result<KVLayout> ParseKVLayout(const std::string& name) {
  for (KVLayout l : {KVLayout::kContiguous, KVLayout::kGrowable, KVLayout::kPaged}) {
    if (name == KVLayoutName(l)) return l;
  }
  return InvalidArgument("unknown KV layout '" + name + "' (choices: contiguous, growable, paged)");
}

Result<DType> ParseKVType(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  return InvalidArgument("unknown KV cache type '" + name + "' (choices: f32, f16, bf16)");
}

Result<std::unique_ptr<KVCache>> MakeKVCache(KVSpec spec, const KVCacheOptions& options) {
  spec.type = options.type;
  if (spec.max_tokens <= 0) return InvalidArgument("KV cache capacity must be positive");
  switch (options.layout) {
    case KVLayout::kContiguous:
    case KVLayout::kGrowable: {
      ContiguousKVCache::Options o;
      o.growable = options.layout == KVLayout::kGrowable;
      o.initial_tokens = 16;
      return std::unique_ptr<KVCache>(new ContiguousKVCache(spec, o));
    }
    case KVLayout::kPaged: {
      if (options.block_size <= 0 || options.block_size > 4096) {
        return InvalidArgument("--kv-block must be in 1..4096, got " + std::to_string(options.block_size));
      }
      const int32_t blocks = (spec.max_tokens + options.block_size - 1) / options.block_size;
      KVC_ASSIGN_OR_RETURN(auto pool, PagedKVPool::Create(spec, options.block_size, blocks));
      return std::unique_ptr<KVCache>(new PagedKVCache(std::move(pool)));
    }
  }
  return InvalidArgument("bad KV layout");
}

}  // namespace kvc
