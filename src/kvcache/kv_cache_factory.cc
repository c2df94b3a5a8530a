#include "kvcache/kv_cache_factory.h"

#include "kvcache/contiguous_kv_cache.h"
#include "kvcache/kv_format.h"
#include "kvcache/paged_kv_cache.h"
#include "quant/kv_quant.h"

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

Result<KVType> ParseKVType(const std::string& name) {
  KVType t;
  if (KVTypeFromName(name, &t)) return t;
  return InvalidArgument("unknown KV cache type '" + name + "' (choices: f32, f16, bf16, q8, q4, q2)");
}

Result<KVGrouping> ParseKVGrouping(const std::string& name) {
  if (name == "token") return KVGrouping::kPerToken;
  if (name == "kivi") return KVGrouping::kKivi;
  return InvalidArgument("unknown KV grouping '" + name + "' (choices: token, kivi)");
}

int32_t DefaultResidual(KVType k, KVType v, KVGrouping grouping) {
  auto low_bit = [](KVType t) { return t == KVType::kQ4 || t == KVType::kQ2; };
  if (low_bit(k) || low_bit(v) || (grouping == KVGrouping::kKivi && IsQuantized(k))) return 128;
  return 0;
}

Result<KVSpec> MakeKVSpec(KVSpec spec, const KVCacheOptions& o) {
  if (spec.max_tokens <= 0) return InvalidArgument("KV cache capacity must be positive");
  spec.type_k = o.type_k;
  spec.type_v = o.type_v;
  spec.group = o.group;
  spec.grouping = o.grouping;
  spec.residual = o.residual >= 0 ? o.residual : DefaultResidual(o.type_k, o.type_v, o.grouping);
  if (o.window > 0) spec.window = o.window;  // else the model's own sliding window, if any
  if (o.window < 0) return InvalidArgument("--kv-window must be >= 0");
  if (o.group <= 0 || o.group > 256) return InvalidArgument("--kv-group must be in 1..256");
  const int32_t gk = spec.GroupK(), gv = spec.GroupV();
  for (auto [t, g, name] : {std::tuple{spec.type_k, gk, "keys"}, std::tuple{spec.type_v, gv, "values"}}) {
    if (!IsQuantized(t)) continue;
    const bool per_token = !(name[0] == 'k' && spec.KiviKeys());
    if (!KVGroupValid(t, g) || (per_token && spec.head_dim % g != 0)) {
      return InvalidArgument(std::string("KV group size ") + std::to_string(g) + " does not fit " +
                             KVTypeName(t) + " " + name + " with head dim " +
                             std::to_string(spec.head_dim) + " (q4 needs an even group, q2 a multiple of 4)");
    }
  }
  if (spec.KiviKeys() && (spec.residual < spec.group || spec.residual % spec.group != 0)) {
    return InvalidArgument("KIVI keys need --kv-residual to be a positive multiple of --kv-group (" +
                           std::to_string(spec.group) + "), got " + std::to_string(spec.residual));
  }
  if (spec.residual < 0) return InvalidArgument("--kv-residual must be >= 0");
  return spec;
}

Result<std::unique_ptr<KVCache>> MakeKVCache(const KVSpec& shape, const KVCacheOptions& options) {
  KVC_ASSIGN_OR_RETURN(KVSpec spec, MakeKVSpec(shape, options));
  switch (options.layout) {
    case KVLayout::kContiguous:
    case KVLayout::kGrowable: {
      ContiguousKVCache::Options o;
      o.growable = options.layout == KVLayout::kGrowable;
      auto cache = std::make_unique<ContiguousKVCache>(spec, o);
      if (cache->capacity() == 0 && spec.max_tokens > spec.residual) {
        return OutOfMemory("cannot allocate the KV cache for " + std::to_string(spec.max_tokens) + " tokens");
      }
      return std::unique_ptr<KVCache>(std::move(cache));
    }
    case KVLayout::kPaged: {
      if (options.block_size <= 0 || options.block_size > 4096) {
        return InvalidArgument("--kv-block must be in 1..4096, got " + std::to_string(options.block_size));
      }
      // Enough blocks for a full sequence (window: the window plus the block being filled).
      int32_t tokens = spec.max_tokens;
      if (spec.window > 0) tokens = std::min(tokens, spec.window + kMaxChunkTokens + 2 * options.block_size);
      const int32_t bs = static_cast<int32_t>(
          EffectiveBlockSize(options.block_size, spec.KiviKeys() ? spec.group : 1));
      const int32_t blocks = (tokens + bs - 1) / bs + 1;
      KVC_ASSIGN_OR_RETURN(auto pool, PagedKVPool::Create(spec, bs, blocks));
      return std::unique_ptr<KVCache>(new PagedKVCache(std::move(pool)));
    }
  }
  return InvalidArgument("bad KV layout");
}

}  // namespace kvc
