// Measurements behind `kvcache bench`: prefill and decode speed (at chosen KV depths and cache
// configurations), the bytes a decoded token reads, and the cached vs recomputed generation
// table. Timings are medians over repeats after a warm-up run.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "engine/generator.h"
#include "engine/stats.h"
#include "kvcache/kv_cache_factory.h"

namespace kvc {

// Tokens/s of one forward over `n` prompt tokens into a fresh f32 cache.
Result<Summary> BenchPrefill(Transformer& tf, int32_t n, int32_t repeat);

struct DecodeRun {
  double tok_s = 0;          // decode tokens/s
  size_t kv_bytes = 0;       // cache bytes held at the starting depth (what each step reads)
};

// One decode run: `steps` tokens starting at KV depth `depth`, in a fresh cache whose first
// `depth` slots hold random K/V rows from `seed` (decode cost does not depend on their values;
// prefilling 16k tokens of a 1B model would take minutes), written through the cache's own
// write path. Callers repeat it, round-robin over configurations so that a slow spell of a
// shared machine hits every configuration alike.
Result<DecodeRun> BenchDecodeOnce(Transformer& tf, const KVCacheOptions& kv, int32_t depth,
                                  int32_t steps, uint32_t seed);

struct CacheTableRow {
  int32_t new_tokens = 0;
  Summary cached_s, uncached_s;  // seconds per generation
  bool same_tokens = true;       // greedy outputs identical
};

// Time to generate `new_tokens` after `prompt`, with the KV cache and with full recomputation.
Result<CacheTableRow> BenchCacheTable(Generator& gen, std::span<const int32_t> prompt,
                                      int32_t new_tokens, int32_t repeat);

// Bytes a decode step reads besides the KV cache: every weight once, except the token
// embedding, of which one row is read (unless tied to the output projection).
size_t DecodeWeightBytes(const ModelFile& model);

std::vector<int32_t> RandomTokens(int32_t n, int32_t vocab, uint64_t seed);

}  // namespace kvc
