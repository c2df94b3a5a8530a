// MatVec / MatMul must not touch the heap once their scratch has grown (decode calls them
// hundreds of times per token). Counts operator new calls (core/heap_counter.h).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/heap_counter.h"
#include "kernels/matmul.h"
#include "quant/block_r16.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

TEST(MatMulAlloc, NoHeapAllocationAfterWarmUp) {
  const int64_t rows = 64, cols = 1024, n = 40;
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::vector<float> src(rows * cols), x(n * cols), y(n * rows);
  for (float& f : src) f = g(rng);
  for (float& f : x) f = g(rng);
  ThreadPool pool(2);
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                     DType::kQ8_0_R16, DType::kQ4_0_R16}) {
    // 64-byte aligned, as loaded weights are (the R16 layouts need 32); R16: repacked plain rows.
    const DType plain = IsR16(type) ? PlainLayout(type) : type;
    std::vector<uint8_t> storage(RowBytes(type, cols) * rows + 64);
    uint8_t* w = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
    for (int64_t r = 0; r < rows; ++r) {
      QuantizeRow(plain, src.data() + r * cols, w + r * RowBytes(plain, cols), cols);
    }
    if (IsR16(type)) RepackRowsInPlace(type, w, rows, cols);
    const MatView view{type, w, rows, cols};
    for (int64_t tokens : {int64_t{1}, int64_t{5}, n}) {  // warm-up grows every scratch
      MatMul(view, x.data(), tokens, y.data(), &pool);
    }
    const long before = testing::HeapAllocations();
    for (int i = 0; i < 3; ++i) {
      MatVec(view, x.data(), y.data(), &pool);
      MatMul(view, x.data(), 5, y.data(), &pool);
      MatMul(view, x.data(), n, y.data(), &pool);
    }
    EXPECT_EQ(testing::HeapAllocations() - before, 0) << DTypeName(type);
  }
}

}  // namespace
}  // namespace kvc
