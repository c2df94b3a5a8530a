#include "quant/q8_0_r16.h"

#include <cstring>
#include <vector>

#include "core/status.h"
#include "quant/ggml_blocks.h"

namespace kvc {

void RepackRowQ8R16(const void* q8_row, void* dst, int64_t cols) {
  KVC_CHECK(CanRepackQ8R16(cols) && reinterpret_cast<uintptr_t>(dst) % 32 == 0);
  const auto* in = static_cast<const BlockQ8_0*>(q8_row);
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t nb = cols / kQK, lead = Q8R16Lead(dst, nb);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* scale = out + Q8R16ScaleOffset(lead, nb, b / kR16Blocks) + 2 * (b % kR16Blocks);
    std::memcpy(scale, &in[b].d, 2);
    for (int i = 0; i < kQK; i += 4) {
      std::memcpy(out + lead + Q8R16QuantOffset(b, i), in[b].qs + i, 4);
    }
  }
}

void UnpackRowQ8R16(const void* r16_row, void* q8_dst, int64_t cols) {
  KVC_CHECK(CanRepackQ8R16(cols) && reinterpret_cast<uintptr_t>(r16_row) % 32 == 0);
  const auto* in = static_cast<const uint8_t*>(r16_row);
  auto* out = static_cast<BlockQ8_0*>(q8_dst);
  const int64_t nb = cols / kQK, lead = Q8R16Lead(r16_row, nb);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* scale = in + Q8R16ScaleOffset(lead, nb, b / kR16Blocks) + 2 * (b % kR16Blocks);
    std::memcpy(&out[b].d, scale, 2);
    for (int i = 0; i < kQK; i += 4) {
      std::memcpy(out[b].qs + i, in + lead + Q8R16QuantOffset(b, i), 4);
    }
  }
}

void RepackRowsQ8R16InPlace(void* data, int64_t rows, int64_t cols) {
  const size_t row_bytes = static_cast<size_t>(cols / kQK) * sizeof(BlockQ8_0);
  std::vector<uint8_t> tmp(row_bytes);
  auto* p = static_cast<uint8_t*>(data);
  for (int64_t r = 0; r < rows; ++r, p += row_bytes) {
    std::memcpy(tmp.data(), p, row_bytes);
    RepackRowQ8R16(tmp.data(), p, cols);
  }
}

}  // namespace kvc
