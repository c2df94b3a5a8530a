// The compute-peak probe measures something plausible: any x86-64 core does more than 1 GFLOP/s
// of fp32 FMAs, and far less than a petaflop.
#include <gtest/gtest.h>

#include "kernels/peak.h"

namespace kvc {
namespace {

TEST(ComputePeak, PlausibleRates) {
  ThreadPool pool(2);
  const ComputePeak p = MeasureComputePeak(&pool, 0.01);
  EXPECT_GT(p.f32_flop_s, 1e9);
  EXPECT_LT(p.f32_flop_s, 1e15);
#if defined(__AVX512VNNI__)
  EXPECT_GT(p.int8_op_s, p.f32_flop_s);  // 64 byte pairs per instruction against 16 lanes
#else
  EXPECT_EQ(p.int8_op_s, 0);
#endif
}

}  // namespace
}  // namespace kvc
