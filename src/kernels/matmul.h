// Products of a weight matrix (any weight DType, read in place) with f32 activations.
#pragma once

#include <cstdint>

#include "tensor/mat_view.h"
#include "threading/thread_pool.h"

namespace kvc {

// y[r] = sum_c W[r, c] * x[c].  x: [w.cols] f32, y: [w.rows] f32. Rows split across the pool.
void MatVec(const MatView& w, const float* x, float* y, ThreadPool* pool);

// Y[t, r] = sum_c W[r, c] * X[t, c] for n tokens.  X: [n, w.cols], Y: [n, w.rows], row-major f32.
// With n == 1 this is MatVec.
void MatMul(const MatView& w, const float* x, int64_t n, float* y, ThreadPool* pool);

}  // namespace kvc
