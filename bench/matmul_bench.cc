// Matrix-vector (decode) and matrix-matrix (prefill) kernels at Llama-3.2-1B shapes, next to the
// machine's streaming-read bandwidth so one run gives the fraction of the limit reached.
//   kvcache_microbench --benchmark_filter='ReadBandwidth|MatVec' --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// BM_MatVecVsRead gives the fraction of the streaming bandwidth reached, robust to machine load.
// Threads: all hardware threads, or KVC_BENCH_THREADS.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_data.h"
#include "core/huge_pages.h"
#include "kernels/bandwidth.h"
#include "kernels/matmul.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

ThreadPool& Pool() {
  static ThreadPool pool(std::getenv("KVC_BENCH_THREADS") ? std::atoi(std::getenv("KVC_BENCH_THREADS"))
                                                           : 0);
  return pool;
}

struct HugeFree {
  size_t mapped = 0;
  void operator()(void* p) const { FreeHugePages(p, mapped); }
};
using Buffer = std::unique_ptr<uint8_t[], HugeFree>;

// Huge pages where granted, as the engine loads weights (--no-mmap) and pages its KV pool.
Buffer Alloc(size_t bytes) {
  size_t mapped = 0;
  uint8_t* p = AllocateHugePages(bytes, &mapped);
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(p, HugeFree{mapped});
}

std::vector<float> RandomVector(int64_t n, uint32_t seed) { return NormalVector(n, 1.0f, seed); }

// `copies` identical weight matrices back to back. Cycling through copies whose total exceeds
// the last-level cache makes every call stream its weights from DRAM, as decode does.
struct Weights {
  Buffer data;
  size_t bytes = 0;  // one copy
  int copies = 1;
  MatView View(int i) const {
    return {type, data.get() + static_cast<size_t>(i % copies) * bytes, rows, cols};
  }
  DType type;
  int64_t rows, cols;
};

Weights MakeWeights(DType type, int64_t rows, int64_t cols, size_t min_total) {
  Weights w;
  w.type = type;
  w.rows = rows;
  w.cols = cols;
  w.bytes = RowBytes(type, cols) * rows;
  w.copies = static_cast<int>(std::max<size_t>(1, (min_total + w.bytes - 1) / w.bytes));
  w.data = Alloc(w.bytes * w.copies);
  const std::vector<float> row_src = RandomVector(cols * 8, 1);
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, row_src.data() + (r % 8) * cols, w.data.get() + r * RowBytes(type, cols),
                cols);
  }
  for (int i = 1; i < w.copies; ++i) std::memcpy(w.data.get() + i * w.bytes, w.data.get(), w.bytes);
  return w;
}

constexpr size_t kColdBytes = size_t{512} << 20;

void BM_MatVec(benchmark::State& state, DType type, int64_t rows, int64_t cols, bool cold) {
  const Weights w = MakeWeights(type, rows, cols, cold ? kColdBytes : 0);
  const std::vector<float> x = RandomVector(cols, 2);
  std::vector<float> y(rows);
  int i = 0;
  for (auto _ : state) {
    MatVec(w.View(i++), x.data(), y.data(), &Pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.counters["threads"] = Pool().size();
}

// cold: the weights come from DRAM on every call, as in a prefill (the model's weights are far
// larger than the caches); else from the last-level cache where they fit.
void BM_MatMul(benchmark::State& state, DType type, int64_t rows, int64_t cols, int64_t n,
               bool cold) {
  const Weights w = MakeWeights(type, rows, cols, cold ? kColdBytes : 0);
  const std::vector<float> x = RandomVector(cols * n, 2);
  std::vector<float> y(rows * n);
  int i = 0;
  for (auto _ : state) {
    MatMul(w.View(i++), x.data(), n, y.data(), &Pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * rows * cols * n,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = Pool().size();
}

// MatVec alternated with a streaming read of the same number of bytes on the same threads;
// reports the medians of both rates and of the per-pair ratio. Pairs taken moments apart see
// the same machine load, so the ratio stays meaningful on a shared, noisy machine.
void BM_MatVecVsRead(benchmark::State& state, DType type, int64_t rows, int64_t cols) {
  const Weights w = MakeWeights(type, rows, cols, kColdBytes);
  const std::vector<float> x = RandomVector(cols, 2);
  std::vector<float> y(rows);
  ThreadPool& pool = Pool();
  const size_t share = (w.bytes / pool.size() + 127) / 128 * 128;
  const size_t read_copies = std::max<size_t>(2, kColdBytes / (share * pool.size()));
  const Buffer rd = Alloc(share * pool.size() * read_copies);
  std::memset(rd.get(), 1, share * pool.size() * read_copies);
  std::vector<double> mv, rdr, ratio;
  int i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    MatVec(w.View(i), x.data(), y.data(), &pool);
    const auto t1 = std::chrono::steady_clock::now();
    const uint8_t* base = rd.get() + (i % read_copies) * share * pool.size();
    pool.RunOnAll([&](int t) { benchmark::DoNotOptimize(StreamRead(base + t * share, share)); });
    const auto t2 = std::chrono::steady_clock::now();
    ++i;
    mv.push_back(w.bytes / std::chrono::duration<double>(t1 - t0).count());
    rdr.push_back(share * pool.size() / std::chrono::duration<double>(t2 - t1).count());
    ratio.push_back(mv.back() / rdr.back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  state.counters["matvec_GBps"] = median(mv) * 1e-9;
  state.counters["read_GBps"] = median(rdr) * 1e-9;
  state.counters["ratio"] = median(ratio);
  state.counters["threads"] = pool.size();
}

// The seven decode products of one llama-3.2-1b layer (Q, K, V, O, gate, up, down), weights
// streamed from DRAM through copies of the layer, alternated with a streaming read of the same
// bytes as in BM_MatVecVsRead. shared:1 runs Q/K/V and gate/up as one parallel loop each
// (MatMulShared), shared:0 as one loop per matrix: what a decode step's dispatches and barriers
// cost against the bytes.
void BM_DecodeLayerVsRead(benchmark::State& state, DType type) {
  const bool shared = state.range(0) != 0;
  const int64_t d = 2048, kv = 512, f = 8192;
  const int64_t shapes[7][2] = {{d, d}, {kv, d}, {kv, d}, {d, d}, {f, d}, {f, d}, {d, f}};
  size_t layer_bytes = 0;
  for (const auto& s : shapes) layer_bytes += RowBytes(type, s[1]) * s[0];
  const int copies = static_cast<int>(kColdBytes / layer_bytes) + 1;
  std::vector<Weights> w;
  for (const auto& s : shapes) {
    w.push_back(MakeWeights(type, s[0], s[1], RowBytes(type, s[1]) * s[0] * copies));
  }
  const std::vector<float> x = RandomVector(f, 2);
  std::vector<float> q(d), k(kv), v(kv), o(d), g(f), u(f), down(d);
  ThreadPool& pool = Pool();
  const size_t share = (layer_bytes / pool.size() + 127) / 128 * 128;
  const size_t read_copies = std::max<size_t>(2, kColdBytes / (share * pool.size()));
  const Buffer rd = Alloc(share * pool.size() * read_copies);
  std::memset(rd.get(), 1, share * pool.size() * read_copies);
  std::vector<double> mv, ratio;
  int i = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const MatView qkv[3] = {w[0].View(i), w[1].View(i), w[2].View(i)};
    float* const qkv_out[3] = {q.data(), k.data(), v.data()};
    if (shared) {  // as src/model/transformer.cc runs a layer
      MatMulShared(qkv, x.data(), 1, qkv_out, &pool);
    } else {
      for (int m = 0; m < 3; ++m) MatVec(qkv[m], x.data(), qkv_out[m], &pool);
    }
    MatVec(w[3].View(i), q.data(), o.data(), &pool);
    if (shared) {
      const MatView gu[2] = {w[4].View(i), w[5].View(i)};
      float* const gu_out[2] = {g.data(), u.data()};
      MatMulShared(gu, o.data(), 1, gu_out, &pool);
    } else {
      MatVec(w[4].View(i), o.data(), g.data(), &pool);
      MatVec(w[5].View(i), o.data(), u.data(), &pool);
    }
    MatVec(w[6].View(i), x.data(), down.data(), &pool);
    const auto t1 = std::chrono::steady_clock::now();
    const uint8_t* base = rd.get() + (i % read_copies) * share * pool.size();
    pool.RunOnAll([&](int t) { benchmark::DoNotOptimize(StreamRead(base + t * share, share)); });
    const auto t2 = std::chrono::steady_clock::now();
    ++i;
    mv.push_back(layer_bytes / std::chrono::duration<double>(t1 - t0).count());
    ratio.push_back(mv.back() / (share * pool.size() / std::chrono::duration<double>(t2 - t1).count()));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  state.counters["layer_GBps"] = median(mv) * 1e-9;
  state.counters["ratio"] = median(ratio);
  state.counters["threads"] = pool.size();
}

// Few tokens (batched decode, short prompts), weights streamed from DRAM: where the packed GEMM
// starts to beat the streaming kernel (kGemmMinTokens* in src/kernels/matmul_internal.h).
void BM_MatMulSmallN(benchmark::State& state, DType type) {
  const int64_t rows = 2048, cols = 2048, n = state.range(0);
  const Weights w = MakeWeights(type, rows, cols, kColdBytes / 2);
  const std::vector<float> x = RandomVector(cols * n, 2);
  std::vector<float> y(rows * n);
  int i = 0;
  for (auto _ : state) {
    MatMul(w.View(i++), x.data(), n, y.data(), &Pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

// Multi-threaded sum over 1 GiB: the ceiling for the MatVec bytes/s above.
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  static Buffer buf = [&] {
    Buffer b = Alloc(bytes);
    Pool().RunOnAll([&](int t) {
      const size_t share = bytes / Pool().size();
      std::memset(b.get() + t * share, 1, share);
    });
    return b;
  }();
  const size_t share = bytes / Pool().size() / 64 * 64;
  for (auto _ : state) {
    Pool().RunOnAll([&](int t) {
      benchmark::DoNotOptimize(StreamRead(buf.get() + t * share, share));
    });
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * share * Pool().size()));
  state.counters["threads"] = Pool().size();
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

const int kRegistered = [] {
  for (DType t : {DType::kQ8_0, DType::kQ8_0_R16, DType::kQ4_0, DType::kQ4_0_R16, DType::kF16,
                  DType::kBF16, DType::kF32}) {
    // Rows of 2048 (a layer's Q/K/V/O, gate and up, and the output) and of 8192 (down).
    for (const auto& s : {std::array<int64_t, 2>{8192, 2048}, std::array<int64_t, 2>{32000, 2048},
                          std::array<int64_t, 2>{2048, 8192}}) {
      const std::string name = "BM_MatVecVsRead/" + std::string(DTypeName(t)) + "/" +
                               std::to_string(s[0]) + "x" + std::to_string(s[1]);
      benchmark::RegisterBenchmark(name.c_str(), BM_MatVecVsRead, t, s[0], s[1])
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime()
          ->MinTime(1.0);
    }
  }
  for (DType t : {DType::kQ8_0, DType::kQ8_0_R16, DType::kQ4_0, DType::kQ4_0_R16}) {
    const std::string name = "BM_DecodeLayerVsRead/" + std::string(DTypeName(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_DecodeLayerVsRead, t)
        ->ArgName("shared")
        ->Arg(0)
        ->Arg(1)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime()
        ->MinTime(1.0);
  }
  const DType types[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0};
  const int64_t shapes[][2] = {{2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}, {32000, 2048}};
  for (DType t : types) {
    for (const auto& s : shapes) {
      const std::string name = "BM_MatVec/" + std::string(DTypeName(t)) + "/" +
                               std::to_string(s[0]) + "x" + std::to_string(s[1]);
      benchmark::RegisterBenchmark(name.c_str(), BM_MatVec, t, s[0], s[1], true)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
    // Same matrix every call: shows what cache-resident weights would allow.
    const std::string hot = "BM_MatVecHot/" + std::string(DTypeName(t)) + "/2048x2048";
    benchmark::RegisterBenchmark(hot.c_str(), BM_MatVec, t, 2048, 2048, false)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  for (DType t : types) {
    const std::string name = "BM_MatMulSmallN/" + std::string(DTypeName(t));
    benchmark::RegisterBenchmark(name.c_str(), BM_MatMulSmallN, t)
        ->DenseRange(1, 8)
        ->Arg(16)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  // Prefill GEMM, also over the R16 layouts the engine repacks Q8_0 / Q4_0 into when it loads
  // weights into memory (--no-mmap).
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ8_0_R16,
                  DType::kQ4_0_R16}) {
    for (const auto& s : {std::array<int64_t, 2>{2048, 2048}, std::array<int64_t, 2>{8192, 2048},
                          std::array<int64_t, 2>{2048, 8192}}) {
      const std::string name = "BM_MatMul/" + std::string(DTypeName(t)) + "/" +
                               std::to_string(s[0]) + "x" + std::to_string(s[1]) + "/n512";
      benchmark::RegisterBenchmark(name.c_str(), BM_MatMul, t, s[0], s[1], 512, false)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  for (DType t : {DType::kQ8_0, DType::kQ8_0_R16, DType::kQ4_0_R16}) {
    for (const auto& s : {std::array<int64_t, 2>{2048, 2048}, std::array<int64_t, 2>{2048, 8192}}) {
      const std::string name = "BM_MatMul/" + std::string(DTypeName(t)) + "/" +
                               std::to_string(s[0]) + "x" + std::to_string(s[1]) + "/n512/cold";
      benchmark::RegisterBenchmark(name.c_str(), BM_MatMul, t, s[0], s[1], 512, true)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  return 0;
}();

}  // namespace
}  // namespace kvc
