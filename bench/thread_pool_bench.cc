// ThreadPool::ParallelFor when one thread is slower than the other (a core shared with a noisy
// neighbour, a smaller core): every item costs the same arithmetic, but on thread 1 it costs
// `slowdown` times as much. With a fixed split the loop waits for the slow thread's whole
// share; with the pool's take-over from the back it ends when the work is done. The static row
// runs the same items split in halves by hand, as ParallelFor did before.
#include <benchmark/benchmark.h>

#include <atomic>

#include "threading/thread_pool.h"

namespace kvc {
namespace {

// About 1 us of dependent arithmetic per unit.
[[gnu::noinline]] double Spin(int units, double x) {
  for (int i = 0; i < units * 300; ++i) x = x * 0.9999999 + 1e-9;
  return x;
}

void BM_ParallelForSlowThread(benchmark::State& state) {
  const bool static_split = state.range(0) == 1;
  const int slowdown = static_cast<int>(state.range(1));
  constexpr int64_t kItems = 256;
  ThreadPool pool(2);
  std::atomic<int64_t> sink{0};
  auto item = [&](int64_t b, int64_t e, int t) {
    double x = 1.0;
    for (int64_t i = b; i < e; ++i) x = Spin(t == 1 ? slowdown : 1, x);
    sink.fetch_add(static_cast<int64_t>(x));
  };
  for (auto _ : state) {
    if (static_split) {
      pool.RunOnAll([&](int t) { item(t * kItems / 2, (t + 1) * kItems / 2, t); });
    } else {
      pool.ParallelFor(kItems, item);
    }
  }
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_ParallelForSlowThread)
    ->ArgNames({"static", "slowdown"})
    ->ArgsProduct({{1, 0}, {1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace kvc
