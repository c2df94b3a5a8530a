// Dispatch: quantizes/converts the activations once per call, then splits rows across the pool
// and runs the best kernel the build's ISA allows.
#include "kernels/matmul.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/fp16.h"
#include "core/status.h"
#include "kernels/matmul_internal.h"
#include "quant/block_r16.h"

#if defined(KVC_MATMUL_BF16)
#include <immintrin.h>
#endif

namespace kvc {
namespace internal {

#if defined(KVC_MATMUL_VNNI)
constexpr bool kVnni = true;
#else
constexpr bool kVnni = false;
#endif

QuantizedActs QuantizeActs(const float* x, int64_t n, int64_t cols, ScratchBuffer* buf,
                           ThreadPool* pool) {
  const int64_t stride = RoundUp(cols, kActGroup);
  const int64_t nb = stride / kActBlock;
  const size_t qs_bytes = static_cast<size_t>(n * stride);
  const size_t d_bytes = static_cast<size_t>(n * nb) * sizeof(float);
  auto* base = static_cast<uint8_t*>(buf->Get(qs_bytes + 2 * d_bytes));
  auto* qs = reinterpret_cast<int8_t*>(base);
  auto* d = reinterpret_cast<float*>(base + qs_bytes);
  auto* sum = reinterpret_cast<int32_t*>(base + qs_bytes + d_bytes);
  const int64_t nb_used = cols / kActBlock;
  auto rows = [=](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      QuantizeActsQ8(x + t * cols, cols, qs + t * stride, d + t * nb, sum + t * nb);
      std::memset(qs + t * stride + cols, 0, stride - cols);
      std::memset(d + t * nb + nb_used, 0, (nb - nb_used) * sizeof(float));
      std::memset(sum + t * nb + nb_used, 0, (nb - nb_used) * sizeof(int32_t));
    }
  };
  if (pool != nullptr && n >= 8) {
    const auto* rp = &rows;
    pool->ParallelFor(n, [rp](int64_t t0, int64_t t1, int) { (*rp)(t0, t1); });
  } else {
    rows(0, n);
  }
  return {qs, d, sum, stride};
}

namespace {

#if defined(KVC_MATMUL_BF16)
// X as bf16 (round to nearest even), rows padded to 32 elements with zeros.
const uint16_t* ConvertToBf16(const float* x, int64_t n, int64_t cols, int64_t stride,
                              ScratchBuffer* buf) {
  auto* out = static_cast<uint16_t*>(buf->Get(static_cast<size_t>(n * stride) * 2));
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * cols;
    uint16_t* ot = out + t * stride;
    for (int64_t c = 0; c < stride; c += 16) {
      const int64_t left = cols - c;
      const __mmask16 m = left >= 16 ? __mmask16(0xffff)
                          : left > 0 ? __mmask16((1u << left) - 1)
                                     : __mmask16(0);
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, xt + c));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ot + c), (__m256i)h);
    }
  }
  return out;
}
#endif

}  // namespace
}  // namespace internal

namespace {

// One product's kernel and its share of the shared parallel loop.
struct Product {
  internal::MatMulArgs args;
  internal::RowsFn fn;
  int64_t units;  // rows, or panels of rows for the packed kernels
};

}  // namespace

void MatMulShared(std::span<const MatView> ws, const float* x, int64_t n, std::span<float* const> ys,
                  ThreadPool* pool) {
  using namespace internal;
  KVC_CHECK(ws.size() == ys.size() && ws.size() <= kMaxSharedProducts);
  if (n <= 0 || ws.empty()) return;
  const DType type = ws[0].type;
  const int64_t cols = ws[0].cols;
  for (const MatView& w : ws) {
    KVC_CHECK(w.cols == cols);
    if (w.type != type) {  // the input is prepared differently for each: one loop each
      for (size_t i = 0; i < ws.size(); ++i) MatMul(ws[i], x, n, ys[i], pool);
      return;
    }
  }
  // Scratch lives on the calling thread and is reused by every later call.
  thread_local ScratchBuffer act_buf;
  MatMulArgs a;
  a.x = x;
  a.n = n;
  const bool quantized = IsBlockQuantized(type);
  if (quantized) a.qx = QuantizeActs(x, n, cols, &act_buf, pool);

  RowsFn rows_fn = GenericRows;
  int64_t rows_per_unit = 1;
  double work_per_unit = static_cast<double>(n) * cols;
#if defined(KVC_MATMUL_AVX512)
  if (!quantized) rows_fn = Avx512RowsFloat;
#endif
#if defined(KVC_MATMUL_VNNI)
  if (quantized) rows_fn = Avx512RowsQ;
#endif
#if defined(KVC_MATMUL_AVX512)
  const bool gemm =
      n >= (quantized ? kGemmMinTokensQuant : kGemmMinTokensFloat) && (!quantized || kVnni);
  if (gemm) {
    rows_fn = Avx512PackedGemm;
    rows_per_unit = kGemmPanelRows;
    work_per_unit *= kGemmPanelRows;
  }
#else
  [[maybe_unused]] constexpr bool gemm = false;
#endif
#if defined(KVC_MATMUL_VNNI)
  // The streaming kernels' activation layouts (the packed GEMM reads a.qx): packing them for a
  // prefill took 2% of its GEMM time, on one thread.
  thread_local ScratchBuffer packed_acts_buf;
  if (!gemm && type == DType::kQ4_0) a.xq4 = PackActsQ4(a.qx, n, cols, &packed_acts_buf, &a.xq4_stride);
  if (!gemm && IsR16(type)) {
    a.xr16 = PackActsR16(a.qx, n, cols, UnsignedWeightOffset(type), &packed_acts_buf,
                         &a.xr16_stride);
  }
#endif
#if defined(KVC_MATMUL_BF16)
  if (type == DType::kBF16) {
    a.xbf_stride = RoundUp(cols, 32);
    a.xbf = ConvertToBf16(x, n, cols, a.xbf_stride, &act_buf);
  }
#endif

  // The products' units are numbered one after another, so a thread's share may span two
  // matrices and one dispatch (and one barrier) serves them all.
  std::array<Product, kMaxSharedProducts> products;
  int64_t total = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    products[i] = {a, rows_fn, (ws[i].rows + rows_per_unit - 1) / rows_per_unit};
    products[i].args.w = ws[i];
    products[i].args.y = ys[i];
    total += products[i].units;
  }
  const int64_t grain = ThreadPool::GrainFor(work_per_unit);
  const size_t count = ws.size();
  const int parts = pool->Parts(total, grain);
  // A claim lies in one share. The streaming kernels' streams run through the share's part of each
  // matrix (MatMulArgs::lane_begin), so the share's claims continue them (ForRowStreams).
  const auto claim = [&](int64_t u0, int64_t u1, int) {
    int64_t sb = 0, se = 0;
    for (int t = 0; t < parts && se <= u0; ++t) SplitRange(total, parts, t, &sb, &se);
    int64_t first = 0;
    for (size_t i = 0; i < count && first < u1; ++i) {
      const Product& p = products[i];
      const int64_t b = std::max(u0, first), e = std::min(u1, first + p.units);
      if (b < e) {
        MatMulArgs args = p.args;
        args.lane_begin = std::max(sb, first) - first;
        args.lane_end = std::min(se, first + p.units) - first;
        p.fn(args, b - first, e - first);
      }
      first += p.units;
    }
  };
  pool->ParallelFor(total, claim, grain);
}

void MatMul(const MatView& w, const float* x, int64_t n, float* y, ThreadPool* pool) {
  float* const ys[1] = {y};
  MatMulShared(std::span<const MatView>(&w, 1), x, n, ys, pool);
}

std::optional<DType> PreferredLayout(const MatView& w) {
  if (internal::kVnni && (w.type == DType::kQ8_0 || w.type == DType::kQ4_0) &&
      CanRepackR16(w.cols) && reinterpret_cast<uintptr_t>(w.data) % 32 == 0) {
    return w.type == DType::kQ8_0 ? DType::kQ8_0_R16 : DType::kQ4_0_R16;
  }
  return std::nullopt;
}

void MatVec(const MatView& w, const float* x, float* y, ThreadPool* pool) {
  MatMul(w, x, 1, y, pool);
}

}  // namespace kvc
