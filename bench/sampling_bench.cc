// Sampling one token from a decode step's logits (sampling/sampler.h): greedy, the default
// temperature + top-k + top-p, nucleus alone, and plain temperature, over the vocabularies of
// llama-2 / llama-3.2-1b (32000) and llama-3 (128256).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench_data.h"
#include "sampling/sampler.h"

namespace kvc {
namespace {

// range(0): vocabulary; range(1): 0 greedy, 1 top-k 40 + top-p 0.95, 2 top-p 0.95, 3 temperature.
void BM_Sample(benchmark::State& state) {
  const int32_t n = static_cast<int32_t>(state.range(0));
  SamplingParams p;
  switch (state.range(1)) {
    case 0:
      p.temperature = 0;
      break;
    case 1:
      break;
    case 2:
      p.top_k = 0;
      break;
    default:
      p.top_k = 0;
      p.top_p = 1.0f;
      break;
  }
  // Normal logits (sigma 2.5): a flat distribution, the nucleus's worst case (at temperature 0.8
  // and top-p 0.95 it holds about 7% of the vocabulary); a trained model's are more peaked.
  const std::vector<float> logits = NormalVector(n, 2.5f, 1);
  Sampler sampler(p);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Sample(logits.data(), n));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Sample)->ArgNames({"vocab", "mode"})->ArgsProduct({{32000, 128256}, {0, 1, 2, 3}});

}  // namespace
}  // namespace kvc
