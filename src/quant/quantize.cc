#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/fp16.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"

namespace kvc {

namespace {

// A repacked row, block by block through the plain blocks it was repacked from.
template <typename Block>
void DequantizeR16(const void* src, float* dst, int64_t n) {
  const DType plain = std::is_same_v<Block, BlockQ8_0> ? DType::kQ8_0 : DType::kQ4_0;
  for (int64_t k = 0; k < n / kQK; ++k) {
    const Block block = R16Block<Block>(src, n / kQK, k);
    DequantizeRow(plain, &block, dst + k * kQK, kQK);
  }
}

}  // namespace

void DequantizeRow(DType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = F16ToF32(b[k].d);
        for (int i = 0; i < kQK; ++i) dst[k * kQK + i] = d * b[k].qs[i];
      }
      return;
    }
    case DType::kQ8_0_R16: return DequantizeR16<BlockQ8_0>(src, dst, n);
    case DType::kQ4_0_R16: return DequantizeR16<BlockQ4_0>(src, dst, n);
    case DType::kQ4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float d = F16ToF32(b[k].d);
        for (int j = 0; j < kQK / 2; ++j) {
          dst[k * kQK + j] = d * ((b[k].qs[j] & 0x0f) - 8);
          dst[k * kQK + j + kQK / 2] = d * ((b[k].qs[j] >> 4) - 8);
        }
      }
      return;
    }
  }
}

void QuantizeRow(DType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBf16(src[i]);
      return;
    }
    case DType::kQ8_0: {
      auto* b = static_cast<BlockQ8_0*>(dst);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float* x = src + k * kQK;
        float amax = 0;
        for (int i = 0; i < kQK; ++i) amax = std::fmax(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[k].d = F32ToF16(d);
        for (int i = 0; i < kQK; ++i) b[k].qs[i] = static_cast<int8_t>(std::lround(x[i] * id));
      }
      return;
    }
    case DType::kQ8_0_R16:
    case DType::kQ4_0_R16:
      QuantizeRow(PlainLayout(type), src, dst, n);
      RepackRowsInPlace(type, dst, 1, n);
      return;
    case DType::kQ4_0: {
      auto* b = static_cast<BlockQ4_0*>(dst);
      for (int64_t k = 0; k < n / kQK; ++k) {
        const float* x = src + k * kQK;
        // The signed value of largest magnitude maps to -8, using the full [-8, 7] range.
        float amax = 0, max = 0;
        for (int i = 0; i < kQK; ++i) {
          if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[k].d = F32ToF16(d);
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
          const int q1 = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
          b[k].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    }
  }
}

}  // namespace kvc
