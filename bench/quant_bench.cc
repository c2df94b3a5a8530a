// Throughput of the reference weight (de)quantizers and of the per-call activation quantizer
// that the Q8_0 / Q4_0 kernels run once per token.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench_data.h"
#include "quant/act_quant.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

std::vector<float> Random(int64_t n) { return NormalVector(n, 1.0f, 7); }

void BM_QuantizeRow(benchmark::State& state, DType type) {
  const int64_t n = state.range(0);
  const std::vector<float> x = Random(n);
  std::vector<uint8_t> out(RowBytes(type, n));
  for (auto _ : state) {
    QuantizeRow(type, x.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_DequantizeRow(benchmark::State& state, DType type) {
  const int64_t n = state.range(0);
  const std::vector<float> x = Random(n);
  std::vector<uint8_t> q(RowBytes(type, n));
  QuantizeRow(type, x.data(), q.data(), n);
  std::vector<float> out(n);
  for (auto _ : state) {
    DequantizeRow(type, q.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// Vector path vs scalar reference; n = 2048 and 8192 are the activation widths of a 1B model.
void BM_QuantizeActs(benchmark::State& state, bool reference) {
  const int64_t n = state.range(0);
  const std::vector<float> x = Random(n);
  std::vector<int8_t> qs(n);
  std::vector<float> d(n / kActBlock);
  std::vector<int32_t> sum(n / kActBlock);
  for (auto _ : state) {
    (reference ? QuantizeActsQ8Ref : QuantizeActsQ8)(x.data(), n, qs.data(), d.data(), sum.data());
    benchmark::DoNotOptimize(qs.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

const int kRegistered = [] {
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    const std::string name(DTypeName(t));
    benchmark::RegisterBenchmark(("BM_QuantizeRow/" + name).c_str(), BM_QuantizeRow, t)->Arg(4096);
    benchmark::RegisterBenchmark(("BM_DequantizeRow/" + name).c_str(), BM_DequantizeRow, t)->Arg(4096);
  }
  benchmark::RegisterBenchmark("BM_QuantizeActs/vector", BM_QuantizeActs, false)->Arg(2048)->Arg(8192);
  benchmark::RegisterBenchmark("BM_QuantizeActs/reference", BM_QuantizeActs, true)->Arg(2048)->Arg(8192);
  return 0;
}();

}  // namespace
}  // namespace kvc
