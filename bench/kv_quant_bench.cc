// Attention-side cost of the KV storage types: fused dot / axpy over the cached rows of one head
// (1024 tokens, group 32), and the per-token encode. Dispatched kernels next to the scalar reference.
//   kvcache_microbench --benchmark_filter='KVRow'
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_data.h"
#include "kvcache/kv_format.h"
#include "quant/kv_quant.h"

namespace kvc {
namespace {

constexpr KVType kTypes[] = {KVType::kF32, KVType::kF16, KVType::kBF16,
                             KVType::kQ8,  KVType::kQ4,  KVType::kQ2};
constexpr int32_t kTokens = 1024;
constexpr int32_t kGroup = 32;

std::vector<float> Gaussian(size_t n, uint32_t seed) {
  return NormalVector(static_cast<int64_t>(n), 1.0f, seed);
}

// kTokens encoded rows of head_dim elements, back to back.
struct Rows {
  Rows(KVType t, int32_t head_dim) : type(t), dim(head_dim), row_bytes(KVBytes(t, head_dim, kGroup)) {
    const auto x = Gaussian(static_cast<size_t>(kTokens) * dim, 1);
    bytes.resize(row_bytes * kTokens);
    for (int32_t i = 0; i < kTokens; ++i) {
      QuantizeKVRow(t, x.data() + static_cast<size_t>(i) * dim, dim, kGroup, bytes.data() + i * row_bytes);
    }
  }
  KVType type;
  int32_t dim;
  size_t row_bytes;
  std::vector<uint8_t> bytes;
};

template <bool kRef>
void BM_DotKVRow(benchmark::State& state) {
  const Rows rows(kTypes[state.range(0)], static_cast<int32_t>(state.range(1)));
  const auto q = Gaussian(rows.dim, 2);
  std::vector<float> scores(kTokens);
  for (auto _ : state) {
    for (int32_t i = 0; i < kTokens; ++i) {
      const uint8_t* row = rows.bytes.data() + i * rows.row_bytes;
      scores[i] = kRef ? DotKVRowRef(rows.type, row, q.data(), rows.dim, kGroup)
                       : DotKVRow(rows.type, row, q.data(), rows.dim, kGroup);
    }
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(KVTypeName(rows.type));
  state.SetItemsProcessed(state.iterations() * kTokens);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.bytes.size()));
}

template <bool kRef>
void BM_AxpyKVRow(benchmark::State& state) {
  const Rows rows(kTypes[state.range(0)], static_cast<int32_t>(state.range(1)));
  const auto weights = Gaussian(kTokens, 3);
  std::vector<float> acc(rows.dim);
  for (auto _ : state) {
    for (int32_t i = 0; i < kTokens; ++i) {
      const uint8_t* row = rows.bytes.data() + i * rows.row_bytes;
      if (kRef) {
        AxpyKVRowRef(rows.type, row, weights[i], acc.data(), rows.dim, kGroup);
      } else {
        AxpyKVRow(rows.type, row, weights[i], acc.data(), rows.dim, kGroup);
      }
    }
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(KVTypeName(rows.type));
  state.SetItemsProcessed(state.iterations() * kTokens);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.bytes.size()));
}

// Encoding one token's K (or V) for 8 KV heads.
template <bool kRef>
void BM_QuantizeKVRow(benchmark::State& state) {
  const KVType t = kTypes[state.range(0)];
  const int32_t n = static_cast<int32_t>(state.range(1)) * 8;
  const auto x = Gaussian(n, 4);
  std::vector<uint8_t> out(KVBytes(t, n, kGroup));
  for (auto _ : state) {
    if (kRef) {
      QuantizeKVRowRef(t, x.data(), n, kGroup, out.data());
    } else {
      QuantizeKVRow(t, x.data(), n, kGroup, out.data());
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(KVTypeName(t));
  state.SetItemsProcessed(state.iterations() * n);
}

void TypesAndDims(benchmark::internal::Benchmark* b) { b->ArgsProduct({{0, 1, 2, 3, 4, 5}, {64, 128}}); }

BENCHMARK(BM_DotKVRow<false>)->Name("DotKVRow")->Apply(TypesAndDims);
BENCHMARK(BM_DotKVRow<true>)->Name("DotKVRowRef")->Apply(TypesAndDims);
BENCHMARK(BM_AxpyKVRow<false>)->Name("AxpyKVRow")->Apply(TypesAndDims);
BENCHMARK(BM_AxpyKVRow<true>)->Name("AxpyKVRowRef")->Apply(TypesAndDims);
BENCHMARK(BM_QuantizeKVRow<false>)->Name("QuantizeKVRow")->Apply(TypesAndDims);
BENCHMARK(BM_QuantizeKVRow<true>)->Name("QuantizeKVRowRef")->Apply(TypesAndDims);

}  // namespace
}  // namespace kvc
