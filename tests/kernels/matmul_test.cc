// MatVec / MatMul for every weight type against naive double-precision references.
//
// Tolerances are deterministic bounds computed from the data, so they never flake and stay
// tight enough to catch a wrong element, block or sign:
//  * Float types: f32 accumulation, |err| <= gamma_k * sum|w_i x_i| with gamma_k = k u / (1 - k u)
//    and k = cols + 16 covering the longest accumulation chain of every kernel (a GEMM lane sums
//    a whole row in sequence; u = 2^-24).
//    BF16 kernels may round x to bf16 first (as vdpbf16ps needs): + 2^-8 sum|w_i x_i|.
//  * Q8_0 / Q4_0: x is quantized to int8 blocks x^ = d_b q (d_b = absmax_b / 127), so
//    |x_i - x^_i| <= d_b / 2 and |y - W x| <= sum_i |w_i| |x_i - x^_i| + (f32 rounding of the
//    integer-domain result, bounded as above with the block-offset terms included). The test
//    asserts both the exact-quantized product (tight) and the f32-reference product (that bound).
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <new>
#include <random>
#include <tuple>
#include <vector>

#include "core/fp16.h"
#include "quant/act_quant.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

constexpr double kU32 = 1.0 / (1 << 24);

double Gamma(int64_t k) { return k * kU32 / (1 - k * kU32); }

bool IsQuant(DType t) { return IsBlockQuantized(t); }

// Weight bytes 64-byte aligned, as tensor data in memory is (the R16 layouts need 32).
template <typename T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <typename U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const Aligned64&) const { return true; }
};
using Bytes = std::vector<uint8_t, Aligned64<uint8_t>>;

// Random weights of `type`: Gaussian rows through the reference quantizer, plus (quantized types)
// some rows of raw random blocks so that every code value (Q8_0 -128 included) is exercised.
Bytes MakeWeights(DType type, int64_t rows, int64_t cols, std::mt19937* rng) {
  if (IsR16(type)) {  // the plain cases, repacked
    Bytes w = MakeWeights(PlainLayout(type), rows, cols, rng);
    RepackRowsInPlace(type, w.data(), rows, cols);
    return w;
  }
  const size_t rb = RowBytes(type, cols);
  Bytes w(rb * rows);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> src(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = r % 5 == 4 ? 1e-3f : 1.0f;
    for (float& f : src) f = g(*rng) * scale;
    if (r % 7 == 3) std::fill(src.begin(), src.begin() + std::min<int64_t>(32, cols), 0.0f);  // a zero block
    QuantizeRow(type, src.data(), w.data() + r * rb, cols);
    if (IsQuant(type) && r % 3 == 1) {
      const int bb = TraitsOf(type).block_bytes;
      for (size_t i = 0; i < rb; ++i) w[r * rb + i] = static_cast<uint8_t>((*rng)());
      for (size_t b = 0; b < rb; b += bb) {  // finite scales in [2^-10, 2^-2)
        const uint16_t d = F32ToF16(std::ldexp(1.0f + ((*rng)() % 1000) / 1000.0f, -10 + (*rng)() % 8));
        std::memcpy(&w[r * rb + b], &d, 2);
      }
    }
  }
  return w;
}

std::vector<float> MakeActs(int64_t n, int64_t cols, std::mt19937* rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n * cols);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t blk = c / 32;
      float v = g(*rng);
      if (blk % 4 == 1) v *= 100.0f;     // outlier block
      if (blk % 9 == 5) v = 0.0f;        // all-zero block (scale 0)
      if (c % 97 == 13) v *= 30.0f;      // isolated outliers inside normal blocks
      x[t * cols + c] = v;
    }
  }
  return x;
}

// Integer weights of block b of a quantized row; returns the block scale.
double BlockInts(DType type, const uint8_t* row, int64_t nb, int64_t b, int* wq) {
  if (type == DType::kQ8_0) {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
    for (int i = 0; i < 32; ++i) wq[i] = blk->qs[i];
    return F16ToF32(blk->d);
  }
  if (type == DType::kQ8_0_R16) {  // via the plain block the row was repacked from
    const BlockQ8_0 blk = R16Block<BlockQ8_0>(row, nb, b);
    for (int i = 0; i < 32; ++i) wq[i] = blk.qs[i];
    return F16ToF32(blk.d);
  }
  const BlockQ4_0 blk = type == DType::kQ4_0_R16 ? R16Block<BlockQ4_0>(row, nb, b)
                                                 : reinterpret_cast<const BlockQ4_0*>(row)[b];
  for (int j = 0; j < 16; ++j) {
    wq[j] = (blk.qs[j] & 0x0f) - 8;
    wq[j + 16] = (blk.qs[j] >> 4) - 8;
  }
  return F16ToF32(blk.d);
}

struct Case {
  DType type;
  int64_t rows, cols, n;
  int threads;
};

void CheckProduct(const Case& c, uint32_t seed) {
  if (IsR16(c.type) && !CanRepackR16(c.cols)) return;  // only whole 16-block groups
  SCOPED_TRACE(::testing::Message() << DTypeName(c.type) << " rows=" << c.rows << " cols="
                                    << c.cols << " n=" << c.n << " threads=" << c.threads);
  std::mt19937 rng(seed);
  const Bytes wbytes = MakeWeights(c.type, c.rows, c.cols, &rng);
  const std::vector<float> x = MakeActs(c.n, c.cols, &rng);
  const MatView w{c.type, wbytes.data(), c.rows, c.cols};
  std::vector<float> y(c.rows * c.n, NAN);
  ThreadPool pool(c.threads);
  if (c.n == 1) {
    MatVec(w, x.data(), y.data(), &pool);
  } else {
    MatMul(w, x.data(), c.n, y.data(), &pool);
  }

  // Quantized activations, as the kernels see them (the reference quantizer is bit-identical).
  const int64_t nb = c.cols / 32;
  std::vector<int8_t> qs(c.cols);
  std::vector<float> dx(nb);
  std::vector<int32_t> sx(nb);
  std::vector<float> wrow(c.cols);
  const double offset = c.type == DType::kQ4_0 ? 8 : 128;  // bias making weights unsigned
  const int64_t k = c.cols + 16;
  for (int64_t t = 0; t < c.n; ++t) {
    const float* xt = x.data() + t * c.cols;
    if (IsQuant(c.type)) QuantizeActsQ8Ref(xt, c.cols, qs.data(), dx.data(), sx.data());
    for (int64_t r = 0; r < c.rows; ++r) {
      DequantizeRow(c.type, w.row(r), wrow.data(), c.cols);
      double ref = 0, abs_sum = 0;
      for (int64_t i = 0; i < c.cols; ++i) {
        ref += static_cast<double>(wrow[i]) * xt[i];
        abs_sum += std::fabs(static_cast<double>(wrow[i]) * xt[i]);
      }
      const float got = y[t * c.rows + r];
      ASSERT_TRUE(std::isfinite(got)) << "row " << r << " token " << t;
      if (!IsQuant(c.type)) {
        double tol = Gamma(k) * abs_sum + 1e-30;
        if (c.type == DType::kBF16) tol += abs_sum / 256;
        ASSERT_LE(std::fabs(got - ref), tol) << "row " << r << " token " << t << " ref " << ref;
        continue;
      }
      // Exact product with the quantized activations, and the f32 rounding bound of computing it
      // as dw dx (integer dot of w + offset) - offset dw dx sum(q): every rounded term is at most
      // |dw dx| sum_i (|w_i| + offset) |q_i|.
      double exact = 0, round_terms = 0, act_err = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int wq[32];
        const double dw = BlockInts(c.type, w.row(r), nb, b, wq);
        double dot = 0, mag = 0;
        for (int i = 0; i < 32; ++i) {
          const int q = qs[b * 32 + i];
          dot += static_cast<double>(wq[i]) * q;
          mag += (std::abs(wq[i]) + offset) * std::abs(q);
          act_err += std::fabs(wrow[b * 32 + i]) *
                     std::fabs(xt[b * 32 + i] - static_cast<double>(dx[b]) * q);
        }
        exact += dw * dx[b] * dot;
        round_terms += std::fabs(dw) * dx[b] * mag;
      }
      // Quantized kernels add one term per block and lane: chains of at most cols / 32 + 10.
      const double tight = Gamma(c.cols / 16 + 16) * round_terms + 1e-30;
      ASSERT_LE(std::fabs(got - exact), tight) << "row " << r << " token " << t;
      ASSERT_LE(std::fabs(got - ref), tight + act_err * (1 + 1e-6)) << "row " << r;
    }
  }
}

const DType kTypes[] = {DType::kF32,  DType::kF16,      DType::kBF16,    DType::kQ8_0,
                        DType::kQ4_0, DType::kQ8_0_R16, DType::kQ4_0_R16};

class MatVecTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatVecTest, ShapesAndThreads) {
  const int64_t rows_list[] = {1, 3, 4, 5, 17, 64, 67};
  const int64_t cols_list[] = {32, 64, 96, 480, 512, 544, 1056, 4096};
  uint32_t seed = 1;
  for (int threads : {1, 2, 3}) {
    for (int64_t rows : rows_list) {
      for (int64_t cols : cols_list) {
        CheckProduct({GetParam(), rows, cols, 1, threads}, seed++);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(MatVecTest, OddColumnsForFloatTypes) {
  if (IsQuant(GetParam())) GTEST_SKIP() << "block types need cols % 32 == 0";
  for (int64_t cols : {1, 7, 15, 17, 33, 63, 100, 1000}) {
    CheckProduct({GetParam(), 9, cols, 1, 2}, 100 + static_cast<uint32_t>(cols));
    if (HasFatalFailure()) return;
  }
}

TEST_P(MatVecTest, LargeShape) { CheckProduct({GetParam(), 300, 2048, 1, 2}, 7); }

// Shares of several claims each, whose streams continue from claim to claim (ForRowStreams), with
// lanes of unequal length; one and three tokens.
TEST_P(MatVecTest, ManyRowsOnSeveralThreads) {
  uint32_t seed = 40;
  for (int threads : {2, 3}) {
    for (int64_t n : {1, 3}) {
      CheckProduct({GetParam(), 1001, 1024, n, threads}, seed++);
      if (HasFatalFailure()) return;
    }
  }
}

// Rows of 8192 weights stream four at a time on some kernels: row counts that leave one to three
// rows over, one and two threads, one and three tokens.
TEST_P(MatVecTest, WideRows) {
  uint32_t seed = 70;
  for (int64_t rows : {1, 2, 3, 5, 7, 38}) {
    for (int threads : {1, 2}) {
      CheckProduct({GetParam(), rows, 8192, rows % 2 ? 1 : 3, threads}, seed++);
      if (HasFatalFailure()) return;
    }
  }
}

class MatMulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatMulTest, TokensShapesAndThreads) {
  uint32_t seed = 1000;
  for (int64_t n = 2; n <= 17; ++n) {
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{5, 64}, {33, 544},
                                     {70, 1024}, {16, 32}, {47, 4096}}) {
      CheckProduct({GetParam(), rows, cols, n, static_cast<int>(n % 3 + 1)}, seed++);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_P(MatMulTest, PrefillSized) {
  CheckProduct({GetParam(), 100, 1024, 64, 2}, 11);
  if (HasFatalFailure()) return;
  CheckProduct({GetParam(), 35, 96, 37, 3}, 12);
  if (HasFatalFailure()) return;
  // Rows longer than the GEMM's K chunk (4096 columns): two whole chunks and a partial one, and
  // a partial second panel.
  CheckProduct({GetParam(), 40, 8704, 13, 2}, 13);
}

TEST_P(MatMulTest, MatchesMatVecPerToken) {
  // Each token of a product equals that token alone up to both kernels' f32 rounding:
  // |a - b| <= 2 gamma_k S, S bounding the magnitudes of the rounded terms (|q dx| <= |x| + dx
  // for quantized activations). Both kernels remove the unsigned-weight offset in their integer
  // accumulators, so no offset terms enter S.
  const DType type = GetParam();
  std::mt19937 rng(5);
  const int64_t rows = 45, cols = 1024, n = 9;
  const Bytes wb = MakeWeights(type, rows, cols, &rng);
  const std::vector<float> x = MakeActs(n, cols, &rng);
  const MatView w{type, wb.data(), rows, cols};
  ThreadPool pool(2);
  std::vector<float> y(rows * n), y1(rows), wrow(cols), dx(cols / 32);
  std::vector<int8_t> qs(cols);
  std::vector<int32_t> sx(cols / 32);
  MatMul(w, x.data(), n, y.data(), &pool);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x.data() + t * cols;
    MatVec(w, xt, y1.data(), &pool);
    if (IsQuant(type)) QuantizeActsQ8Ref(xt, cols, qs.data(), dx.data(), sx.data());
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(type, w.row(r), wrow.data(), cols);
      double bound = 0;
      for (int64_t i = 0; i < cols; ++i) {
        double wi = std::fabs(wrow[i]), xi = std::fabs(xt[i]);
        if (IsQuant(type)) {
          xi += dx[i / 32];
        }
        bound += wi * xi;
      }
      if (type == DType::kBF16) bound *= 1 + 1.0 / 128;  // x rounded to bf16 in both
      EXPECT_LE(std::fabs(y[t * rows + r] - y1[r]), 2 * Gamma(cols + 16) * bound + 1e-30)
          << t << "," << r;
    }
  }
}

// Products sharing an input in one parallel loop give each matrix's own MatMul bit for bit: a
// row's arithmetic does not depend on which thread or chunk computes it, whether a thread's
// share spans two matrices or not, or where its streams start (the larger set runs on several
// threads, with shares that end inside a matrix and streams of unequal length).
void CheckSharedInput(DType type, const std::array<int64_t, 3>& rows) {
  std::mt19937 rng(21);
  const int64_t cols = 1024;
  std::vector<Bytes> wb;
  MatView ws[3];
  for (int i = 0; i < 3; ++i) {
    wb.push_back(MakeWeights(type, rows[i], cols, &rng));
    ws[i] = {type, wb[i].data(), rows[i], cols};
  }
  for (int64_t n : {1, 3, 8}) {
    const std::vector<float> x = MakeActs(n, cols, &rng);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> shared[3], alone[3];
      float* outs[3];
      for (int i = 0; i < 3; ++i) {
        shared[i].assign(rows[i] * n, -1.0f);
        alone[i].assign(rows[i] * n, -2.0f);
        outs[i] = shared[i].data();
        MatMul(ws[i], x.data(), n, alone[i].data(), &pool);
      }
      MatMulShared(ws, x.data(), n, outs, &pool);
      for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(0, std::memcmp(shared[i].data(), alone[i].data(), shared[i].size() * sizeof(float)))
            << "matrix " << i << ", n " << n << ", threads " << threads;
      }
    }
  }
}

TEST_P(MatMulTest, SharedInputMatchesOneProductEach) {
  for (const auto& rows : {std::array<int64_t, 3>{70, 33, 5}, std::array<int64_t, 3>{701, 333, 51}}) {
    CheckSharedInput(GetParam(), rows);
    if (HasFailure()) return;
  }
}

// Matrices of different types need the input prepared differently; they still get their
// products, one loop each.
TEST(MatMulSharedTest, MixedTypesFallBack) {
  std::mt19937 rng(22);
  const Bytes a = MakeWeights(DType::kQ8_0, 40, 512, &rng);
  const Bytes b = MakeWeights(DType::kF16, 24, 512, &rng);
  const std::vector<float> x = MakeActs(2, 512, &rng);
  ThreadPool pool(2);
  const MatView ws[2] = {{DType::kQ8_0, a.data(), 40, 512}, {DType::kF16, b.data(), 24, 512}};
  std::vector<float> y0(2 * 40), y1(2 * 24), r0(y0.size()), r1(y1.size());
  float* const outs[2] = {y0.data(), y1.data()};
  MatMulShared(ws, x.data(), 2, outs, &pool);
  MatMul(ws[0], x.data(), 2, r0.data(), &pool);
  MatMul(ws[1], x.data(), 2, r1.data(), &pool);
  EXPECT_EQ(y0, r0);
  EXPECT_EQ(y1, r1);
}

// Repacked rows at either alignment (the layout follows the row address modulo 64) give the
// plain blocks' products up to f32 rounding, for decode and for the packed prefill kernel.
TEST(MatMulR16Test, EitherRowAlignmentMatchesPlainBlocks) {
  std::mt19937 rng(31);
  ThreadPool pool(2);
  for (DType type : {DType::kQ8_0_R16, DType::kQ4_0_R16}) {
    for (int64_t cols : {512, 1536, 2048}) {
      const int64_t rows = 37;
      const Bytes q8 = MakeWeights(PlainLayout(type), rows, cols, &rng);
      const MatView plain{PlainLayout(type), q8.data(), rows, cols};
      for (size_t phase : {0, 32}) {
        Bytes store(q8.size() + 64);
        uint8_t* base = store.data() + phase;
        std::memcpy(base, q8.data(), q8.size());
        RepackRowsInPlace(type, base, rows, cols);
        const MatView r16{type, base, rows, cols};
        for (int64_t n : {1, 3, 20}) {
          SCOPED_TRACE(::testing::Message()
                       << DTypeName(type) << " cols " << cols << " phase " << phase << " n " << n);
          const std::vector<float> x = MakeActs(n, cols, &rng);
          std::vector<float> y0(rows * n), y1(rows * n), wrow(cols), dx(cols / 32);
          std::vector<int8_t> qs(cols);
          std::vector<int32_t> sx(cols / 32);
          MatMul(plain, x.data(), n, y0.data(), &pool);
          MatMul(r16, x.data(), n, y1.data(), &pool);
          for (int64_t t = 0; t < n; ++t) {
            QuantizeActsQ8Ref(x.data() + t * cols, cols, qs.data(), dx.data(), sx.data());
            for (int64_t r = 0; r < rows; ++r) {
              DequantizeRow(plain.type, plain.row(r), wrow.data(), cols);
              double bound = 0;
              for (int64_t i = 0; i < cols; ++i) {
                bound += std::fabs(wrow[i]) * (std::fabs(x[t * cols + i]) + dx[i / 32]);
              }
              ASSERT_LE(std::fabs(y0[t * rows + r] - y1[t * rows + r]),
                        2 * Gamma(cols + 16) * bound + 1e-30)
                  << t << "," << r;
            }
          }
        }
      }
    }
  }
}

std::string TypeName(const ::testing::TestParamInfo<DType>& info) {
  return std::string(DTypeName(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatVecTest, ::testing::ValuesIn(kTypes), TypeName);
INSTANTIATE_TEST_SUITE_P(AllTypes, MatMulTest, ::testing::ValuesIn(kTypes), TypeName);

}  // namespace
}  // namespace kvc
