// Arithmetic peak of this machine, measured: what prefill (a compute-bound GEMM) is compared
// against. Each thread of the pool runs a loop of independent vector multiply-adds that never
// touches memory; the result is the total rate over all threads.
#pragma once

#include "threading/thread_pool.h"

namespace kvc {

struct ComputePeak {
  double f32_flop_s = 0;   // fp32 FMA: 2 flops per lane per instruction
  double int8_op_s = 0;    // int8 dot products (AVX-512 VNNI vpdpbusd: 2 ops per byte pair); 0 if absent
};

// Runs each probe for about `seconds` (median of 3 runs).
ComputePeak MeasureComputePeak(ThreadPool* pool, double seconds = 0.05);

}  // namespace kvc
