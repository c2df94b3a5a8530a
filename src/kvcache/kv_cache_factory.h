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
  int32_t block_size = 16;                   // tokens per block (paged)
  KVType type_k = KVType::kF32;
  KVType type_v = KVType::kF32;
  int32_t group = 32;                        // quantization group size
  KVGrouping grouping = KVGrouping::kPerToken;
  int32_t residual = -1;                     // f32 recent tokens; -1: DefaultResidual
  int32_t window = 0;                        // sliding window; 0: off
};

const char* KVLayoutName(KVLayout layout);
Result<KVLayout> ParseKVLayout(const std::string& name);
// "f32" | "f16" | "bf16" | "q8" | "q4" | "q2"
Result<KVType> ParseKVType(const std::string& name);
// "token" | "kivi"
Result<KVGrouping> ParseKVGrouping(const std::string& name);

// Residual window used when none is given: 128 tokens for q4/q2 (and for KIVI keys, which
// need one to gather groups), 0 otherwise.
int32_t DefaultResidual(KVType k, KVType v, KVGrouping grouping);

// The paged block size used for `block` requested: KIVI key groups (`kivi_group` tokens; 1 when
// keys are not KIVI-grouped) must not straddle blocks, so it rounds up to a multiple of the group.
inline int64_t EffectiveBlockSize(int64_t block, int64_t kivi_group) {
  return (block + kivi_group - 1) / kivi_group * kivi_group;
}

// Completes `shape` (layers, heads, head_dim, max_tokens) with the options, validated.
Result<KVSpec> MakeKVSpec(KVSpec shape, const KVCacheOptions& options);

// Longest chunk of tokens a windowed single-sequence cache accepts in one Forward (callers prefill
// longer prompts in chunks of at most this many tokens).
constexpr int32_t kMaxChunkTokens = 512;

// A single-sequence cache (the paged layout gets a private pool of just enough blocks).
Result<std::unique_ptr<KVCache>> MakeKVCache(const KVSpec& shape, const KVCacheOptions& options);

}  // namespace kvc
