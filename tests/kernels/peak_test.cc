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
  // 64 byte pairs per instruction against 16 lanes; timing under sanitizers or a busy machine
  // is too rough to compare the two rates, so only plausibility.
  EXPECT_GT(p.int8_op_s, 1e9);
#else
  EXPECT_EQ(p.int8_op_s, 0);
#endif
}

}  // namespace
}  // namespace kvc
