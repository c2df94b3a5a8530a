// Pointwise kernels per row of activations (kernels/norm.h): SwiGLU over a prefill token's
// ffn_dim values (llama-3.2-1b: 8192) and RMSNorm over its dim (2048), L1-resident.
#include <benchmark/benchmark.h>

#include <vector>

#include "bench_data.h"
#include "kernels/norm.h"
#include "kernels/rope.h"

namespace kvc {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed) { return NormalVector(n, 2.0f, seed); }

void BM_SiluMul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> gate = Random(n, 1), up = Random(n, 2);
  std::vector<float> work(n);
  for (auto _ : state) {
    work = gate;
    SiluMul(work.data(), up.data(), n);
    benchmark::DoNotOptimize(work.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SiluMul)->Arg(8192);

void BM_RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = Random(n, 3), w = Random(n, 4);
  std::vector<float> out(n);
  for (auto _ : state) {
    RmsNorm(x.data(), w.data(), n, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RmsNorm)->Arg(2048);

// RoPE of one token's queries (llama-3.2-1b: 32 heads of 64) at advancing positions.
void BM_RopeApply(benchmark::State& state) {
  const int32_t heads = static_cast<int32_t>(state.range(0)), hd = 64;
  const Rope rope(hd, hd, 500000.0f);
  std::vector<float> q = Random(int64_t{heads} * hd, 5);
  int32_t pos = 0;
  for (auto _ : state) {
    rope.Apply(q.data(), heads, pos);
    pos = (pos + 1) % 8192;
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(state.iterations() * heads * hd);
}
BENCHMARK(BM_RopeApply)->Arg(32)->Arg(8);

}  // namespace
}  // namespace kvc
