// Portable scalar kernels: the fallback for builds without AVX-512, and the shape of the math
// the vector kernels implement (integer block dots for quantized weights).
#include "core/fp16.h"
#include "kernels/matmul_internal.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"
#include "quant/quantize.h"

namespace kvc::internal {
namespace {

// Eight partial sums let the compiler vectorize without reassociation flags.
float DotF32(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  }
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

float DotQ8Row(const BlockQ8_0* w, const ActBlocksView& x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* q = x.qs + b * kQK;
    int32_t s = 0;
    for (int i = 0; i < kQK; ++i) s += w[b].qs[i] * q[i];
    acc += F16ToF32(w[b].d) * x.d[b] * static_cast<float>(s);
  }
  return acc;
}

float DotQ4Row(const BlockQ4_0* w, const ActBlocksView& x, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* q = x.qs + b * kQK;
    int32_t s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += ((w[b].qs[j] & 0x0f) - 8) * q[j] + ((w[b].qs[j] >> 4) - 8) * q[j + kQK / 2];
    }
    acc += F16ToF32(w[b].d) * x.d[b] * static_cast<float>(s);
  }
  return acc;
}

}  // namespace

void GenericRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const MatView& w = a.w;
  const int64_t nb = w.cols / kQK;
  if (IsBlockQuantized(w.type)) {
    thread_local ScratchBuffer unpack_buf;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w.row(r);
      if (IsR16(w.type)) {  // back to plain blocks; the products are the same
        auto* plain = static_cast<uint8_t*>(unpack_buf.Get(w.row_bytes()));
        UnpackRow(w.type, row, plain, w.cols);
        row = plain;
      }
      for (int64_t t = 0; t < a.n; ++t) {
        const ActBlocksView xt = a.qx.Row(t);
        a.y[t * w.rows + r] = PlainLayout(w.type) == DType::kQ4_0
                                  ? DotQ4Row(reinterpret_cast<const BlockQ4_0*>(row), xt, nb)
                                  : DotQ8Row(reinterpret_cast<const BlockQ8_0*>(row), xt, nb);
      }
    }
    return;
  }
  // Float types: decode the row once (it stays in L1) and dot it with every token.
  thread_local ScratchBuffer row_buf;
  float* row = static_cast<float*>(row_buf.Get(w.cols * sizeof(float)));
  for (int64_t r = r0; r < r1; ++r) {
    DequantizeRow(w.type, w.row(r), row, w.cols);
    for (int64_t t = 0; t < a.n; ++t) a.y[t * w.rows + r] = DotF32(row, a.x + t * w.cols, w.cols);
  }
}

}  // namespace kvc::internal
