// Exact KV cache memory planning: how many bytes a request needs before anything is allocated,
// with every term of the cost spelled out. Byte costs come from kv_format.h (the single source of
// truth); this file only decides how many tokens land in each storage form.
//
// Per sequence, with S = min(window, tokens) kept tokens (S = tokens without a window), the
// accounting follows the cache (BlockedKVCache and the factory's defaults):
//   residual: quantized sides keep the newest tokens in an f32 ring of R slots, allocated whole
//     and capped by the context; R defaults to 128 when a side is q4/q2 or KIVI keys are
//     quantized, else 0. The other S - R tokens are in the storage type. KIVI keys leave the ring
//     a whole group of G tokens at a time, so their count rounds up to G (R must be a multiple).
//   slots: K and V share slot indices, so both hold max(K tokens, V tokens) slots, rounded up to
//     whole blocks (paged) or whole KIVI key groups; empty slots cost the storage type's bytes.
// Totals multiply by the batch: every sequence has its own ring, window and blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/kv_format.h"

namespace kvc {

// The cache-relevant shape of a model (what KVSpec holds, without a capacity or type).
struct KVShape {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
};

struct MemoryPlanOptions {
  int64_t tokens = 0;  // context tokens per sequence
  int64_t batch = 1;   // sequences
  KVType k_type = KVType::kF16;
  KVType v_type = KVType::kF16;
  int64_t group = 32;  // quantization group size G (clipped to head_dim for per-token groups)
  KVGrouping grouping = KVGrouping::kPerToken;
  int64_t residual = -1;  // f32 residual ring R; -1: the cache's DefaultResidual
  int64_t window = 0;     // sliding window W; 0: full attention
  KVLayout layout = KVLayout::kContiguous;
  int64_t block_size = 16;  // tokens per block (paged)
};

// A bytes-per-element ratio, kept unreduced so it reads as "bytes per group / group size".
struct BytesPerElement {
  uint64_t num = 0;
  uint64_t den = 1;
};

// How one of K or V is stored, per sequence and summed over the batch.
struct SidePlan {
  KVType type = KVType::kF16;
  int64_t group = 0;                 // effective group in elements (0 for f32/f16/bf16)
  bool groups_along_tokens = false;  // KIVI keys
  BytesPerElement bpe;               // of the storage type (codes + group params)
  int64_t stored_tokens = 0;         // per sequence, in the storage type
  int64_t residual_tokens = 0;       // per sequence, f32 ring slots
  int64_t padding_tokens = 0;        // per sequence, empty slots (shared slots - stored tokens)
  // Bytes of one token (all layers and heads) in the storage type: num / den exactly.
  BytesPerElement bytes_per_token;
  // Over the whole batch:
  uint64_t code_bytes = 0;      // element codes (all bytes for f32/f16/bf16)
  uint64_t param_bytes = 0;     // scales and zero-points
  uint64_t residual_bytes = 0;  // f32 ring
  uint64_t padding_bytes = 0;   // empty slots (block or slot rounding)
  uint64_t total_bytes = 0;
};

// One line of the cost formula: sides x batch x tokens x layers x kv_heads x head_dim x bpe.
struct FormulaTerm {
  std::string what;  // "K+V f16", "K q4 (KIVI)", "K+V f32 residual", "V q8 block rounding"
  int sides = 2;     // 2 when K and V share the term
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  BytesPerElement bpe;
  uint64_t bytes = 0;
};

struct MemoryPlan {
  KVShape shape;
  MemoryPlanOptions options;  // as given
  int64_t stored_tokens = 0;  // per sequence: kept tokens, min(window, tokens)
  int64_t residual = 0;       // the resolved residual R
  int64_t slots = 0;          // per sequence: slots of each side outside the ring
  SidePlan k;
  SidePlan v;
  std::vector<FormulaTerm> terms;  // sums to total_bytes
  uint64_t total_bytes = 0;
  uint64_t elements = 0;  // 2 x batch x stored tokens x layers x kv_heads x head_dim
};

// Plans the KV memory of `options.batch` sequences of `options.tokens` tokens. InvalidArgument
// for impossible shapes or groups; OutOfRange when the total does not fit in 64 bits.
Result<MemoryPlan> PlanKVMemory(const KVShape& shape, const MemoryPlanOptions& options);

}  // namespace kvc
