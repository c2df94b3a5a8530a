// Decode attention over a filled KV cache (one query token) for each layout and element type,
// llama-3.2-1b head shape (32 query heads, 8 KV heads, head_dim 64), 1 thread unless stated.
// Reports KV bytes read per second. With one layer the cache stays in the last-level cache; with
// 16 layers (the model's) each iteration walks all of them, so K/V come from DRAM as in real
// decode. Depth 16384 runs on 1 and 2 threads (decode splits each head's slots between them).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kvcache/kv_cache_factory.h"

namespace kvc {
namespace {

void BM_DecodeAttention(benchmark::State& state) {
  const int32_t depth = static_cast<int32_t>(state.range(0));
  const auto type = static_cast<KVType>(state.range(1));
  const auto layout = static_cast<KVLayout>(state.range(2));
  const auto layers = static_cast<int32_t>(state.range(3));
  const auto threads = static_cast<int32_t>(state.range(4));
  KVSpec shape;
  shape.n_layers = layers;
  shape.n_kv_heads = 8;
  shape.head_dim = 64;
  shape.max_tokens = depth + 1;
  auto cache = MakeKVCache(shape, {.layout = layout, .type_k = type, .type_v = type, .residual = 0});
  if (!cache.ok()) {
    state.SkipWithError(cache.status().message().c_str());
    return;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> rows(static_cast<size_t>(depth + 1) * 8 * 64);
  for (float& x : rows) x = normal(rng);
  (void)cache.value()->Reserve(depth + 1);
  for (int32_t l = 0; l < layers; ++l) cache.value()->Write(l, 0, depth + 1, rows.data(), rows.data());
  cache.value()->Commit(depth + 1);
  std::vector<float> q(32 * 64), out(32 * 64);
  for (float& x : q) x = normal(rng);
  ThreadPool pool(threads);
  const AttentionShape s{32, 8, 64, 0};
  std::vector<KVView> views;
  for (int32_t l = 0; l < layers; ++l) views.push_back(cache.value()->View(l, depth + 1));
  for (auto _ : state) {
    for (const KVView& view : views) Attention(s, q.data(), 1, depth, view, out.data(), &pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(cache.value()->BytesAllocated()));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int64_t layers : {1, 16}) {
    for (int64_t depth : {1024, 4096}) {
      for (KVType t : {KVType::kF32, KVType::kF16, KVType::kQ8, KVType::kQ4}) {
        for (KVLayout l : {KVLayout::kContiguous, KVLayout::kPaged}) {
          b->Args({depth, static_cast<int64_t>(t), static_cast<int64_t>(l), layers, 1});
        }
      }
    }
  }
  // Long context as in the bench of record: every layer at depth 16384, on 1 and 2 threads.
  for (int64_t threads : {1, 2}) {
    for (KVType t : {KVType::kF16, KVType::kQ8, KVType::kQ4}) {
      b->Args({16384, static_cast<int64_t>(t), static_cast<int64_t>(KVLayout::kPaged), 16, threads});
    }
  }
  b->ArgNames({"depth", "kv_type", "layout", "layers", "threads"});
}

BENCHMARK(BM_DecodeAttention)->Apply(Args)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvc
