// Decode attention over a filled KV cache (one query token) for each layout and element type,
// llama-3.2-1b head shape (32 query heads, 8 KV heads, head_dim 64), 1 thread unless stated.
// Reports KV bytes read per second. With one layer the cache stays in the last-level cache; with
// 16 layers (the model's) each iteration walks all of them, so K/V come from DRAM as in real
// decode. Depth 16384 runs on 1 and 2 threads (decode splits each head's slots between them).
// BM_PrefillAttention: a 512-token prompt's causal attention over one layer.
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
  const auto residual = static_cast<int32_t>(state.range(5));  // the f32 ring's slots
  KVSpec shape;
  shape.n_layers = layers;
  shape.n_kv_heads = 8;
  shape.head_dim = 64;
  shape.max_tokens = depth + 1;
  auto cache = MakeKVCache(shape, {.layout = layout, .type_k = type, .type_v = type, .residual = residual});
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
          b->Args({depth, static_cast<int64_t>(t), static_cast<int64_t>(l), layers, 1, 0});
        }
      }
    }
  }
  // The int8 kernels with the cache resident on 2 threads: against the 16-layer runs, what
  // DRAM costs them.
  for (KVType t : {KVType::kQ8, KVType::kQ4}) {
    b->Args({4096, static_cast<int64_t>(t), static_cast<int64_t>(KVLayout::kPaged), 1, 2, 0});
  }
  // q4 with the engine's default residual ring of 128 f32 slots (the recent tokens): the ring's
  // rows cost several q4 slots each, and each thread's range takes its share of them.
  b->Args({4096, static_cast<int64_t>(KVType::kQ4), static_cast<int64_t>(KVLayout::kPaged), 1, 2, 128});
  b->Args({16384, static_cast<int64_t>(KVType::kQ4), static_cast<int64_t>(KVLayout::kPaged), 16, 2, 128});
  // Shallow context on 2 threads, 16 layers (10-18 MB, which the last-level cache may partly
  // hold): q4 without and with the ring, whose 128 slots hold about as many bytes as the other 897,
  // and q8.
  for (int64_t ring : {0, 128}) {
    b->Args({1024, static_cast<int64_t>(KVType::kQ4), static_cast<int64_t>(KVLayout::kPaged), 16, 2,
             ring});
  }
  b->Args(
      {1024, static_cast<int64_t>(KVType::kQ8), static_cast<int64_t>(KVLayout::kPaged), 16, 2, 0});
  // The ring's own kernel: 1000 of 1025 slots in the ring, 16 layers (64 MB) from DRAM.
  b->Args({1024, static_cast<int64_t>(KVType::kQ4), static_cast<int64_t>(KVLayout::kPaged), 16, 1, 1000});
  // Long context as in the bench of record: every layer at depth 16384, on 1 and 2 threads.
  for (int64_t threads : {1, 2}) {
    for (KVType t : {KVType::kF16, KVType::kQ8, KVType::kQ4}) {
      b->Args({16384, static_cast<int64_t>(t), static_cast<int64_t>(KVLayout::kPaged), 16, threads, 0});
    }
  }
  b->ArgNames({"depth", "kv_type", "layout", "layers", "threads", "residual"});
}

BENCHMARK(BM_DecodeAttention)->Apply(Args)->Unit(benchmark::kMicrosecond);

// Prefill attention: one chunk of n_q causal queries from slot 0 (llama-3.2-1b head shape, one
// layer, 2 threads), in queries per second and FLOP/s.
void BM_PrefillAttention(benchmark::State& state) {
  const int32_t n_q = static_cast<int32_t>(state.range(0));
  const auto type = static_cast<KVType>(state.range(1));
  KVSpec shape;
  shape.n_layers = 1;
  shape.n_kv_heads = 8;
  shape.head_dim = 64;
  shape.max_tokens = n_q;
  auto cache = MakeKVCache(shape, {.layout = KVLayout::kContiguous, .type_k = type, .type_v = type, .residual = 0});
  if (!cache.ok()) {
    state.SkipWithError(cache.status().message().c_str());
    return;
  }
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> rows(static_cast<size_t>(n_q) * 8 * 64), q(static_cast<size_t>(n_q) * 32 * 64), out(q.size());
  for (float& x : rows) x = normal(rng);
  for (float& x : q) x = normal(rng);
  (void)cache.value()->Reserve(n_q);
  cache.value()->Write(0, 0, n_q, rows.data(), rows.data());
  cache.value()->Commit(n_q);
  const KVView view = cache.value()->View(0, n_q);
  ThreadPool pool(2);
  for (auto _ : state) {
    Attention({32, 8, 64, 0}, q.data(), n_q, 0, view, out.data(), &pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["queries/s"] = benchmark::Counter(n_q, benchmark::Counter::kIsIterationInvariantRate);
  // Causal: query i scores and weighs i + 1 slots, for 32 heads of 64 (2 flops a multiply-add).
  const double flops = 2.0 * 2.0 * 32 * 64 * (static_cast<double>(n_q) * (n_q + 1) / 2);
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PrefillAttention)
    ->ArgNames({"n_q", "kv_type"})
    ->Args({512, static_cast<int64_t>(KVType::kF16)})
    ->Args({512, static_cast<int64_t>(KVType::kQ8)})
    ->Args({4096, static_cast<int64_t>(KVType::kF32)})
    ->Args({4096, static_cast<int64_t>(KVType::kF16)})
    ->Args({4096, static_cast<int64_t>(KVType::kQ8)})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace kvc
