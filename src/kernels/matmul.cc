#include "kernels/matmul.h"

#include <vector>

#include "quant/quantize.h"

namespace kvc {

// Baseline: dequantize each weight row once and dot it with every token.
void MatMul(const MatView& w, const float* x, int64_t n, float* y, ThreadPool* pool) {
  pool->ParallelFor(w.rows, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> row(w.cols);
    for (int64_t r = r0; r < r1; ++r) {
      DequantizeRow(w.type, w.row(r), row.data(), w.cols);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x + t * w.cols;
        float s = 0;
        for (int64_t c = 0; c < w.cols; ++c) s += row[c] * xt[c];
        y[t * w.rows + r] = s;
      }
    }
  });
}

void MatVec(const MatView& w, const float* x, float* y, ThreadPool* pool) {
  MatMul(w, x, 1, y, pool);
}

}  // namespace kvc
