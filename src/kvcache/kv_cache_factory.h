// Builds a KVCache from run-time options (the --kv-* flags).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "kvcache/kv_cache.h"

namespace kvc {

enum class KVLayout {
  kContiguous,  // preallocated to the capacity
  kGrowable,    // contiguous, doubling when full
  kPaged,       // fixed-size blocks from a pool, through a block table
};

struct KVCacheOptions {
  KVLayout layout = KVLayout::kPaged;
  int32_t block_size = 16;     // tokens per block (paged)
  DType type = DType::kF32;    // element type of K and V
};

const char* KVLayoutName(KVLayout layout);
Result<KVLayout> ParseKVLayout(const std::string& name);
// "f32" | "f16" | "bf16"
Result<DType> ParseKVType(const std::string& name);

// A single-sequence cache for spec.max_tokens tokens (the paged layout gets a private pool
// of just enough blocks).
Result<std::unique_ptr<KVCache>> MakeKVCache(KVSpec spec, const KVCacheOptions& options);

}  // namespace kvc
