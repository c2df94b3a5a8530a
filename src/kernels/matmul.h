// Products of a weight matrix (any weight DType, read in place) with f32 activations.
//
// Kernels: AVX-512 (VNNI, VBMI, BF16 where the build targets them) with a portable scalar
// fallback. n below a few tokens streams every weight row once per call, two rows per thread
// in lockstep (decode is memory-bound); larger n packs 32-row panels into per-thread scratch and
// reuses them across 6-token register tiles (prefill is compute-bound). No heap allocation once
// the per-thread scratch has grown. Details and measurements: matmul_q_avx512.cc,
// matmul_gemm_avx512.cc, bench/matmul_bench.cc.
//
// Numerics (tests/kernels/matmul_test.cc checks these bounds against double references):
//  * F32 / F16 weights: exact weights, f32 accumulation: |err| <= gamma_k sum_i |w_i x_i|
//    (gamma_k = k u / (1 - k u), u = 2^-24, k <= cols + 16).
//  * BF16 weights, AVX512-BF16 builds: x is rounded to bf16 for vdpbf16ps (as llama.cpp does),
//    adding at most 2^-9 sum_i |w_i x_i|.
//  * Q8_0 / Q4_0 weights: x is quantized once per call and token to int8 blocks of 32,
//    x^_i = d_b q_i with d_b = absmax_b / 127, q_i = round(x_i / d_b), so |x_i - x^_i| <= d_b / 2;
//    the products are exact integer block dots scaled in f32. Hence
//      |y - W x| <= sum_b (d_b / 2) sum_{i in b} |w_i|  +  f32 rounding of the scaled block sums,
//    i.e. a relative error of about 1 / 254 of the block maxima, well under the weights' own
//    quantization error (the same scheme as llama.cpp's Q8_0 activations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "tensor/mat_view.h"
#include "threading/thread_pool.h"

namespace kvc {

// y[r] = sum_c W[r, c] * x[c].  x: [w.cols] f32, y: [w.rows] f32. Rows split across the pool.
void MatVec(const MatView& w, const float* x, float* y, ThreadPool* pool);

// Y[t, r] = sum_c W[r, c] * X[t, c] for n tokens.  X: [n, w.cols], Y: [n, w.rows], row-major f32.
// With n == 1 this is MatVec. Y must not alias X.
void MatMul(const MatView& w, const float* x, int64_t n, float* y, ThreadPool* pool);

// MatMul(ws[i], x, n, ys[i]) for every i, as one parallel loop over all their rows: the input is
// quantized once, and decode pays one dispatch and one barrier instead of one per matrix (for
// a layer's Q, K and V, or its gate and up projections). All have X's width; matrices of
// different types fall back to one MatMul each.
constexpr size_t kMaxSharedProducts = 4;
void MatMulShared(std::span<const MatView> ws, const float* x, int64_t n, std::span<float* const> ys,
                  ThreadPool* pool);

// The layout this build's decode kernel streams fastest for w, when it differs from w's own:
// Q8_0 -> Q8_0_R16 and Q4_0 -> Q4_0_R16 on AVX-512 VNNI builds for rows of whole 16-block
// groups (quant/block_r16.h),
// else nullopt. Loaders that own the weight bytes repack them once.
std::optional<DType> PreferredLayout(const MatView& w);

}  // namespace kvc
