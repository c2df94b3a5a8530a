#include "kernels/peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#if defined(__AVX512VNNI__)
#include <immintrin.h>
#endif

namespace kvc {
namespace {

// 16 float lanes: zmm on AVX-512, two ymm on AVX2 (the compiler splits the vector).
typedef float F32x16 __attribute__((vector_size(64)));

constexpr int kChains = 12;  // independent accumulators: enough to hide FMA latency on 2 ports

// `iters` x kChains FMAs of 16 lanes. The multiplier keeps values bounded (no denormals/inf).
// noipa: the optimizer must not see that the calibration run discards the result.
[[gnu::noipa]] float FmaLoop(int64_t iters, float seed) {
  F32x16 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = F32x16{} + seed * (c + 1);
  const F32x16 mul = F32x16{} + 0.999999f, add = F32x16{} + 1e-7f;
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * mul + add;
  }
  F32x16 s{};
  for (int c = 0; c < kChains; ++c) s += acc[c];
  float r = 0;
  for (int i = 0; i < 16; ++i) r += s[i];
  return r;
}

#if defined(__AVX512VNNI__)
// `iters` x kChains vpdpbusd (64 byte pairs each).
[[gnu::noipa]] int32_t DotLoop(int64_t iters, int32_t seed) {
  __m512i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(seed + c);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(-1);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
  }
  __m512i s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_epi32(s, acc[c]);
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, s);
  uint32_t total = 0;
  for (uint32_t v : lanes) total += v;  // unsigned: wraps; only the loop's liveness matters
  return static_cast<int32_t>(total & 0x7fffffff);
}
#endif

// Runs body(iters) on every thread at once; returns total operations per second, where one
// iteration is `ops_per_iter` operations. Iterations are calibrated to last about `seconds`.
template <typename Body>
double Rate(ThreadPool* pool, double seconds, double ops_per_iter, Body&& body) {
  using Clock = std::chrono::steady_clock;
  int64_t iters = 1 << 12;
  for (;;) {  // calibrate on one thread
    const auto t0 = Clock::now();
    body(iters);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt > seconds / 4) {
      iters = static_cast<int64_t>(iters * seconds / dt);
      break;
    }
    iters *= 4;
  }
  std::vector<double> rates;
  for (int run = 0; run < 3; ++run) {
    std::atomic<int64_t> sink{0};
    const auto t0 = Clock::now();
    pool->RunOnAll([&](int) { sink += static_cast<int64_t>(body(iters)); });
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(ops_per_iter * iters * pool->size() / dt);
  }
  std::sort(rates.begin(), rates.end());
  return rates[1];
}

}  // namespace

ComputePeak MeasureComputePeak(ThreadPool* pool, double seconds) {
  ComputePeak p;
  p.f32_flop_s = Rate(pool, seconds, 2.0 * 16 * kChains, [](int64_t n) { return FmaLoop(n, 0.5f); });
#if defined(__AVX512VNNI__)
  p.int8_op_s = Rate(pool, seconds, 2.0 * 64 * kChains, [](int64_t n) { return DotLoop(n, 1); });
#endif
  return p;
}

}  // namespace kvc
