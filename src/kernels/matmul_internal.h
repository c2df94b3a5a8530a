// Internals shared by the matmul implementation files: scratch buffers, quantized activations
// and the per-ISA kernel entry points that matmul.cc dispatches to.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "quant/act_quant.h"
#include "quant/block_r16.h"
#include "tensor/mat_view.h"
#include "threading/thread_pool.h"

namespace kvc::internal {

// A 64-byte aligned byte buffer that only grows, so per-call scratch stops allocating after
// warm-up. Used as thread_local.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // Returns at least `bytes` bytes (contents unspecified).
  void* Get(size_t bytes) {
    if (bytes > capacity_) {
      std::free(data_);
      capacity_ = (bytes + 4095) & ~size_t{4095};
      data_ = std::aligned_alloc(64, capacity_);
      if (data_ == nullptr) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// Activation blocks are padded to this many elements (16 blocks) so that vector kernels can
// process whole groups of 16 block scales; the padding is zero (qs, d and sum).
constexpr int64_t kActGroup = 512;

inline int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// n quantized activation rows, row t at qs + t * stride (stride = padded cols).
struct QuantizedActs {
  const int8_t* qs = nullptr;    // [n][stride]
  const float* d = nullptr;      // [n][stride / 32]
  const int32_t* sum = nullptr;  // [n][stride / 32]
  int64_t stride = 0;

  ActBlocksView Row(int64_t t) const {
    const int64_t nb = stride / kActBlock;
    return {qs + t * stride, d + t * nb, sum + t * nb};
  }
};

// Quantizes X [n, cols] (cols a multiple of 32) into `buf` with zero padding to kActGroup;
// tokens are split across `pool` when there are many.
QuantizedActs QuantizeActs(const float* x, int64_t n, int64_t cols, ScratchBuffer* buf,
                           ThreadPool* pool = nullptr);

// Activations of 4 blocks laid out for Q4_0 weights (see matmul_q_avx512.cc): the first and the
// second 16 values of each block, the lane offsets and the lane scales.
struct alignas(64) Q4ActUnit {
  int8_t lo[64];
  int8_t hi[64];
  int32_t init[16];
  float dx[16];
};

// Activations of one group of 16 blocks laid out for Q8_0_R16 / Q4_0_R16 weights
// (quant/block_r16.h): vector k, lane l holds elements [4 k, 4 k + 4) of block l (for Q4_0, the
// low nibbles of weight vector k meet activation vector k, the high ones vector k + 4), and each
// block's -offset * sum, where its integer accumulator starts (the weights are fed as w +
// offset: 128 for Q8_0, 8 for Q4_0).
struct alignas(64) R16ActGroup {
  int8_t qs[kR16GroupElems];
  int32_t init[16];
};

// Kernel entry points. Each computes y for rows [r0, r1) of w and all n tokens; X is given as
// f32 and (for quantized weights) quantized. Y is [n, w.rows].
struct MatMulArgs {
  MatView w;
  const float* x = nullptr;   // [n, w.cols]
  QuantizedActs qx;           // set for block-quantized weights
  const uint16_t* xbf = nullptr;  // [n, xbf_stride] bf16 copy of X, set for BF16 when used
  int64_t xbf_stride = 0;
  const Q4ActUnit* xq4 = nullptr;  // [n, xq4_stride] set for Q4_0 on VNNI builds
  int64_t xq4_stride = 0;
  const R16ActGroup* xr16 = nullptr;  // [n, xr16_stride] set for the R16 layouts on VNNI builds
  int64_t xr16_stride = 0;
  int64_t n = 0;
  float* y = nullptr;
  // The streaming kernels' row streams are the near-equal parts of rows [lane_begin, lane_end):
  // the share of the parallel loop that the given range of rows belongs to (MatMulShared).
  int64_t lane_begin = 0, lane_end = 0;
};

using RowsFn = void (*)(const MatMulArgs& a, int64_t r0, int64_t r1);

// What the integer kernels add to the weights of a block type (and its R16 layout) to feed them
// to vpdpbusd as unsigned bytes: Q8_0 w + 128, Q4_0 the raw nibble w + 8. Their accumulators
// start at -offset * sum(x) to take it out again.
inline int32_t UnsignedWeightOffset(DType t) { return PlainLayout(t) == DType::kQ4_0 ? 8 : 128; }

// Streaming row order for [r0, r1): the S near-equal parts ("lanes") of [a.lane_begin,
// a.lane_end) are read in lockstep, so every thread reads S interleaved sequential streams. Unit
// k of the lane range is row k / S of lane k % S (past S rows per lane, the longer lanes' last
// rows), and [r0, r1) is a range of units: a thread's successive claims on its share (whose part
// of the matrix is the lane range) continue its streams where the last claim stopped, instead
// of starting S new ones. Rows a claim leaves incomplete at either end go one by one. Two
// streams measured faster from DRAM than one, and than four or more, for rows of up to 4096
// weights; for rows of 8192 (the down projection) four were faster than two for some kernels
// (ForRowStreamsByWidth, docs/BENCHMARKS.md). Tokens loop inside, so for small n each row comes
// from DRAM once, then from L1. dot.operator()<R>(rows, t, y) computes R rows for token t into
// y[0..R).
template <int S, typename Dot>
void ForRowStreams(const MatMulArgs& a, int64_t r0, int64_t r1, Dot&& dot) {
  const int64_t lb = a.lane_begin, le = a.lane_end;
  const int64_t per_lane = (le - lb) / S, longer = (le - lb) % S, whole = S * per_lane;
  auto row_of = [&](int64_t k) {
    const int64_t s = k < whole ? k % S : k - whole, i = k < whole ? k / S : per_lane;
    return lb + s * per_lane + std::min(s, longer) + i;
  };
  auto run = [&]<int R>(const int64_t* r) {
    const uint8_t* rows[R];
    for (int s = 0; s < R; ++s) rows[s] = a.w.row(r[s]);
    for (int64_t t = 0; t < a.n; ++t) {
      float* y[R];
      for (int s = 0; s < R; ++s) y[s] = a.y + t * a.w.rows + r[s];
      dot.template operator()<R>(rows, t, y);
    }
  };
  const int64_t k1 = r1 - lb, full_end = std::min(k1, whole);
  for (int64_t k = r0 - lb; k < k1;) {
    int64_t r[S];
    if (k % S == 0 && k + S <= full_end) {
      for (int s = 0; s < S; ++s) r[s] = row_of(k + s);
      run.template operator()<S>(r);
      k += S;
    } else {
      r[0] = row_of(k++);
      run.template operator()<1>(r);
    }
  }
}

template <typename Dot>
void ForRowPairs(const MatMulArgs& a, int64_t r0, int64_t r1, Dot&& dot) {
  ForRowStreams<2>(a, r0, r1, dot);
}

// Two streams, or four for rows of at least kWideRow weights: for the kernels that measured
// faster so (float rows and the R16 layouts; the plain Q8_0 / Q4_0 kernels, which need more
// registers per row, measured slower).
constexpr int64_t kWideRow = 8192;
template <typename Dot>
void ForRowStreamsByWidth(const MatMulArgs& a, int64_t r0, int64_t r1, Dot&& dot) {
  if (a.w.cols >= kWideRow) {
    ForRowStreams<4>(a, r0, r1, dot);
  } else {
    ForRowStreams<2>(a, r0, r1, dot);
  }
}

// Portable scalar kernels (always built).
void GenericRows(const MatMulArgs& a, int64_t r0, int64_t r1);

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__)
#define KVC_MATMUL_AVX512 1
// Unpacked (streaming) kernels: every weight byte is read once; tokens loop inside each small
// group of rows, which stays in L1. Best for decode and small n.
void Avx512RowsQ(const MatMulArgs& a, int64_t r0, int64_t r1);      // needs VNNI
void Avx512RowsFloat(const MatMulArgs& a, int64_t r0, int64_t r1);  // F32/F16/BF16
// Packed (GEMM) kernels for prefill: rows [r0, r1) are packed panel by panel into a
// 16-row-interleaved layout in per-thread scratch and reused across all n tokens.
// p0, p1: panels of kGemmPanelRows rows.
void Avx512PackedGemm(const MatMulArgs& a, int64_t p0, int64_t p1);
constexpr int64_t kGemmPanelRows = 32;
// From this many tokens on, packing pays for itself (single-thread crossover with weights
// streamed from DRAM, 2048 x 2048; BM_MatMulSmallN in bench/matmul_bench.cc).
constexpr int64_t kGemmMinTokensQuant = 6;
constexpr int64_t kGemmMinTokensFloat = 5;
#endif

#if defined(KVC_MATMUL_AVX512) && defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#define KVC_MATMUL_VNNI 1
// Repacks quantized activations for the Q4_0 kernel (once per call).
const Q4ActUnit* PackActsQ4(const QuantizedActs& q, int64_t n, int64_t cols, ScratchBuffer* buf,
                            int64_t* stride);
// Repacks quantized activations for the R16 kernels (once per call; cols % 512 == 0), the
// accumulators starting at -offset * sum (weights fed as w + offset).
const R16ActGroup* PackActsR16(const QuantizedActs& q, int64_t n, int64_t cols, int32_t offset,
                               ScratchBuffer* buf, int64_t* stride);
#endif
#if defined(KVC_MATMUL_AVX512) && defined(__AVX512BF16__)
#define KVC_MATMUL_BF16 1
#endif

}  // namespace kvc::internal
